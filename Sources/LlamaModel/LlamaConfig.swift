import GGUF
import TensorKit

/// Hyperparameters of a decoder-only model, read from GGUF metadata (never from a table of
/// known models). One layer shape serves every supported architecture; where they differ it
/// is data here: which optional tensors exist, the RoPE layout, the activation, the caps.
public struct LlamaConfig: Equatable, Sendable {
    public var architecture: String
    public var layers: Int
    public var dim: Int
    public var ffnDim: Int
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int
    public var vocabularySize: Int
    public var contextLength: Int
    public var ropeBase: Float
    public var normEps: Float

    /// How RoPE pairs dimensions: adjacent for `llama` (its converter permutes q/k rows), NeoX
    /// halves for the others.
    public var ropeStyle: RoPETable.Style = .adjacent
    /// Linear RoPE scaling: angles are multiplied by this (1 / `rope.scaling.factor`).
    public var ropeFrequencyScale: Float = 1
    /// RoPE base of the sliding-window layers when it differs (Gemma 3's local base).
    public var slidingRopeBase: Float?
    /// q/k/v projections have biases (Qwen 2).
    public var attentionBias = false
    /// Per-head RMSNorm of q and k before RoPE (Qwen 3, Gemma 3).
    public var queryKeyNorm = false
    /// Extra RMSNorms on the attention and feed-forward outputs before the residual (Gemma 2/3).
    public var postNorms = false
    public var activation: Activation.Kind = .silu
    /// The token embedding is multiplied by this (Gemma: √dim).
    public var embeddingScale: Float = 1
    /// Factor on q·k; 1/√headDim unless the architecture fixes another.
    public var attentionScale: Float
    /// Attention scores and final logits pass through cap·tanh(x/cap) when the cap is > 0.
    public var attentionSoftcap: Float = 0
    public var finalSoftcap: Float = 0
    /// Sliding-window size and which layers use it (empty: none do).
    public var slidingWindow = 0
    public var slidingLayers: [Bool] = []

    /// Width of the concatenated query heads (the output projection's input).
    public var qDim: Int { heads * headDim }
    public var kvDim: Int { kvHeads * headDim }

    public init(architecture: String = "llama", layers: Int, dim: Int, ffnDim: Int, heads: Int, kvHeads: Int,
                headDim: Int? = nil, vocabularySize: Int, contextLength: Int, ropeBase: Float, normEps: Float) {
        self.architecture = architecture
        self.layers = layers; self.dim = dim; self.ffnDim = ffnDim
        self.heads = heads; self.kvHeads = kvHeads; self.headDim = headDim ?? dim / max(heads, 1)
        self.vocabularySize = vocabularySize; self.contextLength = contextLength
        self.ropeBase = ropeBase; self.normEps = normEps
        attentionScale = 1 / Float(self.headDim).squareRoot()
    }

    /// Architectures (`general.architecture`) Graft runs.
    public static let supportedArchitectures = ["llama", "qwen2", "qwen3", "phi3", "gemma2", "gemma3"]

    public init(gguf: GGUFFile) throws {
        let arch = try gguf.requireString("general.architecture")
        guard Self.supportedArchitectures.contains(arch) else { throw ModelError.unsupportedArchitecture(arch) }
        func key(_ k: String) -> String { "\(arch).\(k)" }
        let heads = try gguf.requireInt(key("attention.head_count"))
        let dim = try gguf.requireInt(key("embedding_length"))
        let vocab = gguf.int(key("vocab_size"))
            ?? gguf.metadata["tokenizer.ggml.tokens"]?.arrayValue?.count
        guard let vocab else { throw ModelError.invalidConfig("no vocabulary size (\(arch).vocab_size or tokenizer.ggml.tokens)") }
        guard heads > 0 else { throw ModelError.invalidConfig("\(key("attention.head_count")) is \(heads)") }
        let headDim = gguf.int(key("attention.key_length")) ?? dim / heads
        if let v = gguf.int(key("attention.value_length")), v != headDim {
            throw ModelError.invalidConfig("value heads of \(v) dims differ from key heads of \(headDim)")
        }
        self.init(architecture: arch,
                  layers: try gguf.requireInt(key("block_count")),
                  dim: dim,
                  ffnDim: try gguf.requireInt(key("feed_forward_length")),
                  heads: heads,
                  kvHeads: gguf.int(key("attention.head_count_kv")) ?? heads,
                  headDim: headDim,
                  vocabularySize: vocab,
                  contextLength: gguf.int(key("context_length")) ?? 2048,
                  ropeBase: Float(gguf.double(key("rope.freq_base")) ?? 10000),
                  normEps: Float(try gguf.requireDouble(key("attention.layer_norm_rms_epsilon"))))
        if let ropeDims = gguf.int(key("rope.dimension_count")), ropeDims != headDim {
            throw ModelError.invalidConfig("partial rotary embedding (\(ropeDims) of \(headDim) dims) is not supported")
        }
        switch gguf.string(key("rope.scaling.type")) ?? "none" {
        case "none": break
        case "linear":
            let factor = gguf.double(key("rope.scaling.factor")) ?? gguf.double(key("rope.scale_linear")) ?? 1
            guard factor > 0 else { throw ModelError.invalidConfig("\(key("rope.scaling.factor")) is \(factor)") }
            ropeFrequencyScale = Float(1 / factor)
        case "longrope" where arch == "phi3":
            // Served within the original context, where the short factors apply (the factor
            // tensors and the attention factor are read with the weights).
            contextLength = min(contextLength, gguf.int(key("rope.scaling.original_context_length")) ?? contextLength)
        case let other:
            throw ModelError.invalidConfig("RoPE scaling '\(other)' is not supported (none, linear, and Phi-3's longrope are)")
        }
        ropeStyle = arch == "llama" ? .adjacent : .neox
        attentionBias = arch == "qwen2"
        queryKeyNorm = arch == "qwen3" || arch == "gemma3"
        if arch == "gemma2" || arch == "gemma3" {
            postNorms = true
            activation = .geluTanh
            embeddingScale = Float(dim).squareRoot()
            // The query scale is not stored; the reference runtime derives the largest models'
            // from the layer count (Gemma 2 27B: 46 layers, Gemma 3 27B: 62), √(dim/heads).
            if (arch == "gemma2" && layers == 46) || (arch == "gemma3" && layers == 62) {
                attentionScale = 1 / (Float(dim) / Float(heads)).squareRoot()
            }
            let pattern = arch == "gemma2" ? 2 : 6
            slidingWindow = gguf.int(key("attention.sliding_window")) ?? 0
            if slidingWindow > 0 {
                if let flags = gguf.metadata[key("attention.sliding_window_pattern")]?.arrayValue {
                    slidingLayers = flags.map { $0.boolValue ?? false }
                } else {
                    let n = gguf.int(key("attention.sliding_window_pattern")) ?? pattern
                    slidingLayers = (0..<layers).map { n > 1 && $0 % n < n - 1 }
                }
            }
        }
        if arch == "gemma2" {
            attentionSoftcap = Float(gguf.double(key("attn_logit_softcapping")) ?? 50)
            finalSoftcap = Float(gguf.double(key("final_logit_softcapping")) ?? 30)
        }
        if arch == "gemma3" {
            finalSoftcap = Float(gguf.double(key("final_logit_softcapping")) ?? 0)
            slidingRopeBase = Float(gguf.double(key("rope.freq_base_swa")) ?? 10000)
        }
        try validate()
    }

    /// Whether layer `l` attends through the sliding window.
    public func isSliding(_ l: Int) -> Bool { slidingWindow > 0 && l < slidingLayers.count && slidingLayers[l] }

    func validate() throws {
        guard layers > 0, dim > 0, ffnDim > 0, heads > 0, kvHeads > 0, headDim > 0, vocabularySize > 0 else {
            throw ModelError.invalidConfig("non-positive dimension in \(self)")
        }
        guard heads % kvHeads == 0 else { throw ModelError.invalidConfig("\(heads) heads not divisible by \(kvHeads) key/value heads") }
        guard headDim % 2 == 0 else { throw ModelError.invalidConfig("odd head dimension \(headDim)") }
        guard slidingLayers.isEmpty || slidingLayers.count == layers else {
            throw ModelError.invalidConfig("sliding-window pattern has \(slidingLayers.count) entries for \(layers) layers")
        }
    }
}

public enum ModelError: Error, CustomStringConvertible, Equatable {
    case unsupportedArchitecture(String)
    case invalidConfig(String)
    case contextFull(needed: Int, limit: Int)
    case badToken(Int, vocabularySize: Int)
    case emptyInput

    public var description: String {
        switch self {
        case .unsupportedArchitecture(let a):
            return "unsupported architecture '\(a)' (supported: \(LlamaConfig.supportedArchitectures.joined(separator: ", ")))"
        case .invalidConfig(let s): return "invalid model configuration: \(s)"
        case .contextFull(let n, let l): return "sequence of \(n) tokens exceeds the context length \(l)"
        case .badToken(let t, let v): return "token id \(t) is outside the vocabulary (0..<\(v))"
        case .emptyInput: return "no input tokens"
        }
    }
}
