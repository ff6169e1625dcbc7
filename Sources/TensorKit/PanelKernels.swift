// Decoding and matrix-vector kernels over PanelMatrix panels. See PanelMatrix for the layout.

@inline(__always) func widenU8(_ q: SIMD16<UInt8>) -> SIMD16<Float> {
    // An element loop, not SIMD16<Float>(q): the conversion initializers are not inlined,
    // while this loop becomes vpmovzxbd + vcvtdq2ps.
    var r = SIMD16<Float>()
    for i in 0..<16 { r[i] = Float(q[i]) }
    return r
}

@inline(__always) func widenI8(_ q: SIMD16<Int8>) -> SIMD16<Float> {
    var r = SIMD16<Float>()
    for i in 0..<16 { r[i] = Float(q[i]) }
    return r
}

@inline(__always) func loadHalf16(_ p: UnsafeRawPointer) -> SIMD16<Float> {
    let h = p.loadUnaligned(as: SIMD16<UInt16>.self)
    var r = SIMD16<Float>()
    for i in 0..<16 { r[i] = Float(Float16(bitPattern: h[i])) }
    return r
}

/// 16 BF16 values (the top halves of floats) as floats.
@inline(__always) func loadBF16x16(_ p: UnsafeRawPointer) -> SIMD16<Float> {
    let h = p.loadUnaligned(as: SIMD16<UInt16>.self)
    var r = SIMD16<Float>()
    for i in 0..<16 { r[i] = Float(bitPattern: UInt32(h[i]) << 16) }
    return r
}

@inline(__always) func load16(_ p: UnsafeRawPointer) -> SIMD16<Float> {
    p.loadUnaligned(as: SIMD16<Float>.self)
}

@inline(__always) func store16(_ v: SIMD16<Float>, _ p: UnsafeMutableRawPointer) {
    p.storeBytes(of: v, as: SIMD16<Float>.self)
}

extension PanelMatrix {
    /// Panel `p` as packed GEMM operand: `cols` x 64 floats, column k's 64 rows together.
    /// Returns the stored data for `.f32` and otherwise decodes into `scratch`.
    func packedPanel(_ p: Int, scratch: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        let base = UnsafeRawPointer(panel(p))
        switch format {
        case .f32:
            return base.assumingMemoryBound(to: Float.self)
        case .f16, .bf16:
            decode16Bit(base, count: cols * 64, into: scratch)
            return UnsafePointer(scratch)
        case .q4_1, .q8_0:
            for b in 0..<cols / 32 { decodeBlock(base, block: b, into: scratch + b * 32 * 64) }
            return UnsafePointer(scratch)
        case .q4_0, .q5_0, .q5_1, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K:
            for b in 0..<cols / 32 { planarBlock(base, block: b, into: scratch + b * 32 * 64) }
            return UnsafePointer(scratch)
        }
    }

    /// `count` (a multiple of 64) F16 or BF16 values as floats.
    @inline(__always)
    fileprivate func decode16Bit(_ src: UnsafeRawPointer, count: Int, into dst: UnsafeMutablePointer<Float>) {
        let out = UnsafeMutableRawPointer(dst)
        if format == .f16 {
            for i in stride(from: 0, to: count, by: 16) { store16(loadHalf16(src + 2 * i), out + 4 * i) }
        } else {
            for i in stride(from: 0, to: count, by: 16) { store16(loadBF16x16(src + 2 * i), out + 4 * i) }
        }
    }

    /// out[0..<64] = panel p · x, the 64 rows' dot products with x (`cols` floats), over the
    /// 32-column blocks `blocks` (all by default; the last block may be partial for F32/F16/BF16).
    /// `blockSums[b]` = sum of x[32b ..< 32b+32] (used by `.q4_1`'s minimums).
    func panelDot(_ p: Int, x: UnsafePointer<Float>, blockSums: UnsafePointer<Float>,
                  out: UnsafeMutablePointer<Float>, blocks: Range<Int>? = nil) {
        let base = UnsafeRawPointer(panel(p))
        let blocks = blocks ?? 0..<(cols + 31) / 32
        let columns = 32 * blocks.lowerBound..<min(cols, 32 * blocks.upperBound)
        var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
        switch format {
        case .f32:
            var w = base + 256 * columns.lowerBound
            for k in columns {
                let xk = SIMD16<Float>(repeating: x[k])
                a0 = a0.addingProduct(load16(w), xk); a1 = a1.addingProduct(load16(w + 64), xk)
                a2 = a2.addingProduct(load16(w + 128), xk); a3 = a3.addingProduct(load16(w + 192), xk)
                w += 256
            }
        case .f16:
            var w = base + 128 * columns.lowerBound
            for k in columns {
                let xk = SIMD16<Float>(repeating: x[k])
                a0 = a0.addingProduct(loadHalf16(w), xk); a1 = a1.addingProduct(loadHalf16(w + 32), xk)
                a2 = a2.addingProduct(loadHalf16(w + 64), xk); a3 = a3.addingProduct(loadHalf16(w + 96), xk)
                w += 128
            }
        case .bf16:
            var w = base + 128 * columns.lowerBound
            for k in columns {
                let xk = SIMD16<Float>(repeating: x[k])
                a0 = a0.addingProduct(loadBF16x16(w), xk); a1 = a1.addingProduct(loadBF16x16(w + 32), xk)
                a2 = a2.addingProduct(loadBF16x16(w + 64), xk); a3 = a3.addingProduct(loadBF16x16(w + 96), xk)
                w += 128
            }
        case .q4_0, .q5_0, .q5_1, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K:
            planarPanelDot(base, x: x, out: out, blocks: blocks)
            return
        case .q4_1:
            for b in blocks {
                let blk = base + b * 1280
                var t0 = SIMD16<Float>(), t1 = SIMD16<Float>(), t2 = SIMD16<Float>(), t3 = SIMD16<Float>()
                var nib = blk + 256
                let xb = x + b * 32
                for e in 0..<32 {
                    let xk = SIMD16<Float>(repeating: xb[e])
                    let lo = nib.loadUnaligned(as: SIMD16<UInt8>.self)
                    let hi = nib.loadUnaligned(fromByteOffset: 16, as: SIMD16<UInt8>.self)
                    t0 = t0.addingProduct(widenU8(lo & 0x0F), xk); t1 = t1.addingProduct(widenU8(hi & 0x0F), xk)
                    t2 = t2.addingProduct(widenU8(lo &>> 4), xk); t3 = t3.addingProduct(widenU8(hi &>> 4), xk)
                    nib += 32
                }
                let s = SIMD16<Float>(repeating: blockSums[b])
                a0 = a0.addingProduct(loadHalf16(blk), t0).addingProduct(loadHalf16(blk + 128), s)
                a1 = a1.addingProduct(loadHalf16(blk + 32), t1).addingProduct(loadHalf16(blk + 160), s)
                a2 = a2.addingProduct(loadHalf16(blk + 64), t2).addingProduct(loadHalf16(blk + 192), s)
                a3 = a3.addingProduct(loadHalf16(blk + 96), t3).addingProduct(loadHalf16(blk + 224), s)
            }
        case .q8_0:
            for b in blocks {
                let blk = base + b * 2176
                var t0 = SIMD16<Float>(), t1 = SIMD16<Float>(), t2 = SIMD16<Float>(), t3 = SIMD16<Float>()
                var q = blk + 128
                let xb = x + b * 32
                for e in 0..<32 {
                    let xk = SIMD16<Float>(repeating: xb[e])
                    t0 = t0.addingProduct(widenI8(q.loadUnaligned(as: SIMD16<Int8>.self)), xk)
                    t1 = t1.addingProduct(widenI8(q.loadUnaligned(fromByteOffset: 16, as: SIMD16<Int8>.self)), xk)
                    t2 = t2.addingProduct(widenI8(q.loadUnaligned(fromByteOffset: 32, as: SIMD16<Int8>.self)), xk)
                    t3 = t3.addingProduct(widenI8(q.loadUnaligned(fromByteOffset: 48, as: SIMD16<Int8>.self)), xk)
                    q += 64
                }
                a0 = a0.addingProduct(loadHalf16(blk), t0); a1 = a1.addingProduct(loadHalf16(blk + 32), t1)
                a2 = a2.addingProduct(loadHalf16(blk + 64), t2); a3 = a3.addingProduct(loadHalf16(blk + 96), t3)
            }
        }
        let o = UnsafeMutableRawPointer(out)
        store16(a0, o); store16(a1, o + 64); store16(a2, o + 128); store16(a3, o + 192)
    }
}

extension PanelMatrix {
    /// Columns `64c ..< 64c + 64` of the rows in `rowRange` (starting at a multiple of 64), row
    /// by row: for each row o, 64 consecutive floats W[o, 64c + j] (zero past `cols`). This is
    /// a B panel (depth = rows) of dX = dY · W, the input gradient of `out = x · Wᵀ`, decoded
    /// straight from the stored bits.
    public func transposedPanel(_ c: Int, rows rowRange: Range<Int>, into dst: UnsafeMutablePointer<Float>) {
        precondition(rowRange.lowerBound % Self.width == 0)
        let tile = UnsafeMutablePointer<Float>.allocate(capacity: 64 * 64)
        defer { tile.deallocate() }
        let width = min(64, cols - 64 * c)
        for p in rowRange.lowerBound / 64..<(rowRange.upperBound + 63) / 64 {
            // tile[e][j]: column 64c + e, row 64p + j.
            let base = UnsafeRawPointer(panel(p))
            switch format {
            case .f32:
                (tile).update(from: base.assumingMemoryBound(to: Float.self) + 64 * c * 64, count: width * 64)
            case .f16, .bf16:
                decode16Bit(base + 2 * 64 * c * 64, count: width * 64, into: tile)
            case .q4_1, .q8_0:
                for half in 0..<(width + 31) / 32 {
                    decodeBlock(base, block: 2 * c + half, into: tile + half * 32 * 64)
                }
            case .q4_0, .q5_0, .q5_1, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K:
                for half in 0..<(width + 31) / 32 {
                    planarBlock(base, block: 2 * c + half, into: tile + half * 32 * 64)
                }
            }
            let rows = min(64, rowRange.upperBound - 64 * p)
            let out = dst + (64 * p - rowRange.lowerBound) * 64
            for j in 0..<rows {
                let o = out + j * 64
                for e in 0..<width { o[e] = tile[e * 64 + j] }
                for e in width..<64 { o[e] = 0 }
            }
        }
    }

    /// Block `b` (32 columns) of a quantized panel as [32][64] floats.
    @inline(__always)
    fileprivate func decodeBlock(_ base: UnsafeRawPointer, block b: Int, into out: UnsafeMutablePointer<Float>) {
        var dst = UnsafeMutableRawPointer(out)
        if format == .q4_1 {
            // Rows 0-31 (low nibbles), then rows 32-63 (high nibbles): a half's scales and
            // minimums take 8 of the 16 AVX2 registers, so none are spilled in the loop.
            let blk = base + b * 1280
            for half in 0..<2 {
                let d0 = loadHalf16(blk + 64 * half), d1 = loadHalf16(blk + 64 * half + 32)
                let m0 = loadHalf16(blk + 128 + 64 * half), m1 = loadHalf16(blk + 128 + 64 * half + 32)
                let shift = SIMD16<UInt8>(repeating: UInt8(4 * half))
                var nib = blk + 256, row = dst + 128 * half
                for _ in 0..<32 {
                    let lo = nib.loadUnaligned(as: SIMD16<UInt8>.self) &>> shift
                    let hi = nib.loadUnaligned(fromByteOffset: 16, as: SIMD16<UInt8>.self) &>> shift
                    store16(m0.addingProduct(d0, widenU8(lo & 0x0F)), row)
                    store16(m1.addingProduct(d1, widenU8(hi & 0x0F)), row + 64)
                    nib += 32; row += 256
                }
            }
        } else {
            let blk = base + b * 2176
            let d0 = loadHalf16(blk), d1 = loadHalf16(blk + 32), d2 = loadHalf16(blk + 64), d3 = loadHalf16(blk + 96)
            var q = blk + 128
            for _ in 0..<32 {
                store16(d0 * widenI8(q.loadUnaligned(as: SIMD16<Int8>.self)), dst)
                store16(d1 * widenI8(q.loadUnaligned(fromByteOffset: 16, as: SIMD16<Int8>.self)), dst + 64)
                store16(d2 * widenI8(q.loadUnaligned(fromByteOffset: 32, as: SIMD16<Int8>.self)), dst + 128)
                store16(d3 * widenI8(q.loadUnaligned(fromByteOffset: 48, as: SIMD16<Int8>.self)), dst + 192)
                q += 64; dst += 256
            }
        }
    }
}
