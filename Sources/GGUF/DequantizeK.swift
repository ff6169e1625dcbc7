/// The K-quant super-blocks (256 elements). Element i's bits, for i in 0..<256:
/// - Q2_K (84 bytes): scales[16] (low nibble scale, high nibble min, one per 16 elements), qs[64],
///   f16 d, f16 dmin. q = (qs[32(i/128) + i%32] >> 2((i%128)/32)) & 3; w = d·sc·q − dmin·m.
/// - Q3_K (110 bytes): hmask[32], qs[64] (as Q2_K), scales[12] (16 six-bit scales), f16 d.
///   q = (2-bit value) − 4 unless bit i/32 of hmask[i%32] is set; w = d·(sc − 32)·q.
/// - Q4_K (144 bytes): f16 d, f16 dmin, scales[12] (8 six-bit scales and mins, one per 32),
///   qs[128]: q = nibble (high when i%64 ≥ 32) of qs[32(i/64) + i%32]; w = d·sc·q − dmin·m.
/// - Q5_K (176 bytes): as Q4_K with qh[32] before qs: q += 16 · bit i/32 of qh[i%32].
/// - Q6_K (210 bytes): ql[128], qh[64], int8 scales[16] (one per 16), f16 d. With h = i/128,
///   t = (i%128)/32, l = i%32: q = nibble (high when t ≥ 2) of ql[64h + 32(t%2) + l]
///   | ((qh[32h + l] >> 2t) & 3) << 4, minus 32; w = d·sc·q.
/// Products are formed as the reference does: (d·sc) first, then times q, then minus (dmin·m).
extension Dequantize {
    /// Q4_K/Q5_K scale and min of 32-element sub-block j (0..<8) from the 12 packed bytes.
    @inline(__always)
    public static func scaleMinK4(_ s: UnsafeRawPointer, _ j: Int) -> (scale: UInt8, min: UInt8) {
        let b = { (k: Int) in s.load(fromByteOffset: k, as: UInt8.self) }
        if j < 4 { return (b(j) & 63, b(j + 4) & 63) }
        return ((b(j + 4) & 0x0F) | (b(j - 4) >> 6) << 4, (b(j + 4) >> 4) | (b(j) >> 6) << 4)
    }

    /// Q3_K six-bit scale k (0..<16) from the 12 packed bytes, before subtracting 32.
    @inline(__always)
    public static func scaleK3(_ s: UnsafeRawPointer, _ k: Int) -> UInt8 {
        let low = s.load(fromByteOffset: k % 8, as: UInt8.self)
        let high = s.load(fromByteOffset: 8 + k % 4, as: UInt8.self)
        return (k < 8 ? low & 0x0F : low >> 4) | ((high >> UInt8(2 * (k / 4))) & 3) << 4
    }

    /// The 2-bit value of element i in a Q2_K/Q3_K `qs`.
    @inline(__always)
    static func twoBit(_ qs: UnsafeRawPointer, _ i: Int) -> UInt8 {
        (qs.load(fromByteOffset: 32 * (i / 128) + i % 32, as: UInt8.self) >> UInt8(2 * ((i % 128) / 32))) & 3
    }

    /// Decodes one super-block of type `type` (a K type) into 256 floats.
    static func decodeK(_ type: GGMLType, _ p: UnsafeRawPointer, into y: UnsafeMutablePointer<Float>) {
        let u8 = { (k: Int) in p.load(fromByteOffset: k, as: UInt8.self) }
        let half = { (k: Int) in halfToFloat(p.loadUnaligned(fromByteOffset: k, as: UInt16.self)) }
        switch type {
        case .q2_K:
            let d = half(80), dmin = half(82)
            for i in 0..<256 {
                let sc = u8(i / 16)
                let dl = d * Float(sc & 0x0F), ml = dmin * Float(sc >> 4)
                y[i] = dl * Float(twoBit(p + 16, i)) - ml
            }
        case .q3_K:
            let d = half(108)
            for i in 0..<256 {
                let dl = d * Float(Int(scaleK3(p + 96, i / 16)) - 32)
                let high = (u8(i % 32) >> UInt8(i / 32)) & 1
                y[i] = dl * Float(Int(twoBit(p + 32, i)) - (high == 0 ? 4 : 0))
            }
        case .q4_K, .q5_K:
            let d = half(0), dmin = half(2)
            let qs = type == .q4_K ? 16 : 48
            for i in 0..<256 {
                let (sc, m) = scaleMinK4(p + 4, i / 32)
                let dl = d * Float(sc), ml = dmin * Float(m)
                let byte = u8(qs + 32 * (i / 64) + i % 32)
                var q = i % 64 < 32 ? byte & 0x0F : byte >> 4
                if type == .q5_K { q |= ((u8(16 + i % 32) >> UInt8(i / 32)) & 1) << 4 }
                y[i] = dl * Float(q) - ml
            }
        case .q6_K:
            let d = half(208)
            for i in 0..<256 {
                let h = i / 128, t = (i % 128) / 32, l = i % 32
                let low = u8(64 * h + 32 * (t % 2) + l)
                let q = (t < 2 ? low & 0x0F : low >> 4) | ((u8(128 + 32 * h + l) >> UInt8(2 * t)) & 3) << 4
                let sc = p.load(fromByteOffset: 192 + i / 16, as: Int8.self)
                y[i] = d * Float(sc) * Float(Int(q) - 32)
            }
        default:
            preconditionFailure("decodeK: \(type.name) is not a K type")
        }
    }
}
