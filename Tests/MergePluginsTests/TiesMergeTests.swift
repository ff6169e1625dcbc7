import LlamaModel
import MergeSupport
import Testing
import TiesMerge

@Suite("ties merge")
struct TiesMergeTests {
    /// Three task vectors of six values; at density 0.5 each keeps its 3 largest magnitudes.
    static let tasks: [[Float]] = [
        [0.9, -0.1, 0.4, -0.8, 0.05, 0.3],
        [-0.5, 0.7, 0.55, 0.6, 0.1, -0.3],
        [0.2, 0.3, -1.2, -0.1, 0.8, -0.05],
    ]
    static let trimmed: [[Float]] = [
        [0.9, 0, 0.4, -0.8, 0, 0],
        [0, 0.7, 0.55, 0.6, 0, 0],
        [0, 0.3, -1.2, 0, 0.8, 0],
    ]
    static let weights: [Float] = [1, 2, 0.5]
    // Sums 0.9, 1.0, -0.25, -0.2, 0.8, 0 (weighted, entry 3 would be +0.4: the election is unweighted).
    static let totalSigns: [Float] = [1, 1, -1, -1, 1, 1]
    static let totalMerged: [Float] = [0.9, (1.4 + 0.15) / 2, -0.6, -0.8, 0.4, 0]
    // Sign counts +1, +2, +1, 0, +1, 0.
    static let frequencySigns: [Float] = [1, 1, 1, 1, 1, 1]
    static let frequencyMerged: [Float] = [0.9, (1.4 + 0.15) / 2, (0.4 + 1.1) / 2, 1.2, 0.4, 0]

    static func close(_ x: [Float], _ y: [Float]) -> Bool {
        x.count == y.count && zip(x, y).allSatisfy { abs($0 - $1) < 1e-6 }
    }

    @Test("trim, elect and disjoint merge give the hand-computed values for both sign methods")
    func handExample() {
        let trimmed = Self.tasks.map { TaskVectors.magnitudeTrim($0, density: 0.5) }
        #expect(trimmed == Self.trimmed)
        #expect(TaskVectors.electSigns(trimmed, method: .total) == Self.totalSigns)
        #expect(TaskVectors.electSigns(trimmed, method: .frequency) == Self.frequencySigns)
        let total = TaskVectors.electAndMerge(trimmed, weights: Self.weights, method: .total)
        let frequency = TaskVectors.electAndMerge(trimmed, weights: Self.weights, method: .frequency)
        #expect(Self.close(total, Self.totalMerged), "\(total)")
        #expect(Self.close(frequency, Self.frequencyMerged), "\(frequency)")
    }

    @Test("the ties merge applies the hand example to A, with weights sqrt(weight · scale)",
          arguments: MergeOptions.MajoritySign.allCases)
    func adapterExample(method: MergeOptions.MajoritySign) throws {
        let t = LoRATarget(layer: 0, projection: .query)
        // Rank 1, alpha 1 (scale 1): weights 1, 4, 0.25 give factors 1, 2, 0.5.
        let inputs = zip(Self.tasks, [Float(1), 4, 0.25]).map { task, w in
            WeightedAdapter(LoRAAdapter(rank: 1, alpha: 1, pairs: [t: LoRAPair(rank: 1, inFeatures: 6, outFeatures: 2, a: task, b: [1, -1])]),
                            weight: w)
        }
        let merged = try TiesMerge().merge(inputs, options: MergeOptions(density: 0.5, majoritySign: method))
        let expected = method == .total ? Self.totalMerged : Self.frequencyMerged
        #expect(Self.close(merged.pairs[t]!.a, expected), "\(merged.pairs[t]!.a)")
        // B keeps ⌊0.5 · 2⌋ = 1 value each (the first of equal magnitudes): all three keep +1.
        #expect(Self.close(merged.pairs[t]!.b, [(1 + 2 + 0.5) / 3, 0]), "\(merged.pairs[t]!.b)")
        #expect(merged.metadata["merge_majority_sign"] == method.rawValue && merged.metadata["merge_density"] == "0.5")
    }

    @Test("density 1 with identical inputs of weight 1 reproduces the input's delta")
    func identicalInputs() throws {
        let adapter = Fixture.adapter(seed: 30, rank: 3, alpha: 6)
        let merged = try TiesMerge().merge(Array(repeating: WeightedAdapter(adapter, weight: 1), count: 3),
                                           options: MergeOptions(density: 1))
        for t in Fixture.targets {
            let diff = Fixture.maxAbsDifference(Fixture.delta(merged, t), Fixture.delta(adapter, t))
            #expect(diff < 1e-5, "\(t): max difference \(diff)")
        }
    }

    @Test("the kept count is the floor of density times count, reading the density as written")
    func keepCount() {
        #expect(TaskVectors.keepCount(density: 0.7, count: 10) == 7)
        #expect(TaskVectors.keepCount(density: 0.3, count: 10) == 3)
        #expect(TaskVectors.keepCount(density: 0.5, count: 7) == 3)
        #expect(TaskVectors.keepCount(density: 0.01, count: 50) == 0)
        #expect(TaskVectors.keepCount(density: 1, count: 9) == 9)
        #expect(TaskVectors.magnitudeTrim([1, -1, 1, -1], density: 0.5) == [1, -1, 0, 0])
        #expect(TaskVectors.magnitudeTrim([3, 1, 2], density: 0.1) == [0, 0, 0])
    }

    @Test("quickselect agrees with sorting, duplicates and all", arguments: [1, 2, 17, 500, 4096])
    func selection(count: Int) {
        var rng = SeededGenerator(seed: UInt64(count))
        let values = (0..<count).map { _ in Float(Int(Fixture.uniform(&rng) * 20)) / 4 }  // many repeats
        let sorted = values.sorted(by: >)
        for k in Set([1, count, (count + 1) / 2, max(1, count / 3)]) {
            var copy = values
            #expect(Selection.kthLargest(&copy, k) == sorted[k - 1])
        }
    }
}
