import GGUF
import TensorKit
import Tokenizer

/// A frozen Llama-family model: configuration, weights and tokenizer, with an inference
/// forward pass over a key/value cache.
///
/// Glossary: T = tokens in this call, dim = embedding width, kvDim = key/value width,
/// ffn = feed-forward width. Activations are row-major [T x width]; projections compute
/// `out = input · Wᵀ` with W [out x in] as GGUF stores it.
public final class LlamaModel: @unchecked Sendable {
    public let config: LlamaConfig
    public let weights: LlamaWeights
    public let tokenizer: Tokenizer
    public let name: String
    let rope: RoPETable
    let pool: ThreadPool

    public init(config: LlamaConfig, weights: LlamaWeights, tokenizer: Tokenizer, name: String,
                pool: ThreadPool = .shared) {
        self.config = config
        self.weights = weights
        self.tokenizer = tokenizer
        self.name = name
        self.pool = pool
        rope = RoPETable(headDim: config.headDim, base: config.ropeBase)
        rope.reserve(512)
    }

    /// Loads a model from a GGUF file. The file's pages are released once the weights are
    /// repacked, so only the repacked copy stays resident.
    public convenience init(path: String, pool: ThreadPool = .shared) throws {
        let gguf = try GGUFFile(path: path)
        try self.init(gguf: gguf, pool: pool)
    }

    public convenience init(gguf: GGUFFile, pool: ThreadPool = .shared) throws {
        let config = try LlamaConfig(gguf: gguf)
        let tokenizer = try Tokenizer(gguf: gguf)
        guard tokenizer.vocabularySize == config.vocabularySize else {
            throw ModelError.invalidConfig("tokenizer has \(tokenizer.vocabularySize) tokens, model \(config.vocabularySize)")
        }
        let weights = try LlamaWeights(gguf: gguf, config: config)
        self.init(config: config, weights: weights, tokenizer: tokenizer,
                  name: gguf.string("general.name") ?? "model", pool: pool)
    }

    public func makeCache() -> KVCache { KVCache(config: config) }

    /// Which positions of the call to compute logits for.
    public enum LogitRows: Equatable, Sendable {
        case none
        case last(Int)
        case all
    }

    /// Runs `tokens` (positions cache.count ..< cache.count + T) through the model, appends their
    /// keys and values to `cache`, and returns logits [rows x vocab] for the requested rows.
    /// Calls from several threads take turns.
    public func forward(_ tokens: [Int], cache: KVCache, logits: LogitRows = .last(1)) throws -> [Float] {
        try pool.exclusive { try forwardExclusive(tokens, cache: cache, logits: logits) }
    }

    private func forwardExclusive(_ tokens: [Int], cache: KVCache, logits: LogitRows) throws -> [Float] {
        let T = tokens.count
        guard T > 0 else { throw ModelError.emptyInput }
        for t in tokens where t < 0 || t >= config.vocabularySize {
            throw ModelError.badToken(t, vocabularySize: config.vocabularySize)
        }
        try cache.reserve(T)
        let c = config
        let ws = Workspace(rows: T, config: c)
        defer { ws.release() }
        let x = ws.x, xn = ws.xn
        for (t, id) in tokens.enumerated() { weights.tokenEmbedding.decodeRow(id, into: x + t * c.dim) }

        let start = cache.count
        let shape = Attention.Shape(heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim)
        for (l, layer) in weights.layers.enumerated() {
            let keys = cache.keys(l), values = cache.values(l)
            layer.attentionNorm.withUnsafeBufferPointer {
                RMSNorm.forward(out: xn, input: x, weight: $0.baseAddress!, rows: T, dim: c.dim, eps: c.normEps)
            }
            Linear.project(xn, rows: T, ldx: c.dim, into: [
                .init(layer.query, ws.q),
                .init(layer.key, keys + start * c.kvDim),
                .init(layer.value, values + start * c.kvDim),
            ], pool: pool)
            rope.apply(ws.q, rows: T, ld: c.dim, heads: c.heads, startPosition: start)
            rope.apply(keys + start * c.kvDim, rows: T, ld: c.kvDim, heads: c.kvHeads, startPosition: start)
            Attention.forward(out: ws.attention, ldo: c.dim, q: ws.q, ldq: c.dim, keys: keys, values: values,
                              ldkv: c.kvDim, rows: T, positions: start + T, shape: shape, pool: pool)
            Linear.project(ws.attention, rows: T, ldx: c.dim, into: [.init(layer.output, xn)], pool: pool)
            add(x, xn, T * c.dim)

            layer.ffnNorm.withUnsafeBufferPointer {
                RMSNorm.forward(out: xn, input: x, weight: $0.baseAddress!, rows: T, dim: c.dim, eps: c.normEps)
            }
            Linear.project(xn, rows: T, ldx: c.dim, into: [.init(layer.gate, ws.gate), .init(layer.up, ws.up)], pool: pool)
            Activation.swiglu(gate: ws.gate, up: ws.up, count: T * c.ffnDim)
            Linear.project(ws.gate, rows: T, ldx: c.ffnDim, into: [.init(layer.down, xn)], pool: pool)
            add(x, xn, T * c.dim)
        }
        cache.advance(T)

        let n: Int
        switch logits {
        case .none: return []
        case .last(let k): n = min(max(k, 0), T)
        case .all: n = T
        }
        if n == 0 { return [] }
        let first = x + (T - n) * c.dim
        outputNorm(first, rows: n, into: xn)
        var out = [Float](repeating: 0, count: n * c.vocabularySize)
        out.withUnsafeMutableBufferPointer { o in
            Linear.project(xn, rows: n, ldx: c.dim, into: [.init(weights.output, o.baseAddress!)], pool: pool)
        }
        return out
    }

    private func outputNorm(_ x: UnsafePointer<Float>, rows: Int, into out: UnsafeMutablePointer<Float>) {
        weights.outputNorm.withUnsafeBufferPointer {
            RMSNorm.forward(out: out, input: x, weight: $0.baseAddress!, rows: rows, dim: config.dim, eps: config.normEps)
        }
    }

    @inline(__always)
    private func add(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) {
        for i in 0..<n { x[i] += y[i] }
    }
}

/// Activation buffers for one forward call.
final class Workspace {
    let x, xn, q, attention, gate, up: UnsafeMutablePointer<Float>
    private let all: UnsafeMutablePointer<Float>

    init(rows T: Int, config c: LlamaConfig) {
        let sizes = [T * c.dim, T * c.dim, T * c.dim, T * c.dim, T * c.ffnDim, T * c.ffnDim]
        all = .allocate(capacity: sizes.reduce(0, +))
        var p = all
        var ptrs: [UnsafeMutablePointer<Float>] = []
        for s in sizes { ptrs.append(p); p += s }
        (x, xn, q, attention, gate, up) = (ptrs[0], ptrs[1], ptrs[2], ptrs[3], ptrs[4], ptrs[5])
    }

    func release() { all.deallocate() }
}
