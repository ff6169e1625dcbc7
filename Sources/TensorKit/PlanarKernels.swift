// SIMD decoding and matrix-vector kernels for the bit-plane formats (layout in PanelPlanar.swift).
// Each format is a codec type; the generic kernels are specialized per codec, so the plane and
// scale choices are compile-time constants in the loops.

protocol PlanarCodec {
    static var nibbles: Bool { get }
    static var twoBits: Bool { get }
    static var oneBit: Bool { get }
    static var groupBlocks: Int { get }
    static var headerFields: Int { get }
    static var scaleBytes: Int { get }
    /// Two scales per 32 columns (one per 16), rather than one.
    static var halves: Bool { get }
    /// Subtracted from q before scaling.
    static var offset: Float { get }
    /// Whether a value has the additive term B.
    static var hasMin: Bool { get }
    /// A and B of rows 16g ..< 16g + 16 for sub-block s of the block at `blk`.
    static func scales(_ head: UnsafeRawPointer, _ blk: UnsafeRawPointer, _ s: Int, _ g: Int) -> (SIMD16<Float>, SIMD16<Float>)
}

extension PlanarCodec {
    static var twoBits: Bool { false }
    static var oneBit: Bool { false }
    static var groupBlocks: Int { 8 }
    static var scaleBytes: Int { 2 }
    static var halves: Bool { true }
    static var offset: Float { 0 }
    static var hasMin: Bool { false }

    static var blockBytes: Int { 64 * scaleBytes + (nibbles ? 1024 : 0) + (twoBits ? 512 : 0) + (oneBit ? 256 : 0) }
    static var groupBytes: Int { 128 * headerFields + groupBlocks * blockBytes }

    /// Bits of q (4 for Q4_0 and Q4_K, 5 for the Q5 types, 6 for Q6_K, 3 for Q3_K, 2 for Q2_K).
    static var qBits: Int { (nibbles ? 4 : 0) + (twoBits ? 2 : 0) + (oneBit ? 1 : 0) }

    /// The q of column 8·octet + i (planes at `planes`): byte 4l + k of the 16 lanes holds row
    /// 16k + l in its low `qBits` bits (the bits above are not cleared). Loops pass i as a
    /// constant, so that every shift is one.
    @inline(__always)
    static func quants(_ planes: UnsafeRawPointer, _ octet: Int, _ i: Int) -> SIMD16<UInt32> {
        var q = SIMD16<UInt32>()
        var at = planes
        if nibbles {
            let n = at.loadUnaligned(fromByteOffset: 256 * octet + 64 * (i >> 1), as: SIMD16<UInt32>.self)
            q = i & 1 == 0 ? n : n &>> 4
            at += 1024
        }
        if twoBits {
            let t = at.loadUnaligned(fromByteOffset: 128 * octet + 64 * (i >> 2), as: SIMD16<UInt32>.self)
            let from = 2 * (i & 3)
            if nibbles {
                let moved = from <= 4 ? t &<< UInt32(4 - from) : t &>> UInt32(from - 4)
                q = (q & 0x0F0F_0F0F) | (moved & ~0x0F0F_0F0F)
            } else {
                q = t &>> UInt32(from)
            }
            at += 512
        }
        if oneBit {
            let h = at.loadUnaligned(fromByteOffset: 64 * octet, as: SIMD16<UInt32>.self)
            let from = i, to = nibbles ? 4 : 2
            let moved = from <= to ? h &<< UInt32(to - from) : h &>> UInt32(from - to)
            let low: UInt32 = nibbles ? 0x0F0F_0F0F : 0x0303_0303
            q = (q & low) | (moved & ~low)
        }
        return q
    }

    /// 1 + q · 2^-qBits for the q in byte k of each lane of `q`: the bits placed in a float's
    /// mantissa, no conversion needed.
    @inline(__always)
    static func unitPlusQ(_ q: SIMD16<UInt32>, _ k: Int) -> SIMD16<Float> {
        let low = 23 - qBits, at = 8 * k
        let moved = low >= at ? q &<< UInt32(low - at) : q &>> UInt32(at - low)
        let field = UInt32((1 << qBits) - 1) << UInt32(low)
        return unsafeBitCast((moved & field) | 0x3F80_0000, to: SIMD16<Float>.self)
    }

    /// The q in byte k of each lane of `q`, as floats.
    @inline(__always)
    static func quantFloats(_ q: SIMD16<UInt32>, _ k: Int) -> SIMD16<Float> {
        let v = (q &>> UInt32(8 * k)) & UInt32((1 << qBits) - 1)
        var r = SIMD16<Float>()
        for i in 0..<16 { r[i] = Float(Int32(bitPattern: v[i])) }
        return r
    }
}

enum Q4_0Codec: PlanarCodec {
    static var nibbles: Bool { true }
    static var groupBlocks: Int { 1 }
    static var headerFields: Int { 1 }
    static var scaleBytes: Int { 0 }
    static var halves: Bool { false }
    static var offset: Float { 8 }
    @inline(__always)
    static func scales(_ head: UnsafeRawPointer, _ blk: UnsafeRawPointer, _ s: Int, _ g: Int) -> (SIMD16<Float>, SIMD16<Float>) {
        (loadHalf16(head + 32 * g), SIMD16())
    }
}

enum Q5_0Codec: PlanarCodec {
    static var nibbles: Bool { true }
    static var oneBit: Bool { true }
    static var groupBlocks: Int { 1 }
    static var headerFields: Int { 1 }
    static var scaleBytes: Int { 0 }
    static var halves: Bool { false }
    static var offset: Float { 16 }
    @inline(__always)
    static func scales(_ head: UnsafeRawPointer, _ blk: UnsafeRawPointer, _ s: Int, _ g: Int) -> (SIMD16<Float>, SIMD16<Float>) {
        (loadHalf16(head + 32 * g), SIMD16())
    }
}

enum Q5_1Codec: PlanarCodec {
    static var nibbles: Bool { true }
    static var oneBit: Bool { true }
    static var groupBlocks: Int { 1 }
    static var headerFields: Int { 2 }
    static var scaleBytes: Int { 0 }
    static var halves: Bool { false }
    static var hasMin: Bool { true }
    @inline(__always)
    static func scales(_ head: UnsafeRawPointer, _ blk: UnsafeRawPointer, _ s: Int, _ g: Int) -> (SIMD16<Float>, SIMD16<Float>) {
        (loadHalf16(head + 32 * g), loadHalf16(head + 128 + 32 * g))
    }
}

enum Q2_KCodec: PlanarCodec {
    static var nibbles: Bool { false }
    static var twoBits: Bool { true }
    static var headerFields: Int { 2 }
    static var hasMin: Bool { true }
    @inline(__always)
    static func scales(_ head: UnsafeRawPointer, _ blk: UnsafeRawPointer, _ s: Int, _ g: Int) -> (SIMD16<Float>, SIMD16<Float>) {
        let packed = blk.loadUnaligned(fromByteOffset: 64 * s + 16 * g, as: SIMD16<UInt8>.self)
        return (loadHalf16(head + 32 * g) * widenU8(packed & 15), -(loadHalf16(head + 128 + 32 * g) * widenU8(packed &>> 4)))
    }
}

enum Q3_KCodec: PlanarCodec {
    static var nibbles: Bool { false }
    static var twoBits: Bool { true }
    static var oneBit: Bool { true }
    static var headerFields: Int { 1 }
    static var offset: Float { 4 }
    @inline(__always)
    static func scales(_ head: UnsafeRawPointer, _ blk: UnsafeRawPointer, _ s: Int, _ g: Int) -> (SIMD16<Float>, SIMD16<Float>) {
        (loadHalf16(head + 32 * g) * widenI8(blk.loadUnaligned(fromByteOffset: 64 * s + 16 * g, as: SIMD16<Int8>.self)), SIMD16())
    }
}

enum Q4_KCodec: PlanarCodec {
    static var nibbles: Bool { true }
    static var headerFields: Int { 2 }
    static var halves: Bool { false }
    static var hasMin: Bool { true }
    @inline(__always)
    static func scales(_ head: UnsafeRawPointer, _ blk: UnsafeRawPointer, _ s: Int, _ g: Int) -> (SIMD16<Float>, SIMD16<Float>) {
        let sc = widenU8(blk.loadUnaligned(fromByteOffset: 16 * g, as: SIMD16<UInt8>.self))
        let m = widenU8(blk.loadUnaligned(fromByteOffset: 64 + 16 * g, as: SIMD16<UInt8>.self))
        return (loadHalf16(head + 32 * g) * sc, -(loadHalf16(head + 128 + 32 * g) * m))
    }
}

enum Q5_KCodec: PlanarCodec {
    static var nibbles: Bool { true }
    static var oneBit: Bool { true }
    static var headerFields: Int { 2 }
    static var halves: Bool { false }
    static var hasMin: Bool { true }
    @inline(__always)
    static func scales(_ head: UnsafeRawPointer, _ blk: UnsafeRawPointer, _ s: Int, _ g: Int) -> (SIMD16<Float>, SIMD16<Float>) {
        Q4_KCodec.scales(head, blk, s, g)
    }
}

enum Q6_KCodec: PlanarCodec {
    static var nibbles: Bool { true }
    static var twoBits: Bool { true }
    static var headerFields: Int { 1 }
    static var offset: Float { 32 }
    @inline(__always)
    static func scales(_ head: UnsafeRawPointer, _ blk: UnsafeRawPointer, _ s: Int, _ g: Int) -> (SIMD16<Float>, SIMD16<Float>) {
        (loadHalf16(head + 32 * g) * widenI8(blk.loadUnaligned(fromByteOffset: 64 * s + 16 * g, as: SIMD16<Int8>.self)), SIMD16())
    }
}

/// The sum of 16 floats by halving (not a serial chain).
@inline(__always) func treeSum(_ v: SIMD16<Float>) -> Float {
    let a = v.lowHalf + v.highHalf, b = a.lowHalf + a.highHalf, c = b.lowHalf + b.highHalf
    return c[0] + c[1]
}

/// out[0..<64] = the 64 rows of the panel at `base` dotted with x over the 32-column `blocks`.
///
/// Each q is placed in the mantissa of 1.0 (f = 1 + q · 2^-qBits, no conversion instruction),
/// so t = Σ f·x over a sub-block and Σ (q − offset)·x = 2^qBits · (t − (1 + offset · 2^-qBits) · Σx).
func planarDot<C: PlanarCodec>(_: C.Type, _ base: UnsafeRawPointer, blocks: Range<Int>, x: UnsafePointer<Float>,
                               out: UnsafeMutablePointer<Float>) {
    // The row sums live in `out` between sub-blocks, so that only the four partial sums t stay
    // in registers in the column loop (16 ymm registers hold them and the operands on AVX2).
    let o = UnsafeMutableRawPointer(out)
    for g in 0..<4 { store16(SIMD16<Float>(), o + 64 * g) }
    let width = C.halves ? 16 : 32
    let unit = Float(1 << C.qBits)
    let shift = SIMD16<Float>(repeating: 1 + C.offset / unit)
    for b in blocks {
        let head = base + b / C.groupBlocks * C.groupBytes
        let blk = head + 128 * C.headerFields + b % C.groupBlocks * C.blockBytes
        let planes = blk + 64 * C.scaleBytes
        for s in 0..<32 / width {
            var t0 = SIMD16<Float>(), t1 = SIMD16<Float>(), t2 = SIMD16<Float>(), t3 = SIMD16<Float>()
            let xs = x + 32 * b + width * s
            @inline(__always) func column(_ octet: Int, _ i: Int) {
                let q = C.quants(planes, octet, i)
                let xk = SIMD16<Float>(repeating: x[8 * octet + i + 32 * b])
                t0 = t0.addingProduct(C.unitPlusQ(q, 0), xk); t1 = t1.addingProduct(C.unitPlusQ(q, 1), xk)
                t2 = t2.addingProduct(C.unitPlusQ(q, 2), xk); t3 = t3.addingProduct(C.unitPlusQ(q, 3), xk)
            }
            for octet in width * s / 8..<width * (s + 1) / 8 {
                column(octet, 0); column(octet, 1); column(octet, 2); column(octet, 3)
                column(octet, 4); column(octet, 5); column(octet, 6); column(octet, 7)
            }
            var sum = load16(xs)
            if width == 32 { sum += load16(xs + 16) }
            let sx = SIMD16<Float>(repeating: treeSum(sum))
            let bias = shift * sx
            @inline(__always) func accumulate(_ g: Int, _ t: SIMD16<Float>) {
                let (scale, m) = C.scales(head, blk, s, g)
                var a = load16(o + 64 * g)
                a = a.addingProduct(scale * unit, t - bias)
                if C.hasMin { a = a.addingProduct(m, sx) }
                store16(a, o + 64 * g)
            }
            accumulate(0, t0); accumulate(1, t1); accumulate(2, t2); accumulate(3, t3)
        }
    }
}

/// Block b (32 columns) of the panel at `base` as [32][64] floats, each value formed as
/// `decodeRow` forms it (A · (q − offset), then + B), so the two agree bit for bit.
func planarDecodeBlock<C: PlanarCodec>(_: C.Type, _ base: UnsafeRawPointer, block b: Int, into out: UnsafeMutablePointer<Float>) {
    let width = C.halves ? 16 : 32
    let head = base + b / C.groupBlocks * C.groupBytes
    let blk = head + 128 * C.headerFields + b % C.groupBlocks * C.blockBytes
    let planes = blk + 64 * C.scaleBytes
    var dst = UnsafeMutableRawPointer(out)
    for s in 0..<32 / width {
        let (s0, m0) = C.scales(head, blk, s, 0), (s1, m1) = C.scales(head, blk, s, 1)
        let (s2, m2) = C.scales(head, blk, s, 2), (s3, m3) = C.scales(head, blk, s, 3)
        @inline(__always) func column(_ q: SIMD16<UInt32>) {
            var v0 = C.quantFloats(q, 0), v1 = C.quantFloats(q, 1), v2 = C.quantFloats(q, 2), v3 = C.quantFloats(q, 3)
            if C.offset != 0 { v0 -= C.offset; v1 -= C.offset; v2 -= C.offset; v3 -= C.offset }
            v0 = s0 * v0; v1 = s1 * v1; v2 = s2 * v2; v3 = s3 * v3
            if C.hasMin { v0 += m0; v1 += m1; v2 += m2; v3 += m3 }
            store16(v0, dst); store16(v1, dst + 64); store16(v2, dst + 128); store16(v3, dst + 192)
            dst += 256
        }
        for octet in width * s / 8..<width * (s + 1) / 8 {
            column(C.quants(planes, octet, 0)); column(C.quants(planes, octet, 1))
            column(C.quants(planes, octet, 2)); column(C.quants(planes, octet, 3))
            column(C.quants(planes, octet, 4)); column(C.quants(planes, octet, 5))
            column(C.quants(planes, octet, 6)); column(C.quants(planes, octet, 7))
        }
    }
}

extension PanelMatrix {
    func planarPanelDot(_ base: UnsafeRawPointer, x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, blocks: Range<Int>) {
        switch format {
        case .q4_0: planarDot(Q4_0Codec.self, base, blocks: blocks, x: x, out: out)
        case .q5_0: planarDot(Q5_0Codec.self, base, blocks: blocks, x: x, out: out)
        case .q5_1: planarDot(Q5_1Codec.self, base, blocks: blocks, x: x, out: out)
        case .q2_K: planarDot(Q2_KCodec.self, base, blocks: blocks, x: x, out: out)
        case .q3_K: planarDot(Q3_KCodec.self, base, blocks: blocks, x: x, out: out)
        case .q4_K: planarDot(Q4_KCodec.self, base, blocks: blocks, x: x, out: out)
        case .q5_K: planarDot(Q5_KCodec.self, base, blocks: blocks, x: x, out: out)
        case .q6_K: planarDot(Q6_KCodec.self, base, blocks: blocks, x: x, out: out)
        default: preconditionFailure("\(format) is not a bit-plane format")
        }
    }

    func planarBlock(_ base: UnsafeRawPointer, block b: Int, into out: UnsafeMutablePointer<Float>) {
        switch format {
        case .q4_0: planarDecodeBlock(Q4_0Codec.self, base, block: b, into: out)
        case .q5_0: planarDecodeBlock(Q5_0Codec.self, base, block: b, into: out)
        case .q5_1: planarDecodeBlock(Q5_1Codec.self, base, block: b, into: out)
        case .q2_K: planarDecodeBlock(Q2_KCodec.self, base, block: b, into: out)
        case .q3_K: planarDecodeBlock(Q3_KCodec.self, base, block: b, into: out)
        case .q4_K: planarDecodeBlock(Q4_KCodec.self, base, block: b, into: out)
        case .q5_K: planarDecodeBlock(Q5_KCodec.self, base, block: b, into: out)
        case .q6_K: planarDecodeBlock(Q6_KCodec.self, base, block: b, into: out)
        default: preconditionFailure("\(format) is not a bit-plane format")
        }
    }
}
