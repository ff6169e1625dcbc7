import LinearMerge
import LlamaModel
import Testing

@Suite("linear merge")
struct LinearMergeTests {
    @Test("one input with weight 1 reproduces its delta, rsLoRA scale included")
    func single() throws {
        for rs in [false, true] {
            let adapter = Fixture.adapter(seed: 10, rank: 4, alpha: 12, rsLoRA: rs)
            let merged = try LinearMerge().merge([WeightedAdapter(adapter, weight: 1)], options: MergeOptions())
            #expect(merged.rank == 4 && merged.scale == 1 && !merged.useRSLoRA)
            for t in Fixture.targets {
                let diff = Fixture.maxAbsDifference(Fixture.delta(merged, t), Fixture.delta(adapter, t))
                #expect(diff < 1e-5, "\(t) rsLoRA \(rs): max difference \(diff)")
            }
        }
    }

    @Test("two inputs give PEFT's factor sums, cross terms included")
    func pEFTFormula() throws {
        let x = Fixture.adapter(seed: 11, rank: 3, alpha: 6), y = Fixture.adapter(seed: 12, rank: 3, alpha: 1.5)
        let inputs = [WeightedAdapter(x, weight: 0.6), WeightedAdapter(y, weight: 1.5)]
        let merged = try LinearMerge().merge(inputs, options: MergeOptions())
        let cx = (0.6 * 2.0).squareRoot(), cy = (1.5 * 0.5).squareRoot()
        var crossTermsSeen = false
        for t in Fixture.targets {
            let (out, inF) = Fixture.shape(t)
            let px = x.pairs[t]!, py = y.pairs[t]!
            let a = zip(px.a, py.a).map { cx * Double($0) + cy * Double($1) }
            let b = zip(px.b, py.b).map { cx * Double($0) + cy * Double($1) }
            let expected = Fixture.product(b, a, out, 3, inF)
            let diff = Fixture.maxAbsDifference(Fixture.delta(merged, t), expected)
            #expect(diff < 1e-5, "\(t): max difference \(diff)")
            if Fixture.maxAbsDifference(expected, Fixture.weightedDelta(inputs, t)) > 1e-2 { crossTermsSeen = true }
        }
        #expect(crossTermsSeen, "linear should differ from the exact delta sum")
    }

    @Test("a target missing from one input counts as zero there")
    func missingTarget() throws {
        let t = LoRATarget(layer: 0, projection: .key)
        let x = Fixture.adapter(seed: 13, rank: 2, alpha: 2), y = Fixture.adapter(seed: 14, rank: 2, alpha: 2, skip: [t])
        let merged = try LinearMerge().merge([WeightedAdapter(x, weight: 0.5), WeightedAdapter(y, weight: 2)],
                                             options: MergeOptions())
        let c = Float(0.5).squareRoot()
        #expect(merged.pairs[t]!.a == x.pairs[t]!.a.map { c * $0 })
        #expect(merged.pairs[t]!.b == x.pairs[t]!.b.map { c * $0 })
    }
}
