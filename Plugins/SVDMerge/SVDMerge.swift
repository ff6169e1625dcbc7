import LlamaModel
import MergeSupport

/// PEFT's `svd` combination: the weighted sum of deltas, truncated to a rank by SVD.
///
/// Per target, D = Σ c_i · B_i·A_i with c_i = weight_i · scale_i, and with D = U·S·Vᵀ the result
/// is B = U_R·S_R, A = V_Rᵀ (the best rank-R approximation in Frobenius norm, Eckart & Young
/// 1936), rank R = `options.rank` or the largest input rank, alpha R (scale 1). Exact when
/// R >= Σ r_i. Ranks may differ and weights may be negative.
///
/// D is never formed: with B_cat = [c_1·B_1, ...] [out x Σr] and A_cat = [A_1; ...] [Σr x in],
/// thin QRs B_cat = Qb·Rb and A_catᵀ = Qa·Ra leave the small core Rb·Raᵀ = U'·S·V'ᵀ, so
/// U = Qb·U' and V = Qa·V'. Differences from PEFT: PEFT multiplies `get_delta_weight`, which
/// already includes the scale, by weight · scale again (the scale counts twice); here it counts
/// once, so svd agrees with cat. No clamping of the factors (PEFT's default `svd_clamp=None`).
/// Where R exceeds a target's min(out, in, Σr), the extra rank is zero-padded.
public struct SVDMerge: MergeMethod {
    public let name = "svd"
    public let summary = "weighted sum of deltas truncated by SVD to --rank (default: the largest input rank)"

    public init() {}

    /// Reads `options.rank`.
    public func merge(_ inputs: [WeightedAdapter], options: MergeOptions) throws -> LoRAAdapter {
        let checked = try MergeInputs(inputs, options: options)
        let rank = options.rank ?? inputs.map(\.adapter.rank).max()!
        let pairs = try checked.mapTargets { _, contributions in Self.truncate(contributions, rank: rank) }
        return checked.result(rank: rank, pairs: pairs,
                              metadata: checked.metadata(method: name, extra: ["merge_rank": String(rank)]))
    }

    /// The rank-`rank` factorization of Σ c_i · B_i·A_i.
    static func truncate(_ contributions: [Contribution], rank: Int) -> LoRAPair {
        let first = contributions[0].pair
        let out = first.outFeatures, inF = first.inFeatures
        let n = contributions.reduce(0) { $0 + $1.pair.rank }
        // Column-major B_cat [out x n] and A_catᵀ [in x n]; A_i's rows are already contiguous.
        var bCat = [Double](repeating: 0, count: out * n), aCatT = [Double](repeating: 0, count: inF * n)
        var offset = 0
        for c in contributions {
            let p = c.pair, w = Double(c.weight)
            for j in 0..<p.rank {
                let col = offset + j
                for o in 0..<out { bCat[col * out + o] = w * Double(p.b[o * p.rank + j]) }
                for i in 0..<inF { aCatT[col * inF + i] = Double(p.a[j * inF + i]) }
            }
            offset += p.rank
        }
        let qb = HouseholderQR(columnMajor: bCat, rows: out, cols: n)
        let qa = HouseholderQR(columnMajor: aCatT, rows: inF, cols: n)
        let kb = qb.steps, ka = qa.steps
        // Core M = Rb · Raᵀ [kb x ka], column-major; Rb [kb x n], Ra [ka x n] row-major.
        var core = [Double](repeating: 0, count: kb * ka)
        for j in 0..<ka {
            for i in 0..<kb {
                var sum = 0.0
                for l in 0..<n { sum += qb.r[i * n + l] * qa.r[j * n + l] }
                core[j * kb + i] = sum
            }
        }
        let svd = JacobiSVD(columnMajor: core, rows: kb, cols: ka)
        let kept = min(rank, svd.count)
        var yb = [Double](repeating: 0, count: kb * kept), ya = [Double](repeating: 0, count: ka * kept)
        for t in 0..<kept {
            for i in 0..<kb { yb[t * kb + i] = svd.u[t * kb + i] * svd.s[t] }
            for i in 0..<ka { ya[t * ka + i] = svd.v[t * ka + i] }
        }
        let bLeft = qb.applyQ(yb, count: kept)   // [out x kept] column-major
        let aRight = qa.applyQ(ya, count: kept)  // [in x kept] column-major = A's rows
        var b = [Float](repeating: 0, count: out * rank), a = [Float](repeating: 0, count: rank * inF)
        for t in 0..<kept {
            for o in 0..<out { b[o * rank + t] = Float(bLeft[t * out + o]) }
            for i in 0..<inF { a[t * inF + i] = Float(aRight[t * inF + i]) }
        }
        return LoRAPair(rank: rank, inFeatures: inF, outFeatures: out, a: a, b: b)
    }
}
