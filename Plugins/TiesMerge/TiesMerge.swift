import LlamaModel
import MergeSupport

/// PEFT's `ties` combination (TIES-Merging, Yadav et al. 2023, arXiv:2306.01708), applied as
/// PEFT does to the A matrices and, separately, to the B matrices.
///
/// All inputs must share one rank. For each factor at each target, with the inputs' tensors
/// t_i and weights c_i = sqrt(weight_i · scale_i):
///   1. trim: keep the ⌊density · count⌋ entries of t_i of largest magnitude, zero the rest;
///   2. elect: per entry, s = sign(Σ_i trimmed_i) (`total`) or sign(Σ_i sign(trimmed_i))
///      (`frequency`), +1 on a tie; as in PEFT the election ignores the weights c_i;
///   3. disjoint merge: Σ_i c_i · trimmed_i over the inputs whose entry has sign s, divided by
///      the number of those inputs (at least 1).
/// The result has the inputs' rank and alpha = rank (scale 1). Weights must be >= 0.
public struct TiesMerge: MergeMethod {
    public let name = "ties"
    public let summary = "PEFT ties: trim to --density, elect signs, disjoint mean; on A and B separately (one rank)"

    public init() {}

    /// Reads `options.density` and `options.majoritySign`.
    public func merge(_ inputs: [WeightedAdapter], options: MergeOptions) throws -> LoRAAdapter {
        let checked = try MergeInputs(inputs, options: options)
        let extra = ["merge_density": "\(options.density)", "merge_majority_sign": options.majoritySign.rawValue]
        return try checked.mergeFactorsSeparately(method: name, extraMetadata: extra) { task in
            let trimmed = task.tensors.map { TaskVectors.magnitudeTrim($0, density: options.density) }
            return TaskVectors.electAndMerge(trimmed, weights: task.weights, method: options.majoritySign)
        }
    }
}
