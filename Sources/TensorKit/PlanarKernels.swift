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

    /// The q of column e (planes at `p`) for rows 0-15, 16-31, 32-47, 48-63. `odd` is e % 2,
    /// passed as a constant by loops that step two columns at a time so that the 1-bit plane's
    /// shift is a constant too.
    @inline(__always)
    static func quants(_ p: UnsafeRawPointer, _ e: Int, odd: Bool) -> (SIMD16<UInt8>, SIMD16<UInt8>, SIMD16<UInt8>, SIMD16<UInt8>) {
        var q0 = SIMD16<UInt8>(), q1 = SIMD16<UInt8>(), q2 = SIMD16<UInt8>(), q3 = SIMD16<UInt8>()
        var at = p
        if nibbles {
            let v0 = at.loadUnaligned(fromByteOffset: 32 * e, as: SIMD16<UInt8>.self)
            let v1 = at.loadUnaligned(fromByteOffset: 32 * e + 16, as: SIMD16<UInt8>.self)
            q0 = v0 & 15; q1 = v1 & 15; q2 = v0 &>> 4; q3 = v1 &>> 4
            at += 1024
        }
        if twoBits {
            let v = at.loadUnaligned(fromByteOffset: 16 * e, as: SIMD16<UInt8>.self)
            let s: UInt8 = nibbles ? 4 : 0
            q0 |= (v & 3) &<< s; q1 |= ((v &>> 2) & 3) &<< s; q2 |= ((v &>> 4) & 3) &<< s; q3 |= (v &>> 6) &<< s
            at += 512
        }
        if oneBit {
            let pair = at.loadUnaligned(fromByteOffset: 16 * (e >> 1), as: SIMD16<UInt8>.self)
            let v = odd ? pair &>> 4 : pair
            let s: UInt8 = nibbles ? 4 : 2
            q0 |= (v & 1) &<< s; q1 |= ((v &>> 1) & 1) &<< s; q2 |= ((v &>> 2) & 1) &<< s; q3 |= ((v &>> 3) & 1) &<< s
        }
        return (q0, q1, q2, q3)
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

/// out[0..<64] = the 64 rows of the panel at `base` (`cols` columns) dotted with x.
func planarDot<C: PlanarCodec>(_: C.Type, _ base: UnsafeRawPointer, cols: Int, x: UnsafePointer<Float>,
                               out: UnsafeMutablePointer<Float>) {
    // The row sums live in `out` between sub-blocks, so that only the four partial sums t stay
    // in registers in the column loop (16 ymm registers hold them and the operands on AVX2).
    let o = UnsafeMutableRawPointer(out)
    for g in 0..<4 { store16(SIMD16<Float>(), o + 64 * g) }
    let width = C.halves ? 16 : 32
    for b in 0..<cols / 32 {
        let head = base + b / C.groupBlocks * C.groupBytes
        let blk = head + 128 * C.headerFields + b % C.groupBlocks * C.blockBytes
        let planes = blk + 64 * C.scaleBytes
        for s in 0..<32 / width {
            // t = Σ q·x over the sub-block; Σ (q − offset)·x = t − offset·Σx.
            var t0 = SIMD16<Float>(), t1 = SIMD16<Float>(), t2 = SIMD16<Float>(), t3 = SIMD16<Float>()
            let xs = x + 32 * b + width * s
            @inline(__always) func column(_ c: Int, odd: Bool) {
                let (q0, q1, q2, q3) = C.quants(planes, width * s + c, odd: odd)
                let xk = SIMD16<Float>(repeating: xs[c])
                t0 = t0.addingProduct(widenU8(q0), xk); t1 = t1.addingProduct(widenU8(q1), xk)
                t2 = t2.addingProduct(widenU8(q2), xk); t3 = t3.addingProduct(widenU8(q3), xk)
            }
            for c in stride(from: 0, to: width, by: 2) {
                column(c, odd: false); column(c + 1, odd: true)
            }
            var sum = load16(xs)
            if width == 32 { sum += load16(xs + 16) }
            let sx = SIMD16<Float>(repeating: sum.sum())
            @inline(__always) func accumulate(_ g: Int, _ t: SIMD16<Float>) {
                let (scale, m) = C.scales(head, blk, s, g)
                var a = load16(o + 64 * g)
                a = a.addingProduct(scale, C.offset != 0 ? t - sx * C.offset : t)
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
        for c in 0..<width {
            let e = width * s + c
            let (q0, q1, q2, q3) = C.quants(planes, e, odd: e & 1 == 1)
            var v0 = widenU8(q0), v1 = widenU8(q1), v2 = widenU8(q2), v3 = widenU8(q3)
            if C.offset != 0 { v0 -= C.offset; v1 -= C.offset; v2 -= C.offset; v3 -= C.offset }
            v0 = s0 * v0; v1 = s1 * v1; v2 = s2 * v2; v3 = s3 * v3
            if C.hasMin { v0 += m0; v1 += m1; v2 += m2; v3 += m3 }
            store16(v0, dst); store16(v1, dst + 64); store16(v2, dst + 128); store16(v3, dst + 192)
            dst += 256
        }
    }
}

extension PanelMatrix {
    func planarPanelDot(_ base: UnsafeRawPointer, x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
        switch format {
        case .q4_0: planarDot(Q4_0Codec.self, base, cols: cols, x: x, out: out)
        case .q5_0: planarDot(Q5_0Codec.self, base, cols: cols, x: x, out: out)
        case .q5_1: planarDot(Q5_1Codec.self, base, cols: cols, x: x, out: out)
        case .q2_K: planarDot(Q2_KCodec.self, base, cols: cols, x: x, out: out)
        case .q3_K: planarDot(Q3_KCodec.self, base, cols: cols, x: x, out: out)
        case .q4_K: planarDot(Q4_KCodec.self, base, cols: cols, x: x, out: out)
        case .q5_K: planarDot(Q5_KCodec.self, base, cols: cols, x: x, out: out)
        case .q6_K: planarDot(Q6_KCodec.self, base, cols: cols, x: x, out: out)
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
