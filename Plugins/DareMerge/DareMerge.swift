import LlamaModel
import MergeSupport

// DARE (drop and rescale): Yu et al. 2023, "Language Models are Super Mario", arXiv:2311.03099.

/// PEFT's `dare_linear` combination, on the A matrices and, separately, the B matrices.
///
/// All inputs must share one rank. For each factor at each target, every entry of each
/// input's tensor is kept with probability `density` and divided by it, then the tensors are
/// summed with weights sqrt(weight_i · scale_i) (as `linear`). Density 1 drops nothing and
/// equals `linear`. The draws come from `SeededGenerator`s derived from `options.seed`, the
/// target, the factor and the input, so a seed reproduces the result exactly.
public struct DareLinearMerge: MergeMethod {
    public let name = "dare_linear"
    public let summary = "PEFT dare_linear: random drop to --density with rescale, then linear (seeded; one rank)"

    public init() {}

    /// Reads `options.density` and `options.seed`.
    public func merge(_ inputs: [WeightedAdapter], options: MergeOptions) throws -> LoRAAdapter {
        let checked = try MergeInputs(inputs, options: options)
        return try checked.mergeFactorsSeparately(method: name, extraMetadata: DareDrop.metadata(options)) { task in
            TaskVectors.weightedSum(DareDrop.apply(task, options: options), weights: task.weights)
        }
    }
}

/// PEFT's `dare_ties` combination: DARE's random drop and rescale, then TIES' sign election
/// (on the dropped tensors, unweighted) and disjoint merge with weights sqrt(weight_i ·
/// scale_i), on A and B separately. All inputs must share one rank.
public struct DareTiesMerge: MergeMethod {
    public let name = "dare_ties"
    public let summary = "PEFT dare_ties: random drop to --density with rescale, elect signs, disjoint mean (seeded; one rank)"

    public init() {}

    /// Reads `options.density`, `options.seed` and `options.majoritySign`.
    public func merge(_ inputs: [WeightedAdapter], options: MergeOptions) throws -> LoRAAdapter {
        let checked = try MergeInputs(inputs, options: options)
        var extra = DareDrop.metadata(options)
        extra["merge_majority_sign"] = options.majoritySign.rawValue
        return try checked.mergeFactorsSeparately(method: name, extraMetadata: extra) { task in
            TaskVectors.electAndMerge(DareDrop.apply(task, options: options), weights: task.weights,
                                      method: options.majoritySign)
        }
    }
}

/// The drop step shared by both DARE variants.
enum DareDrop {
    /// Each input's tensor with entries dropped and rescaled, from its own generator.
    static func apply(_ task: FactorTask, options: MergeOptions) -> [[Float]] {
        zip(task.inputs, task.tensors).map { input, tensor in
            var rng = generator(seed: options.seed, target: task.target, factor: task.factor, input: input)
            return TaskVectors.randomDrop(tensor, density: options.density, generator: &rng)
        }
    }

    /// A generator per (seed, target, factor, input): the draws do not depend on which other
    /// targets exist or on the order targets are processed in.
    static func generator(seed: UInt64, target: LoRATarget, factor: Factor, input: Int) -> SeededGenerator {
        let projection = Projection.allCases.firstIndex(of: target.projection)!
        var h = seed
        for part in [UInt64(target.layer), UInt64(projection), UInt64(factor.rawValue), UInt64(input)] {
            h = mix(h ^ part)
        }
        return SeededGenerator(seed: h)
    }

    /// SplitMix64's finalizer: a bijective scramble of 64 bits.
    private static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    static func metadata(_ options: MergeOptions) -> [String: String] {
        ["merge_density": "\(options.density)", "merge_seed": String(options.seed)]
    }
}
