import CatMerge
import LlamaModel
import Testing

@Suite("cat merge")
struct CatMergeTests {
    @Test("the merged delta is the exact weighted sum of deltas, at the summed rank")
    func exactSum() throws {
        let missing = LoRATarget(layer: 1, projection: .up)
        let inputs = [
            WeightedAdapter(Fixture.adapter(seed: 1, rank: 2, alpha: 4), weight: 0.7),
            WeightedAdapter(Fixture.adapter(seed: 2, rank: 4, alpha: 8, rsLoRA: true, skip: [missing]), weight: -1.3),
            WeightedAdapter(Fixture.adapter(seed: 3, rank: 6, alpha: 3), weight: 0.25),
        ]
        let merged = try CatMerge().merge(inputs, options: MergeOptions())
        #expect(merged.rank == 12 && merged.alpha == 12 && merged.scale == 1 && !merged.useRSLoRA)
        #expect(merged.pairs.count == Fixture.targets.count)
        for t in Fixture.targets {
            let diff = Fixture.maxAbsDifference(Fixture.delta(merged, t), Fixture.weightedDelta(inputs, t))
            #expect(diff < 1e-5, "\(t): max difference \(diff)")
            #expect(merged.pairs[t]!.rank == (t == missing ? 8 : 12))
        }
    }

    @Test("one input with weight 1 keeps its A and folds its scale into B")
    func single() throws {
        let adapter = Fixture.adapter(seed: 4, rank: 3, alpha: 6)
        let merged = try CatMerge().merge([WeightedAdapter(adapter, weight: 1)], options: MergeOptions())
        let t = Fixture.targets[0]
        #expect(merged.pairs[t]!.a == adapter.pairs[t]!.a)
        #expect(merged.pairs[t]!.b == adapter.pairs[t]!.b.map { $0 * 2 })
    }
}
