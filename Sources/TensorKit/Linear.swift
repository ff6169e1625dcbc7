/// Dense layers over `PanelMatrix` weights: out = x · Wᵀ, for one or several weights that read
/// the same input (e.g. the query, key and value projections), in one parallel pass.
public enum Linear {
    /// Below this many input rows, a matrix-vector pass per row beats packing for the GEMM.
    public static let gemmMinRows = 2

    public struct Output {
        public var weight: PanelMatrix
        public var out: UnsafeMutablePointer<Float>
        /// Row stride of `out`.
        public var ldo: Int
        /// Low-rank terms added to the product (LoRA), each on a range of input rows.
        public var updates: [LowRankUpdate]
        public init(_ weight: PanelMatrix, _ out: UnsafeMutablePointer<Float>, ldo: Int? = nil,
                    updates: [LowRankUpdate] = []) {
            self.weight = weight; self.out = out; self.ldo = ldo ?? weight.rows; self.updates = updates
        }
    }

    /// out[rows] += u · bt: u [rows.count x rank] (row stride rank), bt [rank x out] (row
    /// stride = the output width). With u = x · Aᵀ (times a weight) and bt = (scale · B)ᵀ this is
    /// a LoRA update, added panel by panel by the thread that computed the panel. bt holds
    /// Float32 values or IEEE halves (`btHalves`).
    public struct LowRankUpdate {
        public var rows: Range<Int>
        public var rank: Int
        public var u: UnsafePointer<Float>
        public var bt: UnsafeRawPointer
        public var btHalves: Bool
        public init(rows: Range<Int>, rank: Int, u: UnsafePointer<Float>, bt: UnsafePointer<Float>) {
            self.rows = rows; self.rank = rank; self.u = u; self.bt = UnsafeRawPointer(bt); btHalves = false
        }
        public init(rows: Range<Int>, rank: Int, u: UnsafePointer<Float>, halves bt: UnsafePointer<UInt16>) {
            self.rows = rows; self.rank = rank; self.u = u; self.bt = UnsafeRawPointer(bt); btHalves = true
        }

        /// Adds this term's row `r` (a row of `rows`) to y = that row's output columns
        /// n0 ..< n0 + cols (row stride of bt: `ldb` values).
        @inline(__always)
        func add(row r: Int, to y: UnsafeMutablePointer<Float>, n0: Int, ldb: Int, cols: Int) {
            let ur = u + (r - rows.lowerBound) * rank
            if btHalves {
                Linear.addLowRank(y, u: ur, rank: rank, halves: bt.assumingMemoryBound(to: UInt16.self) + n0, ldb: ldb, cols: cols)
            } else {
                Linear.addLowRank(y, u: ur, rank: rank, bt: bt.assumingMemoryBound(to: Float.self) + n0, ldb: ldb, cols: cols)
            }
        }
    }

    /// For each output: out[m x rows] = x[m x cols] · Wᵀ (x has row stride `ldx`).
    /// `gemmMinRows` picks the path (tests force one or the other).
    public static func project(_ x: UnsafePointer<Float>, rows m: Int, ldx: Int, into outputs: [Output],
                               pool: ThreadPool = .shared, gemmMinRows: Int = Linear.gemmMinRows) {
        pool.exclusive { projectExclusive(x, rows: m, ldx: ldx, into: outputs, pool: pool, gemmMinRows: gemmMinRows) }
    }

    private static func projectExclusive(_ x: UnsafePointer<Float>, rows m: Int, ldx: Int, into outputs: [Output],
                                         pool: ThreadPool, gemmMinRows: Int) {
        guard m > 0, let k = outputs.first?.weight.cols else { return }
        for o in outputs { precondition(o.weight.cols == k, "all weights must share the input width") }
        if m < gemmMinRows {
            matvec(x, rows: m, ldx: ldx, k: k, outputs: outputs, pool: pool)
            return
        }
        let aPacked = pool.scratch(worker: 0, slot: 0, count: Gemm.packedASize(m: m, k: k))
        Gemm.packA(x, lda: ldx, m: m, k: k, into: aPacked)
        // The low-rank terms (u · bt) of a panel's rows are added by the thread that just wrote
        // them, while they are in cache: reading each adapter's bt (memory-bound when the rows
        // have different adapters) overlaps the other thread's arithmetic. A work item owns its
        // panel's rows, so two adapters on the same rows never write the same values at once.
        let targets = outputs.map { o in
            Gemm.Target(n: o.weight.rows, c: o.out, ldc: o.ldo,
                        epilogue: o.updates.isEmpty ? nil : { p, rows in addLowRank(o, panel: p, rows: rows) }) { p, scratch in
                o.weight.packedPanel(p, scratch: scratch)
            }
        }
        Gemm.run(aPacked: aPacked, m: m, k: k, targets: targets, accumulate: false, pool: pool)
    }

    /// Adds `o`'s low-rank terms to rows `rows` of its output's 64-column panel `p`.
    static func addLowRank(_ o: Output, panel p: Int, rows: Range<Int>) {
        let n0 = p * PanelMatrix.width, cols = min(PanelMatrix.width, o.weight.rows - n0)
        for up in o.updates {
            for r in up.rows.clamped(to: rows) {
                up.add(row: r, to: o.out + r * o.ldo + n0, n0: n0, ldb: o.weight.rows, cols: cols)
            }
        }
    }

    static func matvec(_ x: UnsafePointer<Float>, rows m: Int, ldx: Int, k: Int, outputs: [Output], pool: ThreadPool) {
        let blocks = (k + 31) / 32
        let sums = pool.scratch(worker: 0, slot: 3, count: m * blocks)
        for r in 0..<m {
            let xr = x + r * ldx
            for b in 0..<blocks {
                if b * 32 + 32 <= k {
                    sums[r * blocks + b] = (load16(xr + b * 32) + load16(xr + b * 32 + 16)).sum()
                } else {
                    var s: Float = 0
                    for e in b * 32..<k { s += xr[e] }
                    sums[r * blocks + b] = s
                }
            }
        }
        var first: [Int] = []
        var panels = 0
        for o in outputs { first.append(panels); panels += o.weight.panelCount }
        // When the panels do not divide evenly among the threads and are few (a 576-row output
        // is 9 panels), one thread would work alone at the end. Then each panel is two items,
        // the first and second half of its columns, and the halves are added afterwards.
        let threads = pool.threadCount
        let split = m == 1 && threads > 1 && panels % threads != 0 && panels < 8 * threads && blocks >= 2
        let middle = blocks / 2
        let second = split ? pool.scratch(worker: 0, slot: 5, count: panels * PanelMatrix.width) : sums
        pool.parallelFor(split ? 2 * panels : panels) { job, worker in
            let item = split ? job >> 1 : job, half = split ? job & 1 : -1
            var oi = 0
            while oi + 1 < outputs.count && first[oi + 1] <= item { oi += 1 }
            let o = outputs[oi], p = item - first[oi]
            let n0 = p * PanelMatrix.width, cols = min(PanelMatrix.width, o.weight.rows - n0)
            let tmp = pool.scratch(worker: worker, slot: 4, count: PanelMatrix.width)
            if half >= 0 {
                let range = half == 0 ? 0..<middle : middle..<blocks
                o.weight.panelDot(p, x: x, blockSums: sums, out: half == 0 ? tmp : second + item * PanelMatrix.width,
                                  blocks: range)
                if half == 0 {
                    let dst = o.out + n0
                    for j in 0..<cols { dst[j] = tmp[j] }
                }
                return
            }
            for r in 0..<m {
                o.weight.panelDot(p, x: x + r * ldx, blockSums: sums + r * blocks, out: tmp)
                for up in o.updates where up.rows.contains(r) {
                    up.add(row: r, to: tmp, n0: n0, ldb: o.weight.rows, cols: cols)
                }
                let dst = o.out + r * o.ldo + n0
                for j in 0..<cols { dst[j] = tmp[j] }
            }
        }
        guard split else { return }
        for (oi, o) in outputs.enumerated() {
            for p in 0..<o.weight.panelCount {
                let n0 = p * PanelMatrix.width, cols = min(PanelMatrix.width, o.weight.rows - n0)
                let dst = o.out + n0, add = second + (first[oi] + p) * PanelMatrix.width
                for j in 0..<cols { dst[j] += add[j] }
                for up in o.updates where up.rows.contains(0) {
                    up.add(row: 0, to: dst, n0: n0, ldb: o.weight.rows, cols: cols)
                }
            }
        }
    }

    /// y[0..<cols] += Σ_j u[j] · bt[j * ldb ..< j * ldb + cols], holding a full 64-wide y in
    /// registers across the rank.
    @inline(__always)
    static func addLowRank(_ y: UnsafeMutablePointer<Float>, u: UnsafePointer<Float>, rank: Int,
                           bt: UnsafePointer<Float>, ldb: Int, cols: Int) {
        guard cols == 64 else {
            for j in 0..<rank { Kernels.axpy(u[j], bt + j * ldb, y, cols) }
            return
        }
        let yr = UnsafeMutableRawPointer(y)
        var a0 = load16(yr), a1 = load16(yr + 64), a2 = load16(yr + 128), a3 = load16(yr + 192)
        var b = UnsafeRawPointer(bt)
        for j in 0..<rank {
            let uj = SIMD16<Float>(repeating: u[j])
            a0 = a0.addingProduct(uj, load16(b)); a1 = a1.addingProduct(uj, load16(b + 64))
            a2 = a2.addingProduct(uj, load16(b + 128)); a3 = a3.addingProduct(uj, load16(b + 192))
            b += ldb * 4
        }
        store16(a0, yr); store16(a1, yr + 64); store16(a2, yr + 128); store16(a3, yr + 192)
    }
}

extension Linear {
    /// One weight's part of a backward product: the rows `rows` of `weight` (starting at a
    /// multiple of 64, or at 0).
    public struct BackwardInput {
        public var weight: PanelMatrix
        public var rows: Range<Int>
        public init(_ weight: PanelMatrix, rows: Range<Int>? = nil) {
            self.weight = weight; self.rows = rows ?? 0..<weight.rows
        }
    }

    /// dX[m x cols] (+)= Σ_i dY_i · W_i[rows_i]: the input gradient of `project` for weights
    /// that read the same input. `dy` holds the output gradients side by side, weight i's
    /// `rows_i.count` columns after those of the weights before it (row stride `ldy`), so the
    /// whole sum is one GEMM of depth Σ rows_i. The weights are decoded panel by panel, never
    /// expanded as a whole.
    public static func backward(_ dy: UnsafePointer<Float>, rows m: Int, ldy: Int, weights: [BackwardInput],
                                into dx: UnsafeMutablePointer<Float>, ldx: Int, accumulate: Bool,
                                pool: ThreadPool = .shared) {
        guard m > 0, let cols = weights.first?.weight.cols else { return }
        for w in weights { precondition(w.weight.cols == cols, "all weights must share the input width") }
        var offsets: [Int] = []
        var k = 0
        for w in weights { offsets.append(k); k += w.rows.count }
        pool.exclusive {
            let aPacked = pool.scratch(worker: 0, slot: 0, count: Gemm.packedASize(m: m, k: k))
            Gemm.packA(dy, lda: ldy, m: m, k: k, into: aPacked)
            let target = Gemm.Target(n: cols, c: dx, ldc: ldx) { p, scratch in
                for (w, offset) in zip(weights, offsets) {
                    w.weight.transposedPanel(p, rows: w.rows, into: scratch + offset * Gemm.nr)
                }
                return UnsafePointer(scratch)
            }
            Gemm.run(aPacked: aPacked, m: m, k: k, targets: [target], accumulate: accumulate, pool: pool,
                     itemsPerThread: 8)
        }
    }
}

/// Products with a thin matrix: out[t] = scale · Σ_i x[t, i] · m[i] for rows t, where m is
/// [width x rank] row-major (rank ≤ a few dozen), e.g. LoRA's u = x·Aᵀ with m = Aᵀ. A GEMM
/// would pad the rank to its 64-column panels; this keeps a 16-wide row in registers.
public enum ThinProduct {
    public static func multiply(_ x: UnsafePointer<Float>, ldx: Int, rows: Range<Int>, width: Int,
                                matrix m: UnsafePointer<Float>, rank: Int, scale: Float,
                                into out: UnsafeMutablePointer<Float>, ldo: Int) {
        var t = rows.lowerBound
        let base = UnsafeRawPointer(m)
        if rank == 16 {
            // Four rows at a time: four independent accumulator chains per loaded row of m.
            while t + 4 <= rows.upperBound {
                var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
                let x0 = x + t * ldx, x1 = x0 + ldx, x2 = x1 + ldx, x3 = x2 + ldx
                for i in 0..<width {
                    let v = base.loadUnaligned(fromByteOffset: 64 * i, as: SIMD16<Float>.self)
                    a0 = a0.addingProduct(SIMD16(repeating: x0[i]), v)
                    a1 = a1.addingProduct(SIMD16(repeating: x1[i]), v)
                    a2 = a2.addingProduct(SIMD16(repeating: x2[i]), v)
                    a3 = a3.addingProduct(SIMD16(repeating: x3[i]), v)
                }
                let sv = SIMD16<Float>(repeating: scale)
                for (r, a) in [a0, a1, a2, a3].enumerated() {
                    UnsafeMutableRawPointer(out + (t + r) * ldo).storeBytes(of: a * sv, as: SIMD16<Float>.self)
                }
                t += 4
            }
        }
        while t < rows.upperBound {
            let xr = x + t * ldx, o = out + t * ldo
            for j in 0..<rank { o[j] = 0 }
            for i in 0..<width { Kernels.axpy(xr[i], m + i * rank, o, rank) }
            for j in 0..<rank { o[j] *= scale }
            t += 1
        }
    }
}
