import LlamaModel
import SVDMerge
import Testing

@Suite("svd merge")
struct SVDMergeTests {
    /// Ranks 4 + 6 = 10: above the key projection's 8 outputs, below the others' sizes.
    static let inputs = [
        WeightedAdapter(Fixture.adapter(seed: 20, rank: 4, alpha: 8), weight: 0.8),
        WeightedAdapter(Fixture.adapter(seed: 21, rank: 6, alpha: 4, rsLoRA: true,
                                        skip: [LoRATarget(layer: 1, projection: .down)]), weight: -0.6),
    ]

    @Test("with rank at least the summed rank the merge is exact", arguments: [10, 13])
    func exact(rank: Int) throws {
        let merged = try SVDMerge().merge(Self.inputs, options: MergeOptions(rank: rank))
        #expect(merged.rank == rank && merged.alpha == Float(rank) && merged.scale == 1 && !merged.useRSLoRA)
        #expect(merged.metadata["merge_rank"] == String(rank))
        for t in Fixture.targets {
            #expect(merged.pairs[t]!.rank == rank)
            let diff = Fixture.maxAbsDifference(Fixture.delta(merged, t), Fixture.weightedDelta(Self.inputs, t))
            #expect(diff < 1e-4, "\(t): max difference \(diff)")
        }
    }

    @Test("the rank defaults to the largest input rank")
    func defaultRank() throws {
        #expect(try SVDMerge().merge(Self.inputs, options: MergeOptions()).rank == 6)
    }

    /// The full merge's singular values: A's rows are orthonormal, so B's column norms.
    static func singularValues(_ pair: LoRAPair) -> [Double] {
        (0..<pair.rank).map { j in (0..<pair.outFeatures).reduce(0.0) { $0 + Double(pair.b[$1 * pair.rank + j] * pair.b[$1 * pair.rank + j]) }.squareRoot() }
    }

    @Test("the full factors are orthogonal with singular values in descending order")
    func orthogonalFactors() throws {
        let merged = try SVDMerge().merge(Self.inputs, options: MergeOptions(rank: 10))
        for t in Fixture.targets {
            let p = merged.pairs[t]!
            let s = Self.singularValues(p)
            #expect(zip(s, s.dropFirst()).allSatisfy { $0 >= $1 - 1e-6 }, "\(t): \(s)")
            for i in 0..<p.rank where s[i] > 1e-6 {
                for j in 0..<p.rank where s[j] > 1e-6 {
                    let dot = (0..<p.inFeatures).reduce(0.0) { $0 + Double(p.a[i * p.inFeatures + $1] * p.a[j * p.inFeatures + $1]) }
                    #expect(abs(dot - (i == j ? 1 : 0)) < 1e-5, "\(t): rows \(i), \(j) of A: \(dot)")
                }
            }
        }
    }

    @Test("truncation loses exactly the discarded singular values", arguments: [1, 3, 5])
    func truncationError(rank: Int) throws {
        let full = try SVDMerge().merge(Self.inputs, options: MergeOptions(rank: 10))
        let truncated = try SVDMerge().merge(Self.inputs, options: MergeOptions(rank: rank))
        for t in Fixture.targets {
            let s = Self.singularValues(full.pairs[t]!).sorted(by: >)
            let discarded = s.dropFirst(rank).reduce(0) { $0 + $1 * $1 }
            let exact = Fixture.weightedDelta(Self.inputs, t)
            let error = Fixture.squaredNorm(Fixture.difference(Fixture.delta(truncated, t), exact))
            let tolerance = 1e-5 * Fixture.squaredNorm(exact)
            #expect(abs(error - discarded) <= tolerance, "\(t): error² \(error), discarded S² \(discarded)")
            #expect(zip(Self.singularValues(truncated.pairs[t]!), s).allSatisfy { abs($0 - $1) < 1e-4 })
        }
    }

    @Test("truncation is no worse than a rank-R projection found by subspace iteration on the dense delta")
    func noWorseThanSubspaceIteration() throws {
        let rank = 3
        let truncated = try SVDMerge().merge(Self.inputs, options: MergeOptions(rank: rank))
        for t in Fixture.targets {
            let (out, inF) = Fixture.shape(t)
            let d = Fixture.weightedDelta(Self.inputs, t)
            let reference = Reference.subspaceApproximation(d, rows: out, cols: inF, rank: rank)
            let referenceError = Fixture.squaredNorm(Fixture.difference(reference, d))
            let error = Fixture.squaredNorm(Fixture.difference(Fixture.delta(truncated, t), d))
            #expect(error <= referenceError + 1e-6 * Fixture.squaredNorm(d), "\(t): \(error) vs reference \(referenceError)")
        }
    }
}

/// Plain dense references for the factorization tests.
enum Reference {
    /// D · Q · Qᵀ where Q [cols x rank] spans D's top right singular subspace, found by
    /// orthogonal iteration on DᵀD (no SVD involved). D is row-major [rows x cols].
    static func subspaceApproximation(_ d: [Double], rows: Int, cols: Int, rank: Int) -> [Double] {
        var rng = SeededGenerator(seed: 99)
        var q = (0..<cols * rank).map { _ in Fixture.uniform(&rng) - 0.5 }  // row-major [cols x rank]
        let dt = (0..<cols * rows).map { d[($0 % rows) * cols + $0 / rows] }  // [cols x rows]
        for _ in 0..<500 {
            q = orthonormalColumns(Fixture.product(dt, Fixture.product(d, q, rows, cols, rank), cols, rows, rank), rows: cols, cols: rank)
        }
        let qt = (0..<rank * cols).map { q[($0 % cols) * rank + $0 / cols] }
        return Fixture.product(Fixture.product(d, q, rows, cols, rank), qt, rows, rank, cols)
    }

    /// Modified Gram-Schmidt on the columns of a row-major [rows x cols] matrix.
    static func orthonormalColumns(_ m: [Double], rows: Int, cols: Int) -> [Double] {
        var m = m
        for j in 0..<cols {
            for k in 0..<j {
                let dot = (0..<rows).reduce(0.0) { $0 + m[$1 * cols + j] * m[$1 * cols + k] }
                for i in 0..<rows { m[i * cols + j] -= dot * m[i * cols + k] }
            }
            let norm = (0..<rows).reduce(0.0) { $0 + m[$1 * cols + j] * m[$1 * cols + j] }.squareRoot()
            for i in 0..<rows { m[i * cols + j] = norm > 0 ? m[i * cols + j] / norm : 0 }
        }
        return m
    }
}
