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
    /// Each layer's RoPE table (Gemma 3's sliding layers have a base of their own).
    let ropes: [RoPETable]
    let pool: ThreadPool

    public init(config: LlamaConfig, weights: LlamaWeights, tokenizer: Tokenizer, name: String,
                pool: ThreadPool = .shared) {
        self.config = config
        self.weights = weights
        self.tokenizer = tokenizer
        self.name = name
        self.pool = pool
        let global = RoPETable(headDim: config.headDim, base: config.ropeBase, positions: config.contextLength,
                               style: config.ropeStyle, frequencyScale: config.ropeFrequencyScale,
                               frequencyFactors: weights.ropeFactors, magnitude: weights.ropeMagnitude)
        let local = config.slidingRopeBase.map {
            RoPETable(headDim: config.headDim, base: $0, positions: config.contextLength, style: config.ropeStyle)
        }
        ropes = (0..<config.layers).map { config.isSliding($0) ? local ?? global : global }
    }

    /// Attention's shape in layer `l`.
    func attentionShape(_ l: Int) -> Attention.Shape {
        Attention.Shape(heads: config.heads, kvHeads: config.kvHeads, headDim: config.headDim, scale: config.attentionScale,
                        softcap: config.attentionSoftcap, window: config.isSliding(l) ? config.slidingWindow : 0)
    }

    /// Loads a model from a GGUF file. The file's pages are released once the weights are
    /// repacked, so only the repacked copy stays resident.
    public convenience init(path: String, storage: LlamaWeights.Storage = .quantized, pool: ThreadPool = .shared) throws {
        let gguf = try GGUFFile(path: path)
        try self.init(gguf: gguf, storage: storage, pool: pool)
    }

    public convenience init(gguf: GGUFFile, storage: LlamaWeights.Storage = .quantized, pool: ThreadPool = .shared) throws {
        let config = try LlamaConfig(gguf: gguf)
        let tokenizer = try Tokenizer(gguf: gguf)
        guard tokenizer.vocabularySize == config.vocabularySize else {
            throw ModelError.invalidConfig("tokenizer has \(tokenizer.vocabularySize) tokens, model \(config.vocabularySize)")
        }
        let weights = try LlamaWeights(gguf: gguf, config: config, storage: storage)
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

    /// One sequence's part of a batch: its new tokens, its cache and its adapters.
    public struct Segment {
        public var tokens: [Int]
        public var cache: KVCache
        public var adapters: AdapterMix
        public var logits: LogitRows

        public init(tokens: [Int], cache: KVCache, adapters: AdapterMix = .none, logits: LogitRows = .last(1)) {
            self.tokens = tokens; self.cache = cache; self.adapters = adapters; self.logits = logits
        }
    }

    /// Runs `tokens` (positions cache.count ..< cache.count + T) through the model, appends their
    /// keys and values to `cache`, and returns logits [rows x vocab] for the requested rows.
    /// Calls from several threads take turns.
    public func forward(_ tokens: [Int], cache: KVCache, logits: LogitRows = .last(1),
                        adapters: AdapterMix = .none) throws -> [Float] {
        try forward([Segment(tokens: tokens, cache: cache, adapters: adapters, logits: logits)])[0]
    }

    /// Runs several sequences as one batch: the frozen projections see all rows at once, while
    /// each row gets its own sequence's LoRA update and attends over its own cache. Returns
    /// each segment's logits.
    public func forward(_ segments: [Segment]) throws -> [[Float]] {
        try pool.exclusive { try forwardExclusive(segments) }
    }

    private func forwardExclusive(_ segments: [Segment]) throws -> [[Float]] {
        let c = config
        var starts: [Int] = []  // first row of each segment
        var T = 0
        for (i, seg) in segments.enumerated() {
            guard !seg.tokens.isEmpty else { throw ModelError.emptyInput }
            for t in seg.tokens where t < 0 || t >= c.vocabularySize {
                throw ModelError.badToken(t, vocabularySize: c.vocabularySize)
            }
            for other in segments[..<i] where other.cache === seg.cache {
                throw ModelError.invalidConfig("one cache appears twice in a batch")
            }
            starts.append(T)
            T += seg.tokens.count
        }
        guard T > 0 else { throw ModelError.emptyInput }
        for seg in segments { try seg.cache.reserve(seg.tokens.count) }

        // LoRA scratch: u for up to three targets per row and entry.
        let totalRank = segments.map(\.adapters.totalRank).max() ?? 0
        let loraFloats = 3 * T * totalRank
        let ws = Workspace(rows: T, config: c, loraScratch: loraFloats)
        defer { ws.release() }
        let x = ws.x, xn = ws.xn
        for (s, seg) in segments.enumerated() {
            for (t, id) in seg.tokens.enumerated() { weights.tokenEmbedding.decodeRow(id, into: x + (starts[s] + t) * c.dim) }
        }
        if c.embeddingScale != 1 { for i in 0..<T * c.dim { x[i] *= c.embeddingScale } }

        /// Each segment's LoRA terms for the projections of one group, which all read `x`:
        /// u = weight · x · Aᵀ is computed here (into the arena, reused by every group) and
        /// the rest is added inside the projection pass.
        func lora(_ layer: Int, _ projections: [Projection], x: UnsafePointer<Float>, ldx: Int) -> [[Linear.LowRankUpdate]] {
            if totalRank == 0 { return projections.map { _ in [] } }
            var arena = ws.lora
            var pending: [LowRankInput] = []
            let updates = projections.map { projection in
                let slot = PreparedAdapter.index(LoRATarget(layer: layer, projection: projection), c)
                return segments.indices.flatMap { s -> [Linear.LowRankUpdate] in
                    let seg = segments[s]
                    if seg.adapters.isEmpty { return [] }
                    return seg.adapters.updates(slot: slot, x: x + starts[s] * ldx, ldx: ldx,
                                                rows: starts[s]..<starts[s] + seg.tokens.count, arena: &arena,
                                                pending: &pending)
                }
            }
            LowRankInput.computeAll(pending, pool: pool)
            return updates
        }

        let buffers = DecoderLayer.Buffers(input: x, mid: x, output: x, normed: xn, q: ws.q, k: ws.k, v: ws.v,
                                           attention: ws.attention, gate: ws.gate, up: ws.up, activated: ws.gate, blockOut: xn)
        for (l, layer) in weights.layers.enumerated() {
            DecoderLayer.forward(layer, config: c, rows: T, buffers: buffers, pool: pool, lora: { lora(l, $0, x: $1, ldx: $2) }) {
                // Decoding sequences (a few rows each) share one parallel attention pass; prompt
                // chunks take the blocked path one at a time.
                let shape = attentionShape(l), rope = ropes[l]
                var short: [Attention.Sequence] = []
                for (s, seg) in segments.enumerated() {
                    let n = seg.tokens.count, start = seg.cache.count, row = starts[s]
                    let keys = seg.cache.keys(l), values = seg.cache.values(l)
                    rope.apply(ws.q + row * c.qDim, rows: n, ld: c.qDim, heads: c.heads, startPosition: start)
                    rope.apply(ws.k + row * c.kvDim, rows: n, ld: c.kvDim, heads: c.kvHeads, startPosition: start)
                    (keys + start * c.kvDim).update(from: ws.k + row * c.kvDim, count: n * c.kvDim)
                    (values + start * c.kvDim).update(from: ws.v + row * c.kvDim, count: n * c.kvDim)
                    if n <= Attention.batchedRows {
                        short.append(.init(q: ws.q + row * c.qDim, out: ws.attention + row * c.qDim, keys: keys,
                                           values: values, rows: n, positions: start + n))
                        continue
                    }
                    Attention.forward(out: ws.attention + row * c.qDim, ldo: c.qDim, q: ws.q + row * c.qDim, ldq: c.qDim,
                                      keys: keys, values: values, ldkv: c.kvDim, rows: n, positions: start + n,
                                      shape: shape, pool: pool)
                }
                Attention.forward(short, ldo: c.qDim, ldq: c.qDim, ldkv: c.kvDim, shape: shape, pool: pool)
            }
        }
        for seg in segments { seg.cache.advance(seg.tokens.count) }

        // Every segment's logit rows gathered into one matrix, so the output projection (the
        // largest weight) is read once for the whole batch.
        let counts = segments.map { seg -> Int in
            switch seg.logits {
            case .none: return 0
            case .last(let k): return min(max(k, 0), seg.tokens.count)
            case .all: return seg.tokens.count
            }
        }
        let rows = counts.reduce(0, +)
        if rows == 0 { return segments.map { _ in [] } }
        var r = 0
        for (s, seg) in segments.enumerated() where counts[s] > 0 {
            let first = x + (starts[s] + seg.tokens.count - counts[s]) * c.dim
            outputNorm(first, rows: counts[s], into: xn + r * c.dim)
            r += counts[s]
        }
        var all = [Float](repeating: 0, count: rows * c.vocabularySize)
        all.withUnsafeMutableBufferPointer { o in
            Linear.project(xn, rows: rows, ldx: c.dim, into: [.init(weights.output, o.baseAddress!)], pool: pool)
            if c.finalSoftcap > 0 { SoftCap.apply(o.baseAddress!, count: o.count, cap: c.finalSoftcap) }
        }
        if segments.count == 1 { return [all] }
        r = 0
        return counts.map { n in
            defer { r += n }
            return Array(all[r * c.vocabularySize..<(r + n) * c.vocabularySize])
        }
    }

    private func outputNorm(_ x: UnsafePointer<Float>, rows: Int, into out: UnsafeMutablePointer<Float>) {
        weights.outputNorm.withUnsafeBufferPointer {
            RMSNorm.forward(out: out, input: x, weight: $0.baseAddress!, rows: rows, dim: config.dim, eps: config.normEps)
        }
    }
}

/// Activation buffers for one forward call.
final class Workspace {
    let x, xn, q, k, v, attention, gate, up, lora: UnsafeMutablePointer<Float>
    private let all: UnsafeMutablePointer<Float>

    init(rows T: Int, config c: LlamaConfig, loraScratch: Int) {
        let sizes = [T * c.dim, T * c.dim, T * c.qDim, T * c.kvDim, T * c.kvDim, T * c.qDim,
                     T * c.ffnDim, T * c.ffnDim, max(loraScratch, 1)]
        all = .allocate(capacity: sizes.reduce(0, +))
        var p = all
        var ptrs: [UnsafeMutablePointer<Float>] = []
        for s in sizes { ptrs.append(p); p += s }
        (x, xn, q, k, v, attention) = (ptrs[0], ptrs[1], ptrs[2], ptrs[3], ptrs[4], ptrs[5])
        (gate, up, lora) = (ptrs[6], ptrs[7], ptrs[8])
    }

    func release() { all.deallocate() }
}
