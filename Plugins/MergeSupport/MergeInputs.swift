import LlamaModel

/// One input's pair at a target, with the factor its delta carries.
public struct Contribution: Sendable {
    /// Index of the input in the merge's argument list.
    public let input: Int
    /// The input's pair at the target.
    public let pair: LoRAPair
    /// weight · scale of the input: its delta at this target is `weight · B · A`.
    public let weight: Float
}

/// The checked inputs of a merge, gathered per target.
///
/// Construction rejects an empty input list, out-of-range options, non-finite weights or
/// scales, and pairs whose base shapes (out x in) disagree between inputs at one target.
/// A target present in only some inputs gets contributions from those alone, which every
/// method here treats as the others contributing zero.
public struct MergeInputs: Sendable {
    /// The inputs as given.
    public let inputs: [WeightedAdapter]
    /// The options, checked: density in (0, 1], rank (if set) positive.
    public let options: MergeOptions
    /// The union of the inputs' targets, in model order.
    public let targets: [LoRATarget]
    private let byTarget: [LoRATarget: [Contribution]]

    /// Checks and gathers `inputs`; throws `MergeError` (see the type's description).
    public init(_ inputs: [WeightedAdapter], options: MergeOptions) throws {
        guard !inputs.isEmpty else { throw MergeError.noInputs }
        guard options.density > 0 && options.density <= 1 else {
            throw MergeError.badOption("density \(options.density) must be in (0, 1]")
        }
        if let rank = options.rank, rank <= 0 { throw MergeError.badOption("rank \(rank) must be positive") }
        var byTarget: [LoRATarget: [Contribution]] = [:]
        for (i, input) in inputs.enumerated() {
            let label = Self.label(inputs, i)
            guard input.weight.isFinite else { throw MergeError.badOption("weight of \(label) is not finite") }
            let scale = input.adapter.scale
            guard input.adapter.rank > 0 && scale.isFinite else {
                throw MergeError.incompatible("\(label) has rank \(input.adapter.rank) and alpha \(input.adapter.alpha)")
            }
            guard (input.weight * scale).isFinite else {
                throw MergeError.badOption("weight \(input.weight) times the scale \(scale) of \(label) overflows")
            }
            for (target, pair) in input.adapter.pairs {
                guard pair.rank > 0, pair.a.count == pair.rank * pair.inFeatures,
                      pair.b.count == pair.outFeatures * pair.rank else {
                    throw MergeError.incompatible("\(label) at \(target): factors do not match rank \(pair.rank)")
                }
                if let first = byTarget[target]?.first,
                   first.pair.inFeatures != pair.inFeatures || first.pair.outFeatures != pair.outFeatures {
                    throw MergeError.incompatible(
                        "\(target) is \(first.pair.outFeatures) x \(first.pair.inFeatures) in \(Self.label(inputs, first.input)) "
                        + "but \(pair.outFeatures) x \(pair.inFeatures) in \(label); were they trained on different base models?")
                }
                byTarget[target, default: []].append(Contribution(input: i, pair: pair, weight: input.weight * scale))
            }
        }
        self.inputs = inputs
        self.options = options
        self.byTarget = byTarget
        self.targets = byTarget.keys.sorted()
    }

    /// The inputs that have `target`, in input order.
    public func contributions(to target: LoRATarget) -> [Contribution] { byTarget[target] ?? [] }

    /// How errors and metadata name input `i`: its `metadata["name"]`, else its index.
    public func label(_ i: Int) -> String { Self.label(inputs, i) }

    private static func label(_ inputs: [WeightedAdapter], _ i: Int) -> String {
        inputs[i].adapter.metadata["name"].map { "'\($0)'" } ?? "input \(i)"
    }

    /// The nominal rank shared by all inputs, for the methods that combine A's and B's
    /// element-wise (PEFT requires one `r` for them); also checks each target's pairs.
    public func commonRank(method: String) throws -> Int {
        let rank = inputs[0].adapter.rank
        if let i = inputs.indices.first(where: { inputs[$0].adapter.rank != rank }) {
            throw MergeError.incompatible("\(method) needs adapters of one rank, but \(label(0)) has rank \(rank) "
                                          + "and \(label(i)) rank \(inputs[i].adapter.rank); use cat or svd")
        }
        for target in targets {
            let c = contributions(to: target)
            if let other = c.first(where: { $0.pair.rank != c[0].pair.rank }) {
                throw MergeError.incompatible("\(method) needs pairs of one rank, but at \(target) \(label(c[0].input)) "
                                              + "has rank \(c[0].pair.rank) and \(label(other.input)) rank \(other.pair.rank)")
            }
        }
        return rank
    }

    /// sqrt(weight · scale) per input: PEFT applies this factor to both A and B when it
    /// combines them separately, so a negative product has no meaning there.
    public func squareRootWeights(method: String) throws -> [Float] {
        try inputs.indices.map { i in
            let product = Double(inputs[i].weight) * Double(inputs[i].adapter.scale)
            guard product >= 0 else {
                throw MergeError.badOption("\(method) scales A and B by sqrt(weight · scale), so the weight of \(label(i)) "
                                           + "(\(inputs[i].weight)) must not be negative; cat and svd accept negative weights")
            }
            return Float(product.squareRoot())
        }
    }

    /// The result's metadata: `merge_method`, `merge_inputs` (names, else indices),
    /// `merge_weights`, plus the method's own `extra` settings. Input metadata is not carried
    /// over (some keys, such as "name", are reserved by the file formats).
    public func metadata(method: String, extra: [String: String] = [:]) -> [String: String] {
        var m = extra
        m["merge_method"] = method
        m["merge_inputs"] = inputs.indices.map { inputs[$0].adapter.metadata["name"] ?? String($0) }.joined(separator: ",")
        m["merge_weights"] = inputs.map { "\($0.weight)" }.joined(separator: ",")
        return m
    }

    /// Builds one pair per target with `body`, spreading targets over the cores. The first
    /// error in model order is rethrown.
    public func mapTargets(_ body: (LoRATarget, [Contribution]) throws -> LoRAPair) throws -> [LoRATarget: LoRAPair] {
        let pairs = try Parallel.map(targets.count) { i in try body(targets[i], contributions(to: targets[i])) }
        return Dictionary(uniqueKeysWithValues: zip(targets, pairs))
    }

    /// An adapter of nominal `rank` with alpha = rank, so its scale is 1 and the merged
    /// factors carry every input's scale.
    public func result(rank: Int, pairs: [LoRATarget: LoRAPair], metadata: [String: String]) -> LoRAAdapter {
        LoRAAdapter(rank: rank, alpha: Float(rank), useRSLoRA: false, pairs: pairs, metadata: metadata)
    }
}
