import LlamaModel

/// Element-wise merge primitives on task tensors (flat arrays of equal length), as PEFT's
/// `merge_utils` defines them. TIES: Yadav et al. 2023, arXiv:2306.01708; DARE: Yu et al.
/// 2023, arXiv:2311.03099.
public enum TaskVectors {
    /// Σ weights[i] · tensors[i] (task arithmetic).
    public static func weightedSum(_ tensors: [[Float]], weights: [Float]) -> [Float] {
        precondition(tensors.count == weights.count && !tensors.isEmpty)
        var out = [Float](repeating: 0, count: tensors[0].count)
        for (t, w) in zip(tensors, weights) {
            precondition(t.count == out.count)
            for e in out.indices { out[e] += w * t[e] }
        }
        return out
    }

    /// How many of `count` values a trim to `density` keeps: ⌊density · count⌋ as PEFT's
    /// `int(density * numel)`, with the density read as the decimal the user wrote (0.7, not
    /// the Float nearest it, which is just below 0.7), and all of them from density 1 on.
    public static func keepCount(density: Float, count: Int) -> Int {
        if density >= 1 { return count }
        let d = Double(density.description) ?? Double(density)
        return min(count, max(0, Int((d * Double(count)).rounded(.down))))
    }

    /// TIES "trim": keeps the `keepCount` values of largest magnitude and zeroes the rest;
    /// among equal magnitudes at the cut the lower indices are kept. Density 1 keeps all.
    public static func magnitudeTrim(_ tensor: [Float], density: Float) -> [Float] {
        let k = keepCount(density: density, count: tensor.count)
        if k == tensor.count { return tensor }
        var out = [Float](repeating: 0, count: tensor.count)
        if k == 0 { return out }
        var magnitudes = tensor.map { abs($0) }
        let threshold = Selection.kthLargest(&magnitudes, k)
        var atThreshold = k - tensor.reduce(0) { $0 + (abs($1) > threshold ? 1 : 0) }
        for e in tensor.indices {
            let m = abs(tensor[e])
            if m > threshold {
                out[e] = tensor[e]
            } else if m == threshold && atThreshold > 0 {
                out[e] = tensor[e]
                atThreshold -= 1
            }
        }
        return out
    }

    /// DARE "drop and rescale": keeps each value with probability `density` (one uniform
    /// draw from `generator` per value, in order) and divides kept values by `density`.
    /// Density 1 returns the tensor unchanged and draws nothing, as PEFT's `prune`.
    public static func randomDrop(_ tensor: [Float], density: Float, generator: inout SeededGenerator) -> [Float] {
        if density >= 1 { return tensor }
        let p = Double(density)
        var out = [Float](repeating: 0, count: tensor.count)
        for e in tensor.indices {
            let u = Double(generator.next() >> 11) * 0x1.0p-53
            if u < p { out[e] = tensor[e] / density }
        }
        return out
    }

    /// TIES "elect": the sign (+1 or -1) per element of the sum of the values (`total`) or
    /// of their signs (`frequency`); a zero sum elects +1. As in PEFT, the election sees the
    /// trimmed tensors before the input weights are applied.
    public static func electSigns(_ tensors: [[Float]], method: MergeOptions.MajoritySign) -> [Float] {
        precondition(!tensors.isEmpty)
        var sum = [Float](repeating: 0, count: tensors[0].count)
        for t in tensors {
            precondition(t.count == sum.count)
            switch method {
            case .total:
                for e in sum.indices { sum[e] += t[e] }
            case .frequency:
                for e in sum.indices { sum[e] += t[e] > 0 ? 1 : (t[e] < 0 ? -1 : 0) }
            }
        }
        return sum.map { $0 >= 0 ? 1 : -1 }
    }

    /// TIES "disjoint merge", PEFT's formula: per element, Σ weights[i] · tensors[i] over the
    /// inputs whose value has the elected sign (zeros never agree), divided by the number of
    /// such inputs (a count, not a sum of weights; at least 1).
    public static func disjointMerge(_ tensors: [[Float]], weights: [Float], signs: [Float]) -> [Float] {
        precondition(tensors.count == weights.count && !tensors.isEmpty)
        var sum = [Float](repeating: 0, count: signs.count)
        var agreeing = [Float](repeating: 0, count: signs.count)
        for (t, w) in zip(tensors, weights) {
            precondition(t.count == signs.count)
            for e in signs.indices where t[e] * signs[e] > 0 {
                sum[e] += w * t[e]
                agreeing[e] += 1
            }
        }
        for e in sum.indices { sum[e] /= max(agreeing[e], 1) }
        return sum
    }

    /// Sign election then disjoint merge of already sparsified tensors (the last two TIES
    /// steps, shared by ties and dare_ties).
    public static func electAndMerge(_ tensors: [[Float]], weights: [Float],
                                     method: MergeOptions.MajoritySign) -> [Float] {
        disjointMerge(tensors, weights: weights, signs: electSigns(tensors, method: method))
    }
}
