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

    public var byteCount: Int {
        var n = tokenEmbedding.byteCount + (output === tokenEmbedding ? 0 : output.byteCount)
        for l in layers { for p in Projection.allCases { n += l.matrix(p).byteCount } }
        return n
    }

    /// How weights are held in memory.
    public enum Storage: String, Sendable, CaseIterable {
        /// Q4_1 and Q8_0 stay quantized (bit-exact) and are decoded on the fly; the default.
        case quantized
        /// Everything is expanded once to Float32 (4-7x the memory).
        case float32
    }

    init(gguf: GGUFFile, config c: LlamaConfig, storage: Storage = .quantized) throws {
        func matrix(_ name: String, rows: Int, cols: Int) throws -> PanelMatrix {
            let t = try gguf.requireTensor(name)
            guard t.dimensions == [cols, rows] else {
                throw GGUFError.shapeMismatch(tensor: name, expected: [cols, rows], found: t.dimensions)
            }
            defer { gguf.discardPages(of: t) }
            return try Self.panels(t, gguf: gguf, storage: storage)
        }
        func vector(_ name: String, count: Int) throws -> [Float] {
            let t = try gguf.requireTensor(name)
            guard t.dimensions == [count] else { throw GGUFError.shapeMismatch(tensor: name, expected: [count], found: t.dimensions) }
            return try Dequantize.tensor(t, in: gguf)
        }
        tokenEmbedding = try matrix(GGUFKey.tokenEmbedding, rows: c.vocabularySize, cols: c.dim)
        output = gguf.tensor(named: GGUFKey.output) == nil
            ? tokenEmbedding : try matrix(GGUFKey.output, rows: c.vocabularySize, cols: c.dim)
        outputNorm = try vector(GGUFKey.outputNorm, count: c.dim)
        layers = try (0..<c.layers).map { l in
            func m(_ p: Projection, _ rows: Int, _ cols: Int) throws -> PanelMatrix {
                try matrix(GGUFKey.block(l, p.ggufName), rows: rows, cols: cols)
            }
            return LayerWeights(
                attentionNorm: try vector(GGUFKey.block(l, "attn_norm"), count: c.dim),
                ffnNorm: try vector(GGUFKey.block(l, "ffn_norm"), count: c.dim),
                query: try m(.query, c.dim, c.dim), key: try m(.key, c.kvDim, c.dim),
                value: try m(.value, c.kvDim, c.dim), output: try m(.output, c.dim, c.dim),
                gate: try m(.gate, c.ffnDim, c.dim), up: try m(.up, c.ffnDim, c.dim),
                down: try m(.down, c.dim, c.ffnDim))
        }
    }

    /// Q4_1 and Q8_0 keep their bits; every other supported type is widened to Float32.
    static func panels(_ t: GGUFTensorInfo, gguf: GGUFFile, storage: Storage) throws -> PanelMatrix {
        guard t.type.isSupported else { throw GGUFError.unsupportedTensorType(type: t.type.name, tensor: t.name) }
        let data = gguf.data(of: t)
        let rows = t.rowCount, cols = t.rowLength
        switch (t.type, storage) {
        case (_, .quantized) where t.type != .f32:
            // Every supported type keeps its bits; GGUF rows are whole blocks, as panels need.
            guard let format = PanelMatrix.Format(rawValue: t.type.name) else {
                throw GGUFError.unsupportedTensorType(type: t.type.name, tensor: t.name)
            }
            return PanelMatrix(ggufRows: data.baseAddress!, format: format, rows: rows, cols: cols)
        default:
            let rowBytes = t.type.byteCount(elements: cols)
            var failure: Error?
            let m = PanelMatrix(rows: rows, cols: cols) { r, dst in
                do { try Dequantize.decode(t.type, data.baseAddress! + r * rowBytes, into: dst, count: cols) } catch { failure = error }
            }
            if let failure { throw failure }
            return m
        }
    }
}
