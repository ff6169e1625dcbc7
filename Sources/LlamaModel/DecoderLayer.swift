import TensorKit

/// One decoder layer's forward pass, the one implementation that inference
/// (`LlamaModel.forward`) and training (`TrainingPassState.forwardLayer`) both run. The callers
/// differ only in where activations live, where the LoRA terms come from and how attention
/// reaches its keys (a cache, or the rows of the pass); those are the buffers and the two
/// closures. Architecture differences are `LlamaConfig` data and the `LayerHooks` below; each
/// hook's backward is in `TrainingPassState.backwardLayer`.
enum DecoderLayer {
    /// A layer's activations, [T x width] each. Inference points several at one buffer (the
    /// residual is updated in place); training keeps what its backward pass reads.
    struct Buffers {
        /// The residual stream entering the layer, x(l).
        var input: UnsafeMutablePointer<Float>
        /// x(l) plus the attention block's output (may be `input`).
        var mid: UnsafeMutablePointer<Float>
        /// `mid` plus the feed-forward block's output, x(l + 1) (may be `mid`).
        var output: UnsafeMutablePointer<Float>
        /// RMSNorm of the residual, the projections' input [T x dim].
        var normed: UnsafeMutablePointer<Float>
        var q, k, v: UnsafeMutablePointer<Float>
        /// Attention's output [T x qDim], written by `attend`.
        var attention: UnsafeMutablePointer<Float>
        var gate, up: UnsafeMutablePointer<Float>
        /// The gated activation [T x ffn] (may be `gate`).
        var activated: UnsafeMutablePointer<Float>
        /// A block's output before it joins the residual [T x dim] (may be `normed`).
        var blockOut: UnsafeMutablePointer<Float>
        /// Kept for the backward pass when set: q and k before their per-head norms, and each
        /// block's output before its post-norm.
        var qPreNorm: UnsafeMutablePointer<Float>? = nil
        var kPreNorm: UnsafeMutablePointer<Float>? = nil
        var attentionOut: UnsafeMutablePointer<Float>? = nil
        var ffnOut: UnsafeMutablePointer<Float>? = nil
    }

    /// The LoRA terms of a group of projections that all read `input` (row stride `ld`), one
    /// list per projection, in order.
    typealias LoRATerms = (_ projections: [Projection], _ input: UnsafePointer<Float>, _ ld: Int) -> [[Linear.LowRankUpdate]]

    /// Runs layer `layer` over T rows. `attend` applies RoPE to `q` and `k` and writes the
    /// attention output into `attention`.
    static func forward(_ layer: LayerWeights, config c: LlamaConfig, rows T: Int, buffers b: Buffers, pool: ThreadPool,
                        lora: LoRATerms, attend: () -> Void) {
        norm(b.input, layer.attentionNorm, into: b.normed, rows: T, config: c)
        let qkv = lora([.query, .key, .value], b.normed, c.dim)
        Linear.project(b.normed, rows: T, ldx: c.dim, into: [
            .init(layer.query, b.q, updates: qkv[0]), .init(layer.key, b.k, updates: qkv[1]),
            .init(layer.value, b.v, updates: qkv[2]),
        ], pool: pool)
        LayerHooks.addBias(layer.queryBias, b.q, rows: T)
        LayerHooks.addBias(layer.keyBias, b.k, rows: T)
        LayerHooks.addBias(layer.valueBias, b.v, rows: T)
        if c.queryKeyNorm {
            b.qPreNorm?.update(from: b.q, count: T * c.qDim)
            b.kPreNorm?.update(from: b.k, count: T * c.kvDim)
            LayerHooks.normalizeQueryKey(layer, config: c, q: b.q, k: b.k, rows: T)
        }
        attend()
        let o = lora([.output], b.attention, c.qDim)
        Linear.project(b.attention, rows: T, ldx: c.qDim, into: [.init(layer.output, b.blockOut, updates: o[0])], pool: pool)
        b.attentionOut?.update(from: b.blockOut, count: T * c.dim)
        LayerHooks.postNorm(layer.postAttentionNorm, b.blockOut, rows: T, config: c)
        residual(b.mid, b.input, b.blockOut, count: T * c.dim)

        norm(b.mid, layer.ffnNorm, into: b.normed, rows: T, config: c)
        let gateUp = lora([.gate, .up], b.normed, c.dim)
        Linear.project(b.normed, rows: T, ldx: c.dim, into: [
            .init(layer.gate, b.gate, updates: gateUp[0]), .init(layer.up, b.up, updates: gateUp[1]),
        ], pool: pool)
        Activation.gated(c.activation, out: b.activated, gate: b.gate, up: b.up, count: T * c.ffnDim)
        let down = lora([.down], b.activated, c.ffnDim)
        Linear.project(b.activated, rows: T, ldx: c.ffnDim, into: [.init(layer.down, b.blockOut, updates: down[0])],
                       pool: pool)
        b.ffnOut?.update(from: b.blockOut, count: T * c.dim)
        LayerHooks.postNorm(layer.postFFNNorm, b.blockOut, rows: T, config: c)
        residual(b.output, b.mid, b.blockOut, count: T * c.dim)
    }

    static func norm(_ input: UnsafePointer<Float>, _ weight: [Float], into out: UnsafeMutablePointer<Float>, rows T: Int,
                     config c: LlamaConfig) {
        weight.withUnsafeBufferPointer {
            RMSNorm.forward(out: out, input: input, weight: $0.baseAddress!, rows: T, dim: c.dim, eps: c.normEps)
        }
    }

    /// out = x + y (out may be x).
    @inline(__always)
    static func residual(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, count n: Int) {
        for i in 0..<n { out[i] = x[i] + y[i] }
    }
}

/// The steps where architectures differ, shared by inference and training.
enum LayerHooks {
    /// Per-head RMSNorm of q and k after the projections and biases, before RoPE (Qwen 3, Gemma 3).
    static func normalizeQueryKey(_ layer: LayerWeights, config c: LlamaConfig, q: UnsafeMutablePointer<Float>,
                                  k: UnsafeMutablePointer<Float>, rows T: Int) {
        guard let qn = layer.queryNorm, let kn = layer.keyNorm else { return }
        qn.withUnsafeBufferPointer {
            RMSNorm.forward(out: q, input: q, weight: $0.baseAddress!, rows: T * c.heads, dim: c.headDim, eps: c.normEps)
        }
        kn.withUnsafeBufferPointer {
            RMSNorm.forward(out: k, input: k, weight: $0.baseAddress!, rows: T * c.kvHeads, dim: c.headDim, eps: c.normEps)
        }
    }

    /// The q/k/v biases (Qwen 2).
    static func addBias(_ bias: [Float]?, _ x: UnsafeMutablePointer<Float>, rows: Int) {
        guard let bias else { return }
        bias.withUnsafeBufferPointer { b in
            for t in 0..<rows { let r = x + t * b.count; for i in 0..<b.count { r[i] += b[i] } }
        }
    }

    /// Gemma's RMSNorm of a block's output before it joins the residual (in place).
    static func postNorm(_ weight: [Float]?, _ x: UnsafeMutablePointer<Float>, rows: Int, config c: LlamaConfig) {
        guard let weight else { return }
        weight.withUnsafeBufferPointer {
            RMSNorm.forward(out: x, input: x, weight: $0.baseAddress!, rows: rows, dim: c.dim, eps: c.normEps)
        }
    }
}
