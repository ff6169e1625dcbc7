import LlamaModel

/// Which factor of a LoRA pair a task tensor is.
public enum Factor: Int, Sendable {
    case a = 0, b = 1
}

/// The task tensors of one factor at one target, as PEFT hands them to its merge utilities.
public struct FactorTask: Sendable {
    /// Where the tensors sit.
    public let target: LoRATarget
    /// Whether they are A's or B's.
    public let factor: Factor
    /// Indices of the inputs that have the target (the others are absent, i.e. zero).
    public let inputs: [Int]
    /// Each input's A (row-major [rank x in]) or B (row-major [out x rank]), unweighted.
    public let tensors: [[Float]]
    /// sqrt(weight · scale) of each input.
    public let weights: [Float]
}

extension MergeInputs {
    /// PEFT's `add_weighted_adapter` for linear, ties and dare (`_generalized_task_arithmetic_
    /// weighted_adapter`): all inputs share one rank; the A matrices are combined into the new A
    /// and, separately, the B matrices into the new B, each input weighted by sqrt(weight ·
    /// scale). The result is therefore not Σ weight · scale · B·A: cross terms B_i·A_j remain.
    /// The adapter has that rank and alpha = rank (scale 1).
    public func mergeFactorsSeparately(method: String, extraMetadata: [String: String] = [:],
                                       combine: (FactorTask) -> [Float]) throws -> LoRAAdapter {
        let rank = try commonRank(method: method)
        let roots = try squareRootWeights(method: method)
        let pairs = try mapTargets { target, contributions in
            let inputs = contributions.map(\.input)
            let weights = inputs.map { roots[$0] }
            let a = combine(FactorTask(target: target, factor: .a, inputs: inputs,
                                       tensors: contributions.map(\.pair.a), weights: weights))
            let b = combine(FactorTask(target: target, factor: .b, inputs: inputs,
                                       tensors: contributions.map(\.pair.b), weights: weights))
            let first = contributions[0].pair
            return LoRAPair(rank: first.rank, inFeatures: first.inFeatures, outFeatures: first.outFeatures, a: a, b: b)
        }
        return result(rank: rank, pairs: pairs, metadata: metadata(method: method, extra: extraMetadata))
    }
}
