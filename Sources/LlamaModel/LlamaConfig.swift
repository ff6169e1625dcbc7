import GGUF

/// Hyperparameters of a Llama-family model, read from GGUF metadata (never hard-coded).
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

    public var kvDim: Int { kvHeads * headDim }

    public init(architecture: String = "llama", layers: Int, dim: Int, ffnDim: Int, heads: Int, kvHeads: Int,
                vocabularySize: Int, contextLength: Int, ropeBase: Float, normEps: Float) {
        self.architecture = architecture
        self.layers = layers; self.dim = dim; self.ffnDim = ffnDim
        self.heads = heads; self.kvHeads = kvHeads; self.headDim = dim / heads
        self.vocabularySize = vocabularySize; self.contextLength = contextLength
        self.ropeBase = ropeBase; self.normEps = normEps
    }

    /// Architectures whose GGUF tensors and metadata follow the Llama layout.
    static let supportedArchitectures = ["llama"]

    public init(gguf: GGUFFile) throws {
        let arch = try gguf.requireString("general.architecture")
        guard Self.supportedArchitectures.contains(arch) else { throw ModelError.unsupportedArchitecture(arch) }
        func key(_ k: String) -> String { "\(arch).\(k)" }
        let heads = try gguf.requireInt(key("attention.head_count"))
        let dim = try gguf.requireInt(key("embedding_length"))
        let vocab = gguf.int(key("vocab_size"))
            ?? gguf.metadata["tokenizer.ggml.tokens"]?.arrayValue?.count
        guard let vocab else { throw ModelError.invalidConfig("no vocabulary size (\(arch).vocab_size or tokenizer.ggml.tokens)") }
        self.init(architecture: arch,
                  layers: try gguf.requireInt(key("block_count")),
                  dim: dim,
                  ffnDim: try gguf.requireInt(key("feed_forward_length")),
                  heads: heads,
                  kvHeads: gguf.int(key("attention.head_count_kv")) ?? heads,
                  vocabularySize: vocab,
                  contextLength: gguf.int(key("context_length")) ?? 2048,
                  ropeBase: Float(gguf.double(key("rope.freq_base")) ?? 10000),
                  normEps: Float(try gguf.requireDouble(key("attention.layer_norm_rms_epsilon"))))
        if let ropeDims = gguf.int(key("rope.dimension_count")), ropeDims != headDim {
            throw ModelError.invalidConfig("partial rotary embedding (\(ropeDims) of \(headDim) dims) is not supported")
        }
        try validate()
    }

    func validate() throws {
        guard layers > 0, dim > 0, ffnDim > 0, heads > 0, kvHeads > 0, vocabularySize > 0 else {
            throw ModelError.invalidConfig("non-positive dimension in \(self)")
        }
        guard dim % heads == 0 else { throw ModelError.invalidConfig("embedding length \(dim) not divisible by \(heads) heads") }
        guard heads % kvHeads == 0 else { throw ModelError.invalidConfig("\(heads) heads not divisible by \(kvHeads) key/value heads") }
        guard headDim % 2 == 0 else { throw ModelError.invalidConfig("odd head dimension \(headDim)") }
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
        case .unsupportedArchitecture(let a): return "unsupported architecture '\(a)' (supported: llama)"
        case .invalidConfig(let s): return "invalid model configuration: \(s)"
        case .contextFull(let n, let l): return "sequence of \(n) tokens exceeds the context length \(l)"
        case .badToken(let t, let v): return "token id \(t) is outside the vocabulary (0..<\(v))"
        case .emptyInput: return "no input tokens"
        }
    }
}
