/// Causal grouped-query attention over a key/value cache.
///
/// Glossary: T = query rows (new tokens), S = cached positions after appending them,
/// hd = head dimension, H = query heads, G = key/value heads (H % G == 0; query head h reads
/// key/value head h / (H / G)). Query row t sits at position S - T + t and sees keys 0...that.
public enum Attention {
    public struct Shape {
        public var heads: Int
        public var kvHeads: Int
        public var headDim: Int
        public init(heads: Int, kvHeads: Int, headDim: Int) {
            self.heads = heads; self.kvHeads = kvHeads; self.headDim = headDim
        }
        var scale: Float { 1 / Float(headDim).squareRoot() }
    }

    /// out[t, h*hd ..< (h+1)*hd] = softmax(q_h · K_gᵀ · scale, causal) · V_g.
    /// q: T x (H*hd) with row stride `ldq`; keys, values: S x (G*hd) with row stride `ldkv`;
    /// out: T x (H*hd) with row stride `ldo`.
    public static func forward(out: UnsafeMutablePointer<Float>, ldo: Int,
                               q: UnsafePointer<Float>, ldq: Int,
                               keys: UnsafePointer<Float>, values: UnsafePointer<Float>, ldkv: Int,
                               rows T: Int, positions S: Int, shape: Shape, pool: ThreadPool = .shared) {
        guard T > 0 else { return }
        let hd = shape.headDim, group = shape.heads / shape.kvHeads
        let chunk = T <= 4 ? T : 32
        let chunks = (T + chunk - 1) / chunk
        pool.parallelFor(shape.heads * chunks) { item, worker in
            let h = item / chunks, t0 = (item % chunks) * chunk, t1 = min(T, t0 + chunk)
            let g = h / group
            let kh = keys + g * hd, vh = values + g * hd
            let span = S - T + t1  // keys visible to the last row of the chunk
            if t1 - t0 <= 4 {
                let scores = pool.scratch(worker: worker, slot: 5, count: span)
                for t in t0..<t1 {
                    rowAttention(out: out + t * ldo + h * hd, q: q + t * ldq + h * hd, keys: kh, values: vh,
                                 ldkv: ldkv, visible: S - T + t + 1, hd: hd, scale: shape.scale, scores: scores)
                }
                return
            }
            let rows = t1 - t0
            let scores = pool.scratch(worker: worker, slot: 5, count: rows * span)
            let scratch = pool.scratch(worker: worker, slot: 6,
                                       count: Gemm.multiplyScratchSize(m: rows, k: max(hd, span)))
            Gemm.multiply(m: rows, n: span, k: hd, a: q + t0 * ldq + h * hd, lda: ldq, b: kh, ldb: ldkv,
                          transposeB: true, c: scores, ldc: span, accumulate: false, scratch: scratch)
            for r in 0..<rows {
                let visible = S - T + t0 + r + 1
                let row = scores + r * span
                for s in 0..<visible { row[s] *= shape.scale }
                Softmax.inPlace(row, visible)
                for s in visible..<span { row[s] = 0 }
            }
            Gemm.multiply(m: rows, n: hd, k: span, a: scores, lda: span, b: vh, ldb: ldkv,
                          transposeB: false, c: out + t0 * ldo + h * hd, ldc: ldo, accumulate: false, scratch: scratch)
        }
    }

    /// One query row against `visible` keys.
    static func rowAttention(out: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>,
                             keys: UnsafePointer<Float>, values: UnsafePointer<Float>, ldkv: Int,
                             visible: Int, hd: Int, scale: Float, scores: UnsafeMutablePointer<Float>) {
        for s in 0..<visible { scores[s] = dot(q, keys + s * ldkv, hd) * scale }
        Softmax.inPlace(scores, visible)
        for i in 0..<hd { out[i] = 0 }
        for s in 0..<visible {
            let p = scores[s], v = values + s * ldkv
            var i = 0
            let pv = SIMD16<Float>(repeating: p)
            while i + 16 <= hd {
                store16(load16(out + i).addingProduct(pv, load16(v + i)), out + i)
                i += 16
            }
            while i < hd { out[i] += p * v[i]; i += 1 }
        }
    }

    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = SIMD16<Float>()
        var i = 0
        while i + 16 <= n {
            acc = acc.addingProduct(load16(a + i), load16(b + i))
            i += 16
        }
        var s = acc.sum()
        while i < n { s += a[i] * b[i]; i += 1 }
        return s
    }
}
