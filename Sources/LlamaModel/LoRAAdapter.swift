/// Where a LoRA pair sits: a projection in a layer.
public struct LoRATarget: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var layer: Int
    public var projection: Projection

    public init(layer: Int, projection: Projection) {
        self.layer = layer
        self.projection = projection
    }

    public static func < (a: LoRATarget, b: LoRATarget) -> Bool {
        a.layer != b.layer ? a.layer < b.layer
            : Projection.allCases.firstIndex(of: a.projection)! < Projection.allCases.firstIndex(of: b.projection)!
    }

    public var description: String { "layers.\(layer).\(projection.rawValue)" }
}

/// One low-rank pair: delta W = B · A, with A [rank x inFeatures] and B [outFeatures x rank],
/// row-major, as PEFT stores `lora_A.weight` and `lora_B.weight`.
///
/// Rows of B follow the base model's own row order as Graft holds it (GGUF order): for the
/// query and key projections that order interleaves each head's two RoPE halves, so a PEFT
/// (HuggingFace-order) B must be permuted on import and back on export
/// (see `LoRAPair.permuteRowsFromHF`).
public struct LoRAPair: Equatable, Sendable {
    public var rank: Int
    public var inFeatures: Int
    public var outFeatures: Int
    public var a: [Float]
    public var b: [Float]

    public init(rank: Int, inFeatures: Int, outFeatures: Int, a: [Float], b: [Float]) {
        precondition(a.count == rank * inFeatures && b.count == outFeatures * rank, "LoRA pair shape mismatch")
        self.rank = rank; self.inFeatures = inFeatures; self.outFeatures = outFeatures
        self.a = a; self.b = b
    }

    /// Reorders rows of a [rows x width] matrix from HuggingFace's half-split RoPE layout to
    /// GGUF's interleaved one, per head of `headDim` rows: GGUF row 2j + i of a head is HF row
    /// i * headDim/2 + j (i in 0...1).
    public static func permuteRowsFromHF(_ m: [Float], rows: Int, width: Int, headDim: Int) -> [Float] {
        permuteRows(m, rows: rows, width: width, headDim: headDim, toGGUF: true)
    }

    /// The inverse of `permuteRowsFromHF`.
    public static func permuteRowsToHF(_ m: [Float], rows: Int, width: Int, headDim: Int) -> [Float] {
        permuteRows(m, rows: rows, width: width, headDim: headDim, toGGUF: false)
    }

    private static func permuteRows(_ m: [Float], rows: Int, width: Int, headDim: Int, toGGUF: Bool) -> [Float] {
        var out = m
        let half = headDim / 2
        for h in 0..<rows / headDim {
            for j in 0..<half {
                for i in 0..<2 {
                    let hf = (h * headDim + i * half + j) * width, gguf = (h * headDim + 2 * j + i) * width
                    let (src, dst) = toGGUF ? (hf, gguf) : (gguf, hf)
                    for c in 0..<width { out[dst + c] = m[src + c] }
                }
            }
        }
        return out
    }
}

/// A LoRA adapter: an immutable value, validated against a base model before use.
///
/// The effective update of a target is `scale · B · A` with `scale = alpha / rank`, or
/// `alpha / sqrt(rank)` with rsLoRA. Ranks may differ per target (as after a `cat` merge);
/// `rank` is the nominal rank that `alpha` refers to.
public struct LoRAAdapter: Equatable, Sendable {
    public var rank: Int
    public var alpha: Float
    public var useRSLoRA: Bool
    public var pairs: [LoRATarget: LoRAPair]
    /// Free-form string metadata (base model, training config, metrics...).
    public var metadata: [String: String]

    public init(rank: Int, alpha: Float, useRSLoRA: Bool = false, pairs: [LoRATarget: LoRAPair],
                metadata: [String: String] = [:]) {
        self.rank = rank; self.alpha = alpha; self.useRSLoRA = useRSLoRA
        self.pairs = pairs; self.metadata = metadata
    }

    /// The factor applied to B · A.
    public var scale: Float {
        useRSLoRA ? alpha / Float(rank).squareRoot() : alpha / Float(rank)
    }

    /// Targeted projections, in model order.
    public var projections: [Projection] {
        Projection.allCases.filter { p in pairs.keys.contains { $0.projection == p } }
    }

    public var parameterCount: Int { pairs.values.reduce(0) { $0 + $1.a.count + $1.b.count } }

    /// Checks every pair against the base model's shapes and, unless the caller already has
    /// (a decoder that rejects them), that every value is finite.
    public func validate(against config: LlamaConfig, checkValues: Bool = true) throws {
        guard rank > 0 else { throw AdapterError.invalid("rank \(rank) must be positive") }
        guard alpha.isFinite else { throw AdapterError.invalid("alpha is not finite") }
        for (target, pair) in pairs.sorted(by: { $0.key < $1.key }) {
            guard target.layer >= 0 && target.layer < config.layers else {
                throw AdapterError.shapeMismatch(target: target.description,
                    detail: "layer \(target.layer) does not exist (the base model has \(config.layers)); maybe the wrong base model?")
            }
            let (outF, inF) = config.shape(of: target.projection)
            guard pair.inFeatures == inF && pair.outFeatures == outF else {
                throw AdapterError.shapeMismatch(target: target.description,
                    detail: "delta is \(pair.outFeatures) x \(pair.inFeatures), the base weight is \(outF) x \(inF); maybe the wrong base model?")
            }
            guard pair.rank > 0 else { throw AdapterError.invalid("\(target): rank \(pair.rank)") }
            guard !checkValues || (pair.a.allSatisfy(\.isFinite) && pair.b.allSatisfy(\.isFinite)) else {
                throw AdapterError.invalid("\(target): non-finite values")
            }
        }
    }
}

extension LlamaConfig {
    /// (out, in) features of a projection's weight.
    public func shape(of p: Projection) -> (out: Int, in: Int) {
        switch p {
        case .query: (qDim, dim)
        case .output: (dim, qDim)
        case .key, .value: (kvDim, dim)
        case .gate, .up: (ffnDim, dim)
        case .down: (dim, ffnDim)
        }
    }
}

public enum AdapterError: Error, CustomStringConvertible, Equatable {
    case invalid(String)
    case shapeMismatch(target: String, detail: String)
    /// The adapter records another base model (its SHA-256) than the one it would be applied to.
    case wrongBase(String)

    public var description: String {
        switch self {
        case .invalid(let s): return "invalid adapter: \(s)"
        case .shapeMismatch(let t, let d): return "adapter does not fit the base model at \(t): \(d)"
        case .wrongBase(let s): return s
        }
    }
}
