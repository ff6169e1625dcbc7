import GGUF
import TensorKit

/// GGUF tensor names of the Llama layout, in one place.
enum GGUFKey {
    static let tokenEmbedding = "token_embd.weight"
    static let outputNorm = "output_norm.weight"
    static let output = "output.weight"
    static func block(_ l: Int, _ name: String) -> String { "blk.\(l).\(name).weight" }
}

/// The projections a LoRA adapter can target, named as in PEFT.
public enum Projection: String, CaseIterable, Sendable {
    case query = "q_proj", key = "k_proj", value = "v_proj", output = "o_proj"
    case gate = "gate_proj", up = "up_proj", down = "down_proj"

    var ggufName: String {
        switch self {
        case .query: "attn_q"
        case .key: "attn_k"
        case .value: "attn_v"
        case .output: "attn_output"
        case .gate: "ffn_gate"
        case .up: "ffn_up"
        case .down: "ffn_down"
        }
    }
}

public struct LayerWeights: @unchecked Sendable {
    public var attentionNorm: [Float]
    public var ffnNorm: [Float]
    public var query, key, value, output: PanelMatrix
    public var gate, up, down: PanelMatrix
    /// Biases of the q/k/v projections (Qwen 2).
    public var queryBias: [Float]?, keyBias: [Float]?, valueBias: [Float]?
    /// Per-head RMSNorm weights of q and k, headDim each (Qwen 3, Gemma 3).
    public var queryNorm: [Float]?, keyNorm: [Float]?
    /// RMSNorms on the attention and feed-forward outputs (Gemma 2/3).
    public var postAttentionNorm: [Float]?, postFFNNorm: [Float]?

    public func matrix(_ p: Projection) -> PanelMatrix {
        switch p {
        case .query: query
        case .key: key
        case .value: value
        case .output: output
        case .gate: gate
        case .up: up
        case .down: down
        }
    }
}

/// All weights, copied out of the file into panel layout (quantized formats kept bit-exact).
public struct LlamaWeights: @unchecked Sendable {
    public var tokenEmbedding: PanelMatrix
    /// The output projection; the token embedding itself when the model ties them.
    public var output: PanelMatrix
    public var outputNorm: [Float]
    public var layers: [LayerWeights]
    /// RoPE frequency factors (`rope_freqs`, or Phi-3's `rope_factors_short`), headDim/2 of them.
    public var ropeFactors: [Float]?
    /// Multiplier on RoPE's cos and sin (Phi-3's long-RoPE attention factor).
    public var ropeMagnitude: Float = 1

    public var byteCount: Int {
        var n = tokenEmbedding.byteCount + (output === tokenEmbedding ? 0 : output.byteCount)
        for l in layers { for p in Projection.allCases { n += l.matrix(p).byteCount } }
        return n
    }

    /// How weights are held in memory.
    public enum Storage: String, Sendable, CaseIterable {
        /// Every type stays as the file stores it (bit-exact) and is decoded on the fly; the default.
        case quantized
        /// Everything is expanded once to Float32 (4-7x the memory).
        case float32
    }

    init(gguf: GGUFFile, config c: LlamaConfig, storage: Storage = .quantized) throws {
        var used = Set<String>()
        func require(_ name: String, _ dims: [Int]) throws -> GGUFTensorInfo {
            let t = try gguf.requireTensor(name)
            guard t.dimensions == dims else { throw GGUFError.shapeMismatch(tensor: name, expected: dims, found: t.dimensions) }
            used.insert(name)
            return t
        }
        /// Rows `rows` of the [total x cols] matrix `name` (a fused tensor holds several).
        func matrix(_ name: String, rows: Int, cols: Int, slice: Range<Int>? = nil) throws -> PanelMatrix {
            let t = try require(name, [cols, rows])
            return try Self.panels(t, gguf: gguf, storage: storage, rows: slice ?? 0..<rows)
        }
        func vector(_ name: String, count: Int) throws -> [Float] {
            try Dequantize.tensor(try require(name, [count]), in: gguf)
        }
        func optionalVector(_ name: String, count: Int) throws -> [Float]? {
            gguf.tensor(named: name) == nil ? nil : try vector(name, count: count)
        }
        tokenEmbedding = try matrix(GGUFKey.tokenEmbedding, rows: c.vocabularySize, cols: c.dim)
        output = gguf.tensor(named: GGUFKey.output) == nil
            ? tokenEmbedding : try matrix(GGUFKey.output, rows: c.vocabularySize, cols: c.dim)
        outputNorm = try vector(GGUFKey.outputNorm, count: c.dim)
        layers = try (0..<c.layers).map { l in
            func name(_ base: String, _ suffix: String = "weight") -> String { "blk.\(l).\(base).\(suffix)" }
            func m(_ p: Projection) throws -> PanelMatrix {
                let (rows, cols) = c.shape(of: p)
                return try matrix(name(p.ggufName), rows: rows, cols: cols)
            }
            let query, key, value, gate, up: PanelMatrix
            if gguf.tensor(named: name("attn_qkv")) != nil {
                // Fused [Q; K; V] rows (Phi-3), split on load.
                let total = c.qDim + 2 * c.kvDim, qkv = name("attn_qkv")
                query = try matrix(qkv, rows: total, cols: c.dim, slice: 0..<c.qDim)
                key = try matrix(qkv, rows: total, cols: c.dim, slice: c.qDim..<c.qDim + c.kvDim)
                value = try matrix(qkv, rows: total, cols: c.dim, slice: c.qDim + c.kvDim..<total)
            } else {
                (query, key, value) = (try m(.query), try m(.key), try m(.value))
            }
            if gguf.tensor(named: name("ffn_gate")) == nil, let fused = gguf.tensor(named: name("ffn_up")),
               fused.dimensions == [c.dim, 2 * c.ffnDim] {
                // Fused [gate; up] rows (Phi-3).
                let n = name("ffn_up")
                gate = try matrix(n, rows: 2 * c.ffnDim, cols: c.dim, slice: 0..<c.ffnDim)
                up = try matrix(n, rows: 2 * c.ffnDim, cols: c.dim, slice: c.ffnDim..<2 * c.ffnDim)
            } else {
                (gate, up) = (try m(.gate), try m(.up))
            }
            var layer = LayerWeights(
                attentionNorm: try vector(name("attn_norm"), count: c.dim),
                ffnNorm: try vector(name("ffn_norm"), count: c.dim),
                query: query, key: key, value: value, output: try m(.output),
                gate: gate, up: up, down: try m(.down))
            if c.attentionBias {
                layer.queryBias = try vector(name("attn_q", "bias"), count: c.qDim)
                layer.keyBias = try vector(name("attn_k", "bias"), count: c.kvDim)
                layer.valueBias = try vector(name("attn_v", "bias"), count: c.kvDim)
            }
            if c.queryKeyNorm {
                layer.queryNorm = try vector(name("attn_q_norm"), count: c.headDim)
                layer.keyNorm = try vector(name("attn_k_norm"), count: c.headDim)
            }
            if c.postNorms {
                layer.postAttentionNorm = try vector(name("post_attention_norm"), count: c.dim)
                layer.postFFNNorm = try vector(name("post_ffw_norm"), count: c.dim)
            }
            return layer
        }
        // RoPE frequency factors: Llama 3's `rope_freqs`; Phi-3's short factors (Graft serves
        // Phi-3 within its original context, where the short factors apply).
        ropeFactors = try optionalVector("rope_freqs.weight", count: c.headDim / 2)
            ?? optionalVector("rope_factors_short.weight", count: c.headDim / 2)
        if gguf.tensor(named: "rope_factors_long.weight") != nil {
            _ = try vector("rope_factors_long.weight", count: c.headDim / 2)
            ropeMagnitude = Float(gguf.double("\(c.architecture).rope.scaling.attn_factor") ?? 1)
        }
        // A tensor Graft would not read means the file holds something this implementation
        // does not compute: refuse it rather than answer wrongly.
        for t in gguf.tensors where !used.contains(t.name) {
            throw ModelError.invalidConfig("tensor '\(t.name)' is not used by Graft's \(c.architecture) implementation")
        }
    }

    /// Rows `rows` of `t` in panel layout, every supported type keeping its bits (unless the
    /// storage is `.float32`).
    static func panels(_ t: GGUFTensorInfo, gguf: GGUFFile, storage: Storage, rows range: Range<Int>) throws -> PanelMatrix {
        guard t.type.isSupported else { throw GGUFError.unsupportedTensorType(type: t.type.name, tensor: t.name) }
        defer { gguf.discardPages(of: t) }
        let rowBytes = t.type.byteCount(elements: t.rowLength)
        let data = gguf.data(of: t).baseAddress! + range.lowerBound * rowBytes
        let rows = range.count, cols = t.rowLength
        switch (t.type, storage) {
        case (_, .quantized) where t.type != .f32:
            // Every supported type keeps its bits; GGUF rows are whole blocks, as panels need.
            guard let format = PanelMatrix.Format(rawValue: t.type.name) else {
                throw GGUFError.unsupportedTensorType(type: t.type.name, tensor: t.name)
            }
            return PanelMatrix(ggufRows: data, format: format, rows: rows, cols: cols)
        default:
            var failure: Error?
            let m = PanelMatrix(rows: rows, cols: cols) { r, dst in
                do { try Dequantize.decode(t.type, data + r * rowBytes, into: dst, count: cols) } catch { failure = error }
            }
            if let failure { throw failure }
            return m
        }
    }
}
