import LlamaModel

/// Small random adapters and dense Double references for the merge tests.
enum Fixture {
    /// (out, in) per projection; two layers of each. `key` has out = 8, below the summed rank
    /// of some tests, so the wide-core paths run too.
    static let shapes: [(projection: Projection, out: Int, in: Int)] = [
        (.query, 16, 16), (.key, 8, 16), (.up, 40, 16), (.down, 16, 40), (.output, 12, 48),
    ]
    static let targets: [LoRATarget] = (0..<2).flatMap { layer in shapes.map { LoRATarget(layer: layer, projection: $0.projection) } }

    static func shape(_ t: LoRATarget) -> (out: Int, in: Int) {
        let s = shapes.first { $0.projection == t.projection }!
        return (s.out, s.in)
    }

    /// A random adapter over `targets` (minus `skip`), values uniform in [-0.5, 0.5).
    static func adapter(seed: UInt64, rank: Int, alpha: Float, rsLoRA: Bool = false, name: String? = nil,
                        skip: Set<LoRATarget> = [], inScale: Int = 1) -> LoRAAdapter {
        var rng = SeededGenerator(seed: seed)
        var pairs: [LoRATarget: LoRAPair] = [:]
        for t in targets where !skip.contains(t) {
            let (out, inF) = shape(t)
            let a = (0..<rank * inF * inScale).map { _ in Float(uniform(&rng) - 0.5) }
            let b = (0..<out * rank).map { _ in Float(uniform(&rng) - 0.5) }
            pairs[t] = LoRAPair(rank: rank, inFeatures: inF * inScale, outFeatures: out, a: a, b: b)
        }
        return LoRAAdapter(rank: rank, alpha: alpha, useRSLoRA: rsLoRA, pairs: pairs,
                           metadata: name.map { ["name": $0] } ?? [:])
    }

    static func uniform(_ rng: inout SeededGenerator) -> Double { Double(rng.next() >> 11) * 0x1.0p-53 }

    /// scale · B · A of `target` as a dense row-major [out x in] Double matrix (zeros if absent).
    static func delta(_ adapter: LoRAAdapter, _ target: LoRATarget) -> [Double] {
        let (out, inF) = shape(target)
        guard let p = adapter.pairs[target] else { return [Double](repeating: 0, count: out * inF) }
        return product(p.b.map(Double.init), p.a.map(Double.init), out, p.rank, inF).map { $0 * Double(adapter.scale) }
    }

    /// Σ weight_i · delta_i: the exact weighted sum of deltas.
    static func weightedDelta(_ inputs: [WeightedAdapter], _ target: LoRATarget) -> [Double] {
        var sum = delta(inputs[0].adapter, target).map { _ in 0.0 }
        for input in inputs {
            for (e, d) in delta(input.adapter, target).enumerated() { sum[e] += Double(input.weight) * d }
        }
        return sum
    }

    /// Row-major x [m x k] · y [k x n].
    static func product(_ x: [Double], _ y: [Double], _ m: Int, _ k: Int, _ n: Int) -> [Double] {
        var out = [Double](repeating: 0, count: m * n)
        for i in 0..<m {
            for l in 0..<k where x[i * k + l] != 0 {
                for j in 0..<n { out[i * n + j] += x[i * k + l] * y[l * n + j] }
            }
        }
        return out
    }

    static func maxAbsDifference(_ x: [Double], _ y: [Double]) -> Double {
        zip(x, y).reduce(0) { max($0, abs($1.0 - $1.1)) }
    }

    static func squaredNorm(_ x: [Double]) -> Double { x.reduce(0) { $0 + $1 * $1 } }

    static func difference(_ x: [Double], _ y: [Double]) -> [Double] { zip(x, y).map { $0 - $1 } }
}
