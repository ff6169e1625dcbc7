import LlamaModel
import MergeSupport

/// PEFT's `cat` combination: the exact weighted sum of the inputs' deltas.
///
/// Per target, the inputs that have it are stacked along the rank:
///   A = [A_1; A_2; ...]  (Σ r_i x in),   B = [c_1·B_1, c_2·B_2, ...]  (out x Σ r_i),
/// with c_i = weight_i · scale_i, so B·A = Σ c_i · B_i·A_i exactly. The result's nominal rank is
/// the sum of the inputs' ranks and its alpha equals it (scale 1); a target that only some
/// inputs have gets the sum of their ranks. PEFT folds c_i into A instead of B: the delta is
/// the same. Ranks may differ and weights may be negative.
public struct CatMerge: MergeMethod {
    public let name = "cat"
    public let summary = "exact: stack A's and weighted B's along the rank (result rank = sum of ranks)"

    public init() {}

    /// Reads no options (density, rank and seed are ignored; they are still range-checked).
    public func merge(_ inputs: [WeightedAdapter], options: MergeOptions) throws -> LoRAAdapter {
        let checked = try MergeInputs(inputs, options: options)
        let pairs = try checked.mapTargets { _, contributions in
            let first = contributions[0].pair
            let rank = contributions.reduce(0) { $0 + $1.pair.rank }
            var a = [Float](), b = [Float](repeating: 0, count: first.outFeatures * rank)
            a.reserveCapacity(rank * first.inFeatures)
            var offset = 0
            for c in contributions {
                let p = c.pair
                a += p.a
                for o in 0..<p.outFeatures {
                    for j in 0..<p.rank { b[o * rank + offset + j] = c.weight * p.b[o * p.rank + j] }
                }
                offset += p.rank
            }
            return LoRAPair(rank: rank, inFeatures: first.inFeatures, outFeatures: first.outFeatures, a: a, b: b)
        }
        let rank = inputs.reduce(0) { $0 + $1.adapter.rank }
        return checked.result(rank: rank, pairs: pairs, metadata: checked.metadata(method: name))
    }
}
