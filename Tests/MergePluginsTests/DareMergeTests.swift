import DareMerge
import LinearMerge
import LlamaModel
import MergeSupport
import Testing
import TiesMerge

@Suite("dare merges")
struct DareMergeTests {
    static let inputs = [
        WeightedAdapter(Fixture.adapter(seed: 40, rank: 4, alpha: 8), weight: 0.7),
        WeightedAdapter(Fixture.adapter(seed: 41, rank: 4, alpha: 4, skip: [LoRATarget(layer: 0, projection: .up)]), weight: 1.2),
    ]

    @Test("at density 1 dare_linear equals linear and dare_ties equals ties")
    func densityOne() throws {
        let options = MergeOptions(density: 1, seed: 5)
        let dareLinear = try DareLinearMerge().merge(Self.inputs, options: options)
        let linear = try LinearMerge().merge(Self.inputs, options: options)
        #expect(dareLinear.pairs == linear.pairs)
        let dareTies = try DareTiesMerge().merge(Self.inputs, options: options)
        let ties = try TiesMerge().merge(Self.inputs, options: options)
        #expect(dareTies.pairs == ties.pairs)
    }

    @Test("the drop keeps about a density's fraction and rescales the kept values by 1/density",
          arguments: [Float(0.1), 0.3, 0.75])
    func dropFraction(density: Float) {
        var rng = SeededGenerator(seed: 7)
        let tensor = (0..<200_000).map { Float($0 % 13) - 6.5 }
        let dropped = TaskVectors.randomDrop(tensor, density: density, generator: &rng)
        var kept = 0
        for (x, y) in zip(tensor, dropped) where y != 0 {
            kept += 1
            #expect(y == x / density)
        }
        let fraction = Double(kept) / Double(tensor.count)
        #expect(abs(fraction - Double(density)) < 0.005, "kept \(fraction)")
    }

    @Test("the same seed gives the same adapter and another seed a different one")
    func seeds() throws {
        for method in [DareLinearMerge() as any MergeMethod, DareTiesMerge()] {
            let a = try method.merge(Self.inputs, options: MergeOptions(density: 0.4, seed: 11))
            let b = try method.merge(Self.inputs, options: MergeOptions(density: 0.4, seed: 11))
            let c = try method.merge(Self.inputs, options: MergeOptions(density: 0.4, seed: 12))
            #expect(a == b, "\(method.name)")
            #expect(a.pairs != c.pairs, "\(method.name)")
            #expect(a.metadata["merge_seed"] == "11" && a.metadata["merge_density"] == "0.4")
        }
    }

    @Test("dare_linear drops entries of A and B and sums the rest with weights sqrt(weight · scale)")
    func dareLinearStructure() throws {
        let merged = try DareLinearMerge().merge(Self.inputs, options: MergeOptions(density: 0.5, seed: 3))
        let t = LoRATarget(layer: 0, projection: .up)  // only in the first input: c = sqrt(0.7 · 2)
        let c = Float(1.4).squareRoot()
        let original = Self.inputs[0].adapter.pairs[t]!
        for (x, y) in zip(original.a + original.b, merged.pairs[t]!.a + merged.pairs[t]!.b) {
            #expect(y == 0 || abs(y - c * x / 0.5) < 1e-5)
        }
        let zeros = (merged.pairs[t]!.a + merged.pairs[t]!.b).filter { $0 == 0 }.count
        let total = original.a.count + original.b.count
        #expect(zeros > total / 4 && zeros < 3 * total / 4, "\(zeros) of \(total) dropped")
    }
}
