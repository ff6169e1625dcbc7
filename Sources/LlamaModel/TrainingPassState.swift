#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TensorKit

/// The buffers and steps of one training pass (see `LlamaModel.trainingPass`). Runs inside
/// the pool's exclusive section. Glossary as in `LlamaModel`: T rows, dim, kvDim, ffn.
final class TrainingPassState {
    let model: LlamaModel
    let lora: TrainableLoRA?
    let c: LlamaConfig
    let T: Int
    let segments: [Range<Int>]
    let tape: TrainingTape
    let pool: ThreadPool
    let dropout: Float
    let dropoutKey: UInt64
    /// Row stride of the stacked q, k, v gradients.
    let qkvWidth: Int
    // Scratch, one allocation.
    private let scratch: UnsafeMutablePointer<Float>
    let xn, act, tmp, dres, dxn, dact, datt, dqkv, dgu, du, lowRankG, transposed, dropped: UnsafeMutablePointer<Float>

    init(model: LlamaModel, lora: TrainableLoRA?, rows T: Int, segments: [Range<Int>], dropout: Float, dropoutKey: UInt64) {
        self.model = model
        self.lora = lora
        c = model.config
        self.T = T
        self.segments = segments
        pool = model.pool
        self.dropout = dropout
        self.dropoutKey = dropoutKey
        qkvWidth = c.qDim + 2 * c.kvDim
        var uWidth = 0
        if let lora {
            for l in 0..<c.layers {
                uWidth = max(uWidth, Projection.allCases.reduce(0) { $0 + (lora.slot(l, $1)?.rank ?? 0) })
            }
        }
        tape = TrainingTape(rows: T, config: c, uWidth: uWidth)
        let r = max(lora?.maxRank ?? 0, 1)
        // The widest projection input or output: dim, the query width or the feed-forward width.
        let wide = max(c.dim, c.qDim), widest = max(wide, c.ffnDim)
        let sizes = [T * c.dim, T * c.ffnDim, T * c.dim, T * c.dim, T * wide, T * c.ffnDim, T * c.qDim, T * qkvWidth,
                     T * 2 * c.ffnDim, T * r, r * widest, r * T, dropout > 0 ? T * widest : 1]
        scratch = .allocate(capacity: sizes.reduce(0, +))
        var ptrs: [UnsafeMutablePointer<Float>] = []
        var p = scratch
        for s in sizes { ptrs.append(p); p += s }
        (xn, act, tmp, dres, dxn, dact, datt, dqkv) = (ptrs[0], ptrs[1], ptrs[2], ptrs[3], ptrs[4], ptrs[5], ptrs[6], ptrs[7])
        (dgu, du, lowRankG, transposed, dropped) = (ptrs[8], ptrs[9], ptrs[10], ptrs[11], ptrs[12])
    }

    func release() {
        tape.release()
        scratch.deallocate()
    }

    private func norm(_ input: UnsafePointer<Float>, _ weight: [Float], into out: UnsafeMutablePointer<Float>) {
        DecoderLayer.norm(input, weight, into: out, rows: T, config: c)
    }

    private func normBackward(_ dy: UnsafePointer<Float>, input: UnsafePointer<Float>, _ weight: [Float],
                              into dx: UnsafeMutablePointer<Float>) {
        weight.withUnsafeBufferPointer {
            RMSNorm.backward(dx: dx, dy: dy, input: input, weight: $0.baseAddress!, rows: T, dim: c.dim, eps: c.normEps,
                             accumulate: true)
        }
    }

    // MARK: Forward

    func forwardLayer(_ l: Int) {
        let q = tape.q(l), k = tape.k(l), v = tape.v(l), att = tape.attention(l)
        let buffers = DecoderLayer.Buffers(
            input: tape.x(l), mid: tape.mid(l), output: tape.x(l + 1), normed: xn, q: q, k: k, v: v, attention: att,
            gate: tape.gate(l), up: tape.up(l), activated: act, blockOut: tmp,
            qPreNorm: c.queryKeyNorm ? tape.qPreNorm(l) : nil, kPreNorm: c.queryKeyNorm ? tape.kPreNorm(l) : nil,
            attentionOut: c.postNorms ? tape.attentionOut(l) : nil, ffnOut: c.postNorms ? tape.ffnOut(l) : nil)
        let rope = model.ropes[l], shape = model.attentionShape(l)
        DecoderLayer.forward(model.weights.layers[l], config: c, rows: T, buffers: buffers, pool: pool,
                             lora: { projections, input, ld in projections.map { self.loraForward(l, $0, input: input, ld: ld) } }) {
            for seg in segments {
                let r0 = seg.lowerBound, n = seg.count
                rope.apply(q + r0 * c.qDim, rows: n, ld: c.qDim, heads: c.heads, startPosition: 0)
                rope.apply(k + r0 * c.kvDim, rows: n, ld: c.kvDim, heads: c.kvHeads, startPosition: 0)
                Attention.forward(out: att + r0 * c.qDim, ldo: c.qDim, q: q + r0 * c.qDim, ldq: c.qDim,
                                  keys: k + r0 * c.kvDim, values: v + r0 * c.kvDim, ldkv: c.kvDim,
                                  rows: n, positions: n, shape: shape, pool: pool)
            }
        }
    }

    /// Where u = drop(x)·Aᵀ of target (l, p) lives in the tape: [T x rank].
    private func uBuffer(_ l: Int, _ p: Projection) -> UnsafeMutablePointer<Float> {
        var offset = 0
        for q in Projection.allCases {
            if q == p { break }
            offset += lora?.slot(l, q)?.rank ?? 0
        }
        return tape.u(l) + T * offset
    }

    private func loraForward(_ l: Int, _ p: Projection, input: UnsafePointer<Float>, ld: Int) -> [Linear.LowRankUpdate] {
        guard let lora, let s = lora.slot(l, p) else { return [] }
        let u = uBuffer(l, p), at = lora.transposedA + s.atOffset
        let key = dropoutKey, rate = dropout, slotKey = UInt64(l * 8 + s.target.projection.order)
        parallelRows { r0, r1, worker in
            if rate > 0 {
                let d = self.pool.scratch(worker: worker, slot: 10, count: (r1 - r0) * s.inFeatures)
                LoRADropout.apply(input + r0 * ld, ld: ld, into: d, rows: r0..<r1, cols: s.inFeatures, rate: rate, key: key,
                                  slot: slotKey)
                ThinProduct.multiply(d, ldx: s.inFeatures, rows: 0..<r1 - r0, width: s.inFeatures, matrix: at, rank: s.rank,
                                     scale: 1, into: u + r0 * s.rank, ldo: s.rank)
            } else {
                ThinProduct.multiply(input, ldx: ld, rows: r0..<r1, width: s.inFeatures, matrix: at, rank: s.rank, scale: 1,
                                     into: u, ldo: s.rank)
            }
        }
        return [Linear.LowRankUpdate(rows: 0..<T, rank: s.rank, u: u, bt: lora.scaledBT + s.btOffset)]
    }

    // MARK: Output head and loss

    /// Cross-entropy at the labelled rows, `chunk` rows at a time; with `backward`, writes the
    /// gradient of Σ weight·NLL with respect to the final hidden state into `dres`.
    func head(_ rows: [LabelledRow], losses: inout [SequenceLoss], backward: Bool, pause: (() -> Void)? = nil) {
        let vocab = c.vocabularySize, final = tape.x(c.layers)
        if backward { dres.update(repeating: 0, count: T * c.dim) }
        // Rows per chunk: large enough for the GEMM, small enough that a chunk's forward or
        // backward (the stretches between pauses) stays short.
        let chunk = 64
        let logits = UnsafeMutablePointer<Float>.allocate(capacity: min(chunk, max(rows.count, 1)) * vocab)
        let h = UnsafeMutablePointer<Float>.allocate(capacity: chunk * c.dim * 3)
        // With a final soft-cap, the capped logits are kept for the cap's derivative.
        let cap = c.finalSoftcap
        let capped = UnsafeMutablePointer<Float>.allocate(capacity: cap > 0 ? min(chunk, max(rows.count, 1)) * vocab : 1)
        defer { logits.deallocate(); h.deallocate(); capped.deallocate() }
        let hn = h + chunk * c.dim, dh = hn + chunk * c.dim
        var nll = [Double](repeating: 0, count: chunk)
        var hit = [Bool](repeating: false, count: chunk)
        let output = model.weights.output
        var start = 0
        while start < rows.count {
            let part = rows[start..<min(rows.count, start + chunk)]
            let R = part.count
            for (i, r) in part.enumerated() { (h + i * c.dim).update(from: final + r.row * c.dim, count: c.dim) }
            model.weights.outputNorm.withUnsafeBufferPointer {
                RMSNorm.forward(out: hn, input: h, weight: $0.baseAddress!, rows: R, dim: c.dim, eps: c.normEps)
            }
            Linear.project(hn, rows: R, ldx: c.dim, into: [.init(output, logits)], pool: pool)
            if cap > 0 {
                SoftCap.apply(logits, count: R * vocab, cap: cap)
                if backward { capped.update(from: logits, count: R * vocab) }
            }
            nll.withUnsafeMutableBufferPointer { nll in
                hit.withUnsafeMutableBufferPointer { hit in
                    pool.parallelFor(R) { i, _ in
                        let r = part[part.startIndex + i]
                        let (loss, correct) = CrossEntropy.row(logits + i * vocab, count: vocab, target: r.target,
                                                               gradientScale: backward ? r.weight : nil)
                        nll[i] = loss
                        hit[i] = correct
                    }
                }
            }
            for (i, r) in part.enumerated() {
                losses[r.sequence].nll += nll[i]
                losses[r.sequence].tokens += 1
                if hit[i] { losses[r.sequence].correct += 1 }
            }
            if backward {
                pause?()
                if cap > 0 { SoftCap.backward(logits, capped: capped, count: R * vocab, cap: cap) }
                let block = 2048
                var v0 = 0
                while v0 < vocab {
                    let v1 = min(vocab, v0 + block)
                    Linear.backward(logits + v0, rows: R, ldy: vocab, weights: [.init(output, rows: v0..<v1)],
                                    into: hn, ldx: c.dim, accumulate: v0 > 0, pool: pool)
                    v0 = v1
                }
                model.weights.outputNorm.withUnsafeBufferPointer {
                    RMSNorm.backward(dx: dh, dy: hn, input: h, weight: $0.baseAddress!, rows: R, dim: c.dim,
                                     eps: c.normEps, accumulate: false)
                }
                for (i, r) in part.enumerated() {
                    let d = dres + r.row * c.dim, g = dh + i * c.dim
                    for j in 0..<c.dim { d[j] += g[j] }
                }
            }
            start += R
            pause?()
        }
    }

    // MARK: Backward

    /// On entry `dres` holds ∂L/∂x(l+1); on return ∂L/∂x(l). LoRA gradients are added.
    func backwardLayer(_ l: Int) {
        let layer = model.weights.layers[l]
        let mid = tape.mid(l), gate = tape.gate(l), up = tape.up(l), att = tape.attention(l)
        // Feed-forward block. With a post-norm, the down projection's output gradient goes
        // through it first (into dxn, free until the gate/up backward).
        norm(mid, layer.ffnNorm, into: xn)
        Activation.gated(c.activation, out: act, gate: gate, up: up, count: T * c.ffnDim)
        let dDown = postNormBackward(layer.postFFNNorm, dres, input: tape.ffnOut(l), into: dxn)
        Linear.backward(dDown, rows: T, ldy: c.dim, weights: [.init(layer.down)], into: dact, ldx: c.ffnDim,
                        accumulate: false, pool: pool)
        loraBackward(l, .down, dy: dDown, ldy: c.dim, input: act, ldInput: c.ffnDim, dInput: dact)
        let ffn = c.ffnDim
        for t in 0..<T {
            Activation.gatedBackward(c.activation, dGate: dgu + t * 2 * ffn, dUp: dgu + t * 2 * ffn + ffn, dh: dact + t * ffn,
                                     gate: gate + t * ffn, up: up + t * ffn, count: ffn)
        }
        Linear.backward(dgu, rows: T, ldy: 2 * ffn, weights: [.init(layer.gate), .init(layer.up)], into: dxn,
                        ldx: c.dim, accumulate: false, pool: pool)
        loraBackward(l, .gate, dy: dgu, ldy: 2 * ffn, input: xn, ldInput: c.dim, dInput: dxn)
        loraBackward(l, .up, dy: dgu + ffn, ldy: 2 * ffn, input: xn, ldInput: c.dim, dInput: dxn)
        normBackward(dxn, input: mid, layer.ffnNorm, into: dres)

        // Attention block.
        let dOut = postNormBackward(layer.postAttentionNorm, dres, input: tape.attentionOut(l), into: dxn)
        Linear.backward(dOut, rows: T, ldy: c.dim, weights: [.init(layer.output)], into: datt, ldx: c.qDim,
                        accumulate: false, pool: pool)
        loraBackward(l, .output, dy: dOut, ldy: c.dim, input: att, ldInput: c.qDim, dInput: datt)
        let W = qkvWidth, rope = model.ropes[l]
        Attention.backward(dq: dqkv, dk: dqkv + c.qDim, dv: dqkv + c.qDim + c.kvDim, ldd: W,
                           dOut: datt, out: att, ldo: c.qDim, q: tape.q(l), ldq: c.qDim,
                           keys: tape.k(l), values: tape.v(l), ldkv: c.kvDim, segments: segments,
                           shape: model.attentionShape(l), pool: pool)
        for seg in segments {
            rope.applyInverse(dqkv + seg.lowerBound * W, rows: seg.count, ld: W, heads: c.heads, startPosition: 0)
            rope.applyInverse(dqkv + seg.lowerBound * W + c.qDim, rows: seg.count, ld: W, heads: c.kvHeads,
                              startPosition: 0)
        }
        if let qn = layer.queryNorm, let kn = layer.keyNorm {
            let qPre = tape.qPreNorm(l), kPre = tape.kPreNorm(l)
            qn.withUnsafeBufferPointer { qw in
                kn.withUnsafeBufferPointer { kw in
                    for t in 0..<T {
                        let dq = dqkv + t * W
                        RMSNorm.backward(dx: dq, dy: dq, input: qPre + t * c.qDim, weight: qw.baseAddress!, rows: c.heads,
                                         dim: c.headDim, eps: c.normEps, accumulate: false)
                        RMSNorm.backward(dx: dq + c.qDim, dy: dq + c.qDim, input: kPre + t * c.kvDim, weight: kw.baseAddress!,
                                         rows: c.kvHeads, dim: c.headDim, eps: c.normEps, accumulate: false)
                    }
                }
            }
        }
        let x = tape.x(l)
        norm(x, layer.attentionNorm, into: xn)
        Linear.backward(dqkv, rows: T, ldy: W, weights: [.init(layer.query), .init(layer.key), .init(layer.value)],
                        into: dxn, ldx: c.dim, accumulate: false, pool: pool)
        loraBackward(l, .query, dy: dqkv, ldy: W, input: xn, ldInput: c.dim, dInput: dxn)
        loraBackward(l, .key, dy: dqkv + c.qDim, ldy: W, input: xn, ldInput: c.dim, dInput: dxn)
        loraBackward(l, .value, dy: dqkv + c.qDim + c.kvDim, ldy: W, input: xn, ldInput: c.dim, dInput: dxn)
        normBackward(dxn, input: x, layer.attentionNorm, into: dres)
    }

    /// The gradient at a block's output before its post-norm (written to `scratch`), or `dy`
    /// itself when the block has none.
    private func postNormBackward(_ weight: [Float]?, _ dy: UnsafePointer<Float>, input: UnsafePointer<Float>,
                                  into scratch: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        guard let weight else { return dy }
        weight.withUnsafeBufferPointer {
            RMSNorm.backward(dx: scratch, dy: dy, input: input, weight: $0.baseAddress!, rows: T, dim: c.dim,
                             eps: c.normEps, accumulate: false)
        }
        return UnsafePointer(scratch)
    }

    /// For y = x·Wᵀ + scale·drop(x)·Aᵀ·Bᵀ with output gradient dy: adds ∂L/∂A and ∂L/∂B to the
    /// gradients and the LoRA branch's share of ∂L/∂x to `dInput` (row stride `ldInput`).
    private func loraBackward(_ l: Int, _ p: Projection, dy: UnsafePointer<Float>, ldy: Int,
                              input: UnsafePointer<Float>, ldInput: Int, dInput: UnsafeMutablePointer<Float>) {
        guard let lora, let s = lora.slot(l, p) else { return }
        let r = s.rank, inF = s.inFeatures, outF = s.outFeatures
        let u = uBuffer(l, p), a = lora.values + s.a
        let gA = lora.gradients + s.a, gB = lora.gradients + s.b
        let du = self.du, G = lowRankG, tr = transposed
        // du = dy · (scale·B)   [T x r]
        let b = lora.values + s.b, scale = lora.shape.scale
        parallelRows { r0, r1, _ in
            ThinProduct.multiply(dy, ldx: ldy, rows: r0..<r1, width: outF, matrix: b, rank: r, scale: scale, into: du, ldo: r)
        }
        // ∂B = scale · dyᵀ · u, computed as G = uᵀ · dy [r x out].
        for t in 0..<T { for j in 0..<r { tr[j * T + t] = u[t * r + j] } }
        parallelColumns(outF) { c0, c1, worker in
            let g = self.pool.scratch(worker: worker, slot: 9, count: Gemm.multiplyScratchSize(m: r, k: self.T))
            Gemm.multiply(m: r, n: c1 - c0, k: self.T, a: tr, lda: self.T, b: dy + c0, ldb: ldy, transposeB: false,
                          c: G + c0, ldc: outF, accumulate: false, scratch: g)
        }
        for o in 0..<outF { for j in 0..<r { gB[o * r + j] += scale * G[j * outF + o] } }
        // ∂A = duᵀ · drop(x)
        var xd = input, ldx = ldInput
        let slotKey = UInt64(l * 8 + p.order)
        if dropout > 0 {
            LoRADropout.apply(input, ld: ldInput, into: dropped, rows: 0..<T, cols: inF, rate: dropout, key: dropoutKey, slot: slotKey)
            xd = UnsafePointer(dropped); ldx = inF
        }
        for t in 0..<T { for j in 0..<r { tr[j * T + t] = du[t * r + j] } }
        parallelColumns(inF) { c0, c1, worker in
            let g = self.pool.scratch(worker: worker, slot: 9, count: Gemm.multiplyScratchSize(m: r, k: self.T))
            Gemm.multiply(m: r, n: c1 - c0, k: self.T, a: tr, lda: self.T, b: xd + c0, ldb: ldx, transposeB: false,
                          c: gA + c0, ldc: inF, accumulate: true, scratch: g)
        }
        // ∂x += (du · A) ∘ mask / (1 − rate)
        let rate = dropout, key = dropoutKey
        parallelRows { r0, r1, worker in
            let g = self.pool.scratch(worker: worker, slot: 9, count: Gemm.multiplyScratchSize(m: r1 - r0, k: r))
            if rate > 0 {
                let d = self.pool.scratch(worker: worker, slot: 10, count: (r1 - r0) * inF)
                Gemm.multiply(m: r1 - r0, n: inF, k: r, a: du + r0 * r, lda: r, b: a, ldb: inF, transposeB: false,
                              c: d, ldc: inF, accumulate: false, scratch: g)
                LoRADropout.apply(d, ld: inF, into: d, rows: r0..<r1, cols: inF, rate: rate, key: key, slot: slotKey)
                for i in 0..<(r1 - r0) { Kernels.axpy(1, d + i * inF, dInput + (r0 + i) * ldInput, inF) }
            } else {
                Gemm.multiply(m: r1 - r0, n: inF, k: r, a: du + r0 * r, lda: r, b: a, ldb: inF, transposeB: false,
                              c: dInput + r0 * ldInput, ldc: ldInput, accumulate: true, scratch: g)
            }
        }
    }

    // MARK: Parallel helpers

    /// Splits the T rows into blocks of 48 (a multiple of the GEMM's 6-row slivers).
    private func parallelRows(_ body: (_ r0: Int, _ r1: Int, _ worker: Int) -> Void) {
        let block = 48, T = self.T
        pool.parallelFor((T + block - 1) / block) { i, worker in body(i * block, min(T, i * block + block), worker) }
    }

    /// Splits `n` columns into blocks of 64 (one GEMM panel).
    private func parallelColumns(_ n: Int, _ body: (_ c0: Int, _ c1: Int, _ worker: Int) -> Void) {
        pool.parallelFor((n + 63) / 64) { i, worker in body(i * 64, min(n, i * 64 + 64), worker) }
    }
}

extension TrainableLoRA {
    func slot(_ layer: Int, _ p: Projection) -> Slot? { slots[layer * Projection.allCases.count + p.order] }
}

extension Projection {
    /// Position in `allCases`.
    var order: Int {
        switch self {
        case .query: 0
        case .key: 1
        case .value: 2
        case .output: 3
        case .gate: 4
        case .up: 5
        case .down: 6
        }
    }
}

/// Inverted dropout with masks from a counter-based hash of (key, target, row, column), so the
/// backward pass regenerates the forward's mask instead of storing it, and a run is
/// reproducible from its seed.
enum LoRADropout {
    static func apply(_ x: UnsafePointer<Float>, ld: Int, into out: UnsafeMutablePointer<Float>, rows: Range<Int>,
                      cols: Int, rate: Float, key: UInt64, slot: UInt64) {
        let threshold = UInt64(Double(rate) * 16_777_216)
        let keep = 1 / (1 - rate)
        let base = SeedMix.mix(key ^ (slot &* 0x9E37_79B9_7F4A_7C15))
        for (i, t) in rows.enumerated() {
            let src = x + i * ld, dst = out + i * cols
            let rowKey = SeedMix.mix(base &+ UInt64(t) &* 0xD1B5_4A32_D192_ED03)
            for j in 0..<cols {
                let h = SeedMix.mix(rowKey &+ UInt64(j)) >> 40
                dst[j] = h < threshold ? 0 : src[j] * keep
            }
        }
    }
}

/// Softmax cross-entropy of one row of logits.
enum CrossEntropy {
    /// Returns −log softmax(logits)[target] and whether the target is the (first) argmax. With
    /// a `gradientScale` w, replaces the logits by w·(softmax − onehot(target)).
    static func row(_ logits: UnsafeMutablePointer<Float>, count n: Int, target: Int, gradientScale: Float?) -> (Double, Bool) {
        var best = logits[0], arg = 0
        for j in 1..<n where logits[j] > best { best = logits[j]; arg = j }
        let m = SIMD16<Float>(repeating: best)
        var acc = SIMD16<Float>()
        var j = 0
        let raw = UnsafeMutableRawPointer(logits)
        while FastMath.vectorExp && j + 16 <= n {
            acc += FastMath.exp(raw.loadUnaligned(fromByteOffset: 4 * j, as: SIMD16<Float>.self) - m)
            j += 16
        }
        // The scalar remainder (all of the row where `exp` is scalar) sums in Double: 49,152
        // terms added one by one in Float would lose about 1e-4 of the sum.
        var tail = 0.0
        while j < n { tail += Double(expf(logits[j] - best)); j += 1 }
        let lse = best + Float(log(Double(acc.sum()) + tail))
        let nll = Double(lse) - Double(logits[target])
        if let w = gradientScale {
            let l = SIMD16<Float>(repeating: lse), wv = SIMD16<Float>(repeating: w)
            j = 0
            while FastMath.vectorExp && j + 16 <= n {
                let v = raw.loadUnaligned(fromByteOffset: 4 * j, as: SIMD16<Float>.self)
                raw.storeBytes(of: FastMath.exp(v - l) * wv, toByteOffset: 4 * j, as: SIMD16<Float>.self)
                j += 16
            }
            while j < n { logits[j] = expf(logits[j] - lse) * w; j += 1 }
            logits[target] -= w
        }
        return (nll, arg == target)
    }
}
