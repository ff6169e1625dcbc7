#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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
        /// Factor on q·k before the cap and the softmax; 1/√headDim unless the model says otherwise.
        public var scale: Float
        /// Scores pass through cap·tanh(s / cap) before the softmax when cap > 0 (Gemma 2).
        public var softcap: Float
        /// When > 0, a query at position p sees only keys at positions > p − window (sliding window).
        public var window: Int
        public init(heads: Int, kvHeads: Int, headDim: Int, scale: Float? = nil, softcap: Float = 0, window: Int = 0) {
            self.heads = heads; self.kvHeads = kvHeads; self.headDim = headDim
            self.scale = scale ?? 1 / Float(headDim).squareRoot()
            self.softcap = softcap; self.window = window
        }

        /// The first key a query sees when `visible` keys (0..<visible) precede it, itself included.
        @inline(__always) func firstKey(visible: Int) -> Int { window > 0 ? max(0, visible - window) : 0 }

        /// Scales (and caps) raw q·k products in place.
        @inline(__always) func finish(_ row: UnsafeMutablePointer<Float>, _ range: Range<Int>) {
            if softcap > 0 {
                let inv = 1 / softcap
                for s in range { row[s] = softcap * tanhf(row[s] * scale * inv) }
            } else {
                for s in range { row[s] *= scale }
            }
        }
    }

    /// Up to this many rows, attention runs row by row (the decode path); longer runs of rows
    /// take blocked products.
    public static let batchedRows = 4

    /// out[t, h*hd ..< (h+1)*hd] = softmax(q_h · K_gᵀ · scale, causal) · V_g.
    /// q: T x (H*hd) with row stride `ldq`; keys, values: S x (G*hd) with row stride `ldkv`;
    /// out: T x (H*hd) with row stride `ldo`.
    public static func forward(out: UnsafeMutablePointer<Float>, ldo: Int,
                               q: UnsafePointer<Float>, ldq: Int,
                               keys: UnsafePointer<Float>, values: UnsafePointer<Float>, ldkv: Int,
                               rows T: Int, positions S: Int, shape: Shape, pool: ThreadPool = .shared) {
        guard T > 0 else { return }
        let hd = shape.headDim, group = shape.heads / shape.kvHeads
        let chunk = T <= batchedRows ? T : 32
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
                                 ldkv: ldkv, visible: S - T + t + 1, hd: hd, shape: shape, scores: scores)
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
                let visible = S - T + t0 + r + 1, first = shape.firstKey(visible: visible)
                let row = scores + r * span
                shape.finish(row, first..<visible)
                Softmax.inPlace(row + first, visible - first)
                for s in 0..<first { row[s] = 0 }
                for s in visible..<span { row[s] = 0 }
            }
            Gemm.multiply(m: rows, n: hd, k: span, a: scores, lda: span, b: vh, ldb: ldkv,
                          transposeB: false, c: out + t0 * ldo + h * hd, ldc: ldo, accumulate: false, scratch: scratch)
        }
    }

    /// One sequence's part of a batched decode step: `rows` query rows (at most a few) at `q`,
    /// written to `out`, attending to the sequence's own cache of `positions` keys and values
    /// (the new rows' included).
    public struct Sequence {
        public var q: UnsafePointer<Float>
        public var out: UnsafeMutablePointer<Float>
        public var keys: UnsafePointer<Float>
        public var values: UnsafePointer<Float>
        public var rows: Int
        public var positions: Int
        public init(q: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, keys: UnsafePointer<Float>,
                    values: UnsafePointer<Float>, rows: Int, positions: Int) {
            self.q = q; self.out = out; self.keys = keys; self.values = values
            self.rows = rows; self.positions = positions
        }
    }

    /// `forward` for several sequences of a few rows each, in one parallel pass over
    /// (sequence, key/value head) pairs. The query heads of a group are computed together, so
    /// each cached key and value is read from memory once rather than once per query head.
    /// Results are identical to `forward` with four or fewer rows.
    public static func forward(_ sequences: [Sequence], ldo: Int, ldq: Int, ldkv: Int, shape: Shape,
                               pool: ThreadPool = .shared) {
        let G = shape.kvHeads, hd = shape.headDim, group = shape.heads / G
        pool.parallelFor(sequences.count * G) { item, worker in
            let seq = sequences[item / G], g = item % G
            let scores = pool.scratch(worker: worker, slot: 5, count: group * seq.positions)
            for t in 0..<seq.rows {
                groupRowAttention(out: seq.out + t * ldo + g * group * hd, q: seq.q + t * ldq + g * group * hd,
                                  keys: seq.keys + g * hd, values: seq.values + g * hd, ldkv: ldkv,
                                  visible: seq.positions - seq.rows + t + 1, hd: hd, heads: group,
                                  shape: shape, scores: scores)
            }
        }
    }

    /// `rowAttention` for `heads` consecutive query heads that share one key/value head, with
    /// the same arithmetic per head; `scores` holds heads x visible floats.
    static func groupRowAttention(out: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>,
                                  keys: UnsafePointer<Float>, values: UnsafePointer<Float>, ldkv: Int,
                                  visible: Int, hd: Int, heads: Int, shape: Shape,
                                  scores: UnsafeMutablePointer<Float>) {
        guard hd % 16 == 0 else {
            for h in 0..<heads {
                rowAttention(out: out + h * hd, q: q + h * hd, keys: keys, values: values, ldkv: ldkv,
                             visible: visible, hd: hd, shape: shape, scores: scores)
            }
            return
        }
        // Keys before `first` are outside the sliding window: their probabilities stay zero.
        let first = shape.firstKey(visible: visible)
        for s in 0..<first { for h in 0..<heads { scores[h * visible + s] = 0 } }
        for s in first..<visible {
            let k = keys + s * ldkv
            for h in 0..<heads { scores[h * visible + s] = dot(q + h * hd, k, hd) }
        }
        for h in 0..<heads {
            shape.finish(scores + h * visible, first..<visible)
            Softmax.inPlace(scores + h * visible + first, visible - first)
        }
        // Output columns 16 at a time for up to four heads, summing over positions in order.
        var h0 = 0
        while h0 < heads {
            let n = min(4, heads - h0)
            let p0 = scores + h0 * visible, p1 = p0 + (n > 1 ? visible : 0)
            let p2 = p0 + (n > 2 ? 2 * visible : 0), p3 = p0 + (n > 3 ? 3 * visible : 0)
            for c in stride(from: 0, to: hd, by: 16) {
                var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
                var v = values + c + first * ldkv
                for s in first..<visible {
                    let vs = load16(v)
                    a0 = a0.addingProduct(SIMD16(repeating: p0[s]), vs)
                    a1 = a1.addingProduct(SIMD16(repeating: p1[s]), vs)
                    a2 = a2.addingProduct(SIMD16(repeating: p2[s]), vs)
                    a3 = a3.addingProduct(SIMD16(repeating: p3[s]), vs)
                    v += ldkv
                }
                let o = out + h0 * hd + c
                store16(a0, o)
                if n > 1 { store16(a1, o + hd) }
                if n > 2 { store16(a2, o + 2 * hd) }
                if n > 3 { store16(a3, o + 3 * hd) }
            }
            h0 += n
        }
    }

    /// One query row against `visible` keys.
    static func rowAttention(out: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>,
                             keys: UnsafePointer<Float>, values: UnsafePointer<Float>, ldkv: Int,
                             visible: Int, hd: Int, shape: Shape, scores: UnsafeMutablePointer<Float>) {
        let first = shape.firstKey(visible: visible)
        for s in first..<visible { scores[s] = dot(q, keys + s * ldkv, hd) }
        shape.finish(scores, first..<visible)
        Softmax.inPlace(scores + first, visible - first)
        for i in 0..<hd { out[i] = 0 }
        for s in first..<visible {
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

extension Attention {
    /// Gradients of `forward` for whole sequences (no cached prefix): `segments` are row ranges
    /// of one batch, each a sequence starting at position 0 that attends only to its own rows.
    /// Writes dq [T x (H*hd)], dk and dv [T x (G*hd)], all with row stride `ldd`, from the
    /// output gradient `dOut`, the forward's output `out` and its inputs (q after RoPE, keys,
    /// values). Probabilities are recomputed, not stored. Work items are (sequence, query head);
    /// each head's key/value gradient goes to its own buffer and the heads of a group are summed
    /// afterwards in a fixed order, so results do not depend on the thread count.
    public static func backward(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                                dv: UnsafeMutablePointer<Float>, ldd: Int,
                                dOut: UnsafePointer<Float>, out: UnsafePointer<Float>, ldo: Int,
                                q: UnsafePointer<Float>, ldq: Int,
                                keys: UnsafePointer<Float>, values: UnsafePointer<Float>, ldkv: Int,
                                segments: [Range<Int>], shape: Shape, pool: ThreadPool = .shared) {
        let H = shape.heads, hd = shape.headDim, group = H / shape.kvHeads, scale = shape.scale, cap = shape.softcap
        let T = segments.map(\.upperBound).max() ?? 0
        guard T > 0 else { return }
        let partialK = UnsafeMutablePointer<Float>.allocate(capacity: T * H * hd)
        let partialV = UnsafeMutablePointer<Float>.allocate(capacity: T * H * hd)
        defer { partialK.deallocate(); partialV.deallocate() }
        let ldp = H * hd
        pool.parallelFor(segments.count * H) { item, worker in
            let seg = segments[item / H], h = item % H, g = h / group
            let n = seg.count, r0 = seg.lowerBound
            if n == 0 { return }
            let p = pool.scratch(worker: worker, slot: 5, count: n * n)
            let gemm = pool.scratch(worker: worker, slot: 6, count: Gemm.multiplyScratchSize(m: n, k: max(hd, n)))
            let dp = pool.scratch(worker: worker, slot: 7, count: n * n)
            let tr = pool.scratch(worker: worker, slot: 8, count: n * n)
            let qh = q + r0 * ldq + h * hd, kg = keys + r0 * ldkv + g * hd, vg = values + r0 * ldkv + g * hd
            let doh = dOut + r0 * ldo + h * hd, oh = out + r0 * ldo + h * hd
            Gemm.multiply(m: n, n: n, k: hd, a: qh, lda: ldq, b: kg, ldb: ldkv, transposeB: true,
                          c: p, ldc: n, accumulate: false, scratch: gemm)
            // With a cap, `capped` keeps 1 − tanh² of each score: the cap's derivative.
            let capped = cap > 0 ? pool.scratch(worker: worker, slot: 11, count: n * n) : p
            for i in 0..<n {
                let row = p + i * n, first = shape.firstKey(visible: i + 1)
                shape.finish(row, first..<i + 1)
                if cap > 0 { for j in first...i { let c = row[j] / cap; capped[i * n + j] = 1 - c * c } }
                Softmax.inPlace(row + first, i + 1 - first)
                for j in 0..<first { row[j] = 0 }
                for j in (i + 1)..<n { row[j] = 0 }
            }
            Gemm.multiply(m: n, n: n, k: hd, a: doh, lda: ldo, b: vg, ldb: ldkv, transposeB: true,
                          c: dp, ldc: n, accumulate: false, scratch: gemm)
            for i in 0..<n {
                let d = dot(doh + i * ldo, oh + i * ldo, hd)
                let pr = p + i * n, dr = dp + i * n
                let first = shape.firstKey(visible: i + 1)
                for j in 0..<first { dr[j] = 0 }
                if cap > 0 {
                    for j in first...i { dr[j] = pr[j] * (dr[j] - d) * capped[i * n + j] * scale }
                } else {
                    for j in first...i { dr[j] = pr[j] * (dr[j] - d) * scale }
                }
                for j in (i + 1)..<n { dr[j] = 0 }
            }
            Gemm.multiply(m: n, n: hd, k: n, a: dp, lda: n, b: kg, ldb: ldkv, transposeB: false,
                          c: dq + r0 * ldd + h * hd, ldc: ldd, accumulate: false, scratch: gemm)
            transpose(dp, n, into: tr)
            Gemm.multiply(m: n, n: hd, k: n, a: tr, lda: n, b: qh, ldb: ldq, transposeB: false,
                          c: partialK + r0 * ldp + h * hd, ldc: ldp, accumulate: false, scratch: gemm)
            transpose(p, n, into: tr)
            Gemm.multiply(m: n, n: hd, k: n, a: tr, lda: n, b: doh, ldb: ldo, transposeB: false,
                          c: partialV + r0 * ldp + h * hd, ldc: ldp, accumulate: false, scratch: gemm)
        }
        for seg in segments {
            for t in seg {
                for g in 0..<shape.kvHeads {
                    let k = dk + t * ldd + g * hd, v = dv + t * ldd + g * hd
                    let pk = partialK + t * ldp + g * group * hd, pv = partialV + t * ldp + g * group * hd
                    for i in 0..<hd { k[i] = pk[i]; v[i] = pv[i] }
                    for member in 1..<group {
                        for i in 0..<hd { k[i] += pk[member * hd + i]; v[i] += pv[member * hd + i] }
                    }
                }
            }
        }
    }

    private static func transpose(_ m: UnsafePointer<Float>, _ n: Int, into out: UnsafeMutablePointer<Float>) {
        for i in 0..<n { for j in 0..<n { out[j * n + i] = m[i * n + j] } }
    }
}
