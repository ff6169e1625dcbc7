/// Packed, register-blocked single-precision GEMM: C[m x n] (+)= A[m x k] · B[k x n].
///
/// A is packed once into slivers of `mr` rows (for each k, `mr` consecutive floats). B arrives
/// as panels of `nr` = 64 columns (for each k, 64 consecutive floats), whole along k: every
/// panel of a model's weights fits in L2 (at most 1536 x 64 floats = 384 KiB), so there is no
/// k-blocking. Work items are (panel, range of slivers) pairs spread over the thread pool.
public enum Gemm {
    public static let mr = 6
    public static let nr = 64

    /// Floats needed to pack `m` rows of A with depth `k`.
    public static func packedASize(m: Int, k: Int) -> Int { (m + mr - 1) / mr * mr * k }

    /// Packs A (m x k, row stride lda) into `mr`-row slivers, zero-padding the last one.
    public static func packA(_ a: UnsafePointer<Float>, lda: Int, m: Int, k: Int,
                             into dst: UnsafeMutablePointer<Float>) {
        let slivers = (m + mr - 1) / mr
        for s in 0..<slivers {
            let out = dst + s * mr * k
            let rows = min(mr, m - s * mr)
            for r in 0..<mr {
                if r < rows {
                    let src = a + (s * mr + r) * lda
                    for kk in 0..<k { out[kk * mr + r] = src[kk] }
                } else {
                    for kk in 0..<k { out[kk * mr + r] = 0 }
                }
            }
        }
    }

    /// One product's B operand and destination.
    public struct Target {
        /// Columns of B (= of C).
        public var n: Int
        /// Returns panel `p` packed as `k` x 64 floats, using `scratch` (k * 64 floats) if it
        /// has to build it; columns past `n` must be zero.
        public var panel: (_ p: Int, _ scratch: UnsafeMutablePointer<Float>) -> UnsafePointer<Float>
        public var c: UnsafeMutablePointer<Float>
        public var ldc: Int
        /// Runs on the same thread right after C's rows `rows` of panel `p` are written (e.g.
        /// to add terms to them while they are in cache).
        public var epilogue: ((_ p: Int, _ rows: Range<Int>) -> Void)?

        public init(n: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
                    epilogue: ((_ p: Int, _ rows: Range<Int>) -> Void)? = nil,
                    panel: @escaping (_ p: Int, _ scratch: UnsafeMutablePointer<Float>) -> UnsafePointer<Float>) {
            self.n = n; self.c = c; self.ldc = ldc; self.epilogue = epilogue; self.panel = panel
        }

        var panelCount: Int { (n + nr - 1) / nr }
    }

    /// C (+)= Apacked · B for every target, in parallel on `pool`. `aPacked` comes from
    /// `packA` with `m` rows and depth `k`.
    public static func run(aPacked: UnsafePointer<Float>, m: Int, k: Int, targets: [Target],
                           accumulate: Bool, pool: ThreadPool, itemsPerThread: Int = 4) {
        let slivers = (m + mr - 1) / mr
        var firstItem: [Int] = []
        var panels = 0
        for t in targets { firstItem.append(panels); panels += t.panelCount }
        // Split along m only when there are too few panels to keep every thread busy.
        let chunks = max(1, min(slivers, (itemsPerThread * pool.threadCount + panels - 1) / panels))
        let sliversPerChunk = (slivers + chunks - 1) / chunks
        pool.parallelFor(panels * chunks) { item, worker in
            let global = item / chunks, chunk = item % chunks
            var ti = 0
            while ti + 1 < targets.count && firstItem[ti + 1] <= global { ti += 1 }
            let t = targets[ti]
            let p = global - firstItem[ti]
            let s0 = chunk * sliversPerChunk, s1 = min(slivers, s0 + sliversPerChunk)
            if s0 >= s1 { return }
            let scratch = pool.scratch(worker: worker, slot: 1, count: k * nr)
            let tile = pool.scratch(worker: worker, slot: 2, count: mr * nr)
            let b = t.panel(p, scratch)
            panelProduct(aPacked: aPacked, m: m, k: k, slivers: s0..<s1, b: b, n0: p * nr,
                         cols: min(nr, t.n - p * nr), c: t.c, ldc: t.ldc, accumulate: accumulate, tile: tile)
            t.epilogue?(p, s0 * mr..<min(m, s1 * mr))
        }
    }

    /// C[rows of `slivers`, n0 ..< n0+cols] (+)= A slivers · B panel.
    @inline(__always)
    static func panelProduct(aPacked: UnsafePointer<Float>, m: Int, k: Int, slivers: Range<Int>,
                             b: UnsafePointer<Float>, n0: Int, cols: Int,
                             c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool,
                             tile: UnsafeMutablePointer<Float>) {
        let kernel = wideRegisters ? kernel6x64 : kernel6x64Narrow
        for s in slivers {
            let rows = min(mr, m - s * mr)
            let a = aPacked + s * mr * k
            let cBase = c + s * mr * ldc + n0
            if rows == mr && cols == nr {
                kernel(k, a, b, cBase, ldc, accumulate)
            } else {
                if rows <= 3 && !wideRegisters { kernel3x64Narrow(k, a, b, tile, nr) } else { kernel(k, a, b, tile, nr, false) }
                for r in 0..<rows {
                    let dst = cBase + r * ldc, src = tile + r * nr
                    if accumulate {
                        for j in 0..<cols { dst[j] += src[j] }
                    } else {
                        for j in 0..<cols { dst[j] = src[j] }
                    }
                }
            }
        }
    }

    /// Plain f32 product on the calling thread: C[m x n] (+)= A[m x k] · op(B), where op(B)
    /// is B [k x n] (row stride ldb) or, with `transposeB`, the transpose of B [n x k].
    /// `scratch` must hold `packedASize(m:k:) + k * 64 + mr * 64` floats.
    public static func multiply(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                                b: UnsafePointer<Float>, ldb: Int, transposeB: Bool,
                                c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool,
                                scratch: UnsafeMutablePointer<Float>) {
        if m == 0 || n == 0 { return }
        let aPacked = scratch
        let bPanel = scratch + packedASize(m: m, k: k)
        let tile = bPanel + k * nr
        packA(a, lda: lda, m: m, k: k, into: aPacked)
        let slivers = (m + mr - 1) / mr
        for p in 0..<(n + nr - 1) / nr {
            let n0 = p * nr, cols = min(nr, n - n0)
            if transposeB {
                for j in 0..<nr {
                    if j < cols {
                        let src = b + (n0 + j) * ldb
                        for kk in 0..<k { bPanel[kk * nr + j] = src[kk] }
                    } else {
                        for kk in 0..<k { bPanel[kk * nr + j] = 0 }
                    }
                }
            } else {
                for kk in 0..<k {
                    let src = b + kk * ldb + n0, dst = bPanel + kk * nr
                    for j in 0..<cols { dst[j] = src[j] }
                    for j in cols..<nr { dst[j] = 0 }
                }
            }
            panelProduct(aPacked: aPacked, m: m, k: k, slivers: 0..<slivers, b: bPanel, n0: n0, cols: cols,
                         c: c, ldc: ldc, accumulate: accumulate, tile: tile)
        }
    }

    public static func multiplyScratchSize(m: Int, k: Int) -> Int { packedASize(m: m, k: k) + k * nr + mr * nr }
}
