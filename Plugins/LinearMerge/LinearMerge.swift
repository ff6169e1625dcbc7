import LlamaModel
import MergeSupport

/// PEFT's `linear` combination (`add_weighted_adapter(..., combination_type="linear")`).
///
/// All inputs must share one rank r. Per target, with c_i = sqrt(weight_i · scale_i):
///   A = Σ c_i · A_i,   B = Σ c_i · B_i,
/// and the result has rank r, alpha r (scale 1). This averages the factors, not the deltas:
/// B·A = Σ_i Σ_j c_i c_j B_i A_j includes cross terms, so it equals Σ weight · scale · B·A only
/// for a single input (use `cat` for the exact weighted sum of deltas). A target missing from
/// an input counts as zero there. Weights must be >= 0 (PEFT takes the square root).
public struct LinearMerge: MergeMethod {
    public let name = "linear"
    public let summary = "PEFT linear: A = Σ sqrt(w·scale)·A_i and B likewise (one rank; not the exact delta sum)"

    public init() {}

    /// Reads no options (density, rank and seed are ignored; they are still range-checked).
    public func merge(_ inputs: [WeightedAdapter], options: MergeOptions) throws -> LoRAAdapter {
        let checked = try MergeInputs(inputs, options: options)
        return try checked.mergeFactorsSeparately(method: name) { task in
            TaskVectors.weightedSum(task.tensors, weights: task.weights)
        }
    }
}
