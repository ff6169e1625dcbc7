/// Encoding to the block formats, used to build test models and to write GGUF files. The
/// encoders are simple round-to-nearest ones that produce valid blocks; they do not reproduce
/// llama.cpp's quantizers (which search for better scales).
public enum Quantize {
    /// Encodes `values` (a multiple of the block size) as `type`.
    public static func encode(_ values: [Float], as type: GGMLType) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(type.byteCount(elements: values.count))
        func putHalf(_ f: Float) {
            let h = Float16(f).bitPattern
            out.append(UInt8(h & 0xFF)); out.append(UInt8(h >> 8))
        }
        switch type {
        case .f32:
            for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
        case .f16:
            for v in values { putHalf(v) }
        case .bf16:
            for v in values {
                let bits = v.bitPattern
                // Round to nearest even; a NaN keeps a payload bit so it stays a NaN.
                let rounded = v.isNaN ? (bits >> 16) | 0x40 : (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16
                out.append(UInt8(rounded & 0xFF)); out.append(UInt8(rounded >> 8))
            }
        case .q8_0:
            for b in stride(from: 0, to: values.count, by: 32) {
                let block = values[b..<b + 32]
                let amax = block.map { abs($0) }.max() ?? 0
                let d = amax / 127
                putHalf(d)
                let dq = Float(Float16(d))
                for v in block { out.append(UInt8(bitPattern: Int8(dq == 0 ? 0 : max(-127, min(127, (v / dq).rounded()))))) }
            }
        case .q4_0:
            for b in stride(from: 0, to: values.count, by: 32) {
                let block = Array(values[b..<b + 32])
                let maxv = block.max(by: { abs($0) < abs($1) }) ?? 0
                let d = maxv / -8
                putHalf(d)
                let dq = Float(Float16(d))
                let q = block.map { dq == 0 ? UInt8(8) : UInt8(max(0, min(15, ($0 / dq).rounded() + 8))) }
                for j in 0..<16 { out.append(q[j] | (q[j + 16] << 4)) }
            }
        case .q4_1:
            for b in stride(from: 0, to: values.count, by: 32) {
                let block = Array(values[b..<b + 32])
                let lo = block.min() ?? 0, hi = block.max() ?? 0
                let d = (hi - lo) / 15
                putHalf(d); putHalf(lo)
                let dq = Float(Float16(d)), mq = Float(Float16(lo))
                let q = block.map { dq == 0 ? UInt8(0) : UInt8(max(0, min(15, (($0 - mq) / dq).rounded()))) }
                for j in 0..<16 { out.append(q[j] | (q[j + 16] << 4)) }
            }
        case .q5_0, .q5_1:
            for b in stride(from: 0, to: values.count, by: 32) {
                out += encodeQ5(Array(values[b..<b + 32]), withMin: type == .q5_1)
            }
        case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K:
            for b in stride(from: 0, to: values.count, by: 256) {
                out += encodeK(Array(values[b..<b + 256]), as: type)
            }
        default:
            preconditionFailure("Quantize.encode does not support \(type.name)")
        }
        return out
    }
}

extension Quantize {
    static func half(_ f: Float) -> [UInt8] {
        let h = Float16(f).bitPattern
        return [UInt8(h & 0xFF), UInt8(h >> 8)]
    }

    /// Rounds v / step to the nearest integer clamped to `range` (0 when the step is 0).
    static func level(_ v: Float, _ step: Float, _ range: ClosedRange<Int>) -> Int {
        guard step != 0, step.isFinite else { return max(range.lowerBound, min(range.upperBound, 0)) }
        let q = (v / step).rounded()
        return q.isFinite ? max(range.lowerBound, min(range.upperBound, Int(q))) : 0
    }

    /// Q5_0 (d, qh, qs; w = d·(q − 16)) or Q5_1 (d, m, qh, qs; w = d·q + m) for one block.
    static func encodeQ5(_ block: [Float], withMin: Bool) -> [UInt8] {
        var out: [UInt8] = []
        var q = [Int](repeating: 0, count: 32)
        if withMin {
            let lo = block.min() ?? 0, hi = block.max() ?? 0
            out += half((hi - lo) / 31) + half(lo)
            let d = Float(Float16((hi - lo) / 31)), m = Float(Float16(lo))
            for j in 0..<32 { q[j] = level(block[j] - m, d, 0...31) }
        } else {
            let maxv = block.max(by: { abs($0) < abs($1) }) ?? 0
            out += half(maxv / -16)
            let d = Float(Float16(maxv / -16))
            for j in 0..<32 { q[j] = level(block[j], d, -16...15) + 16 }
        }
        var qh: UInt32 = 0
        for j in 0..<32 { qh |= UInt32(q[j] >> 4) << UInt32(j) }
        withUnsafeBytes(of: qh.littleEndian) { out += $0 }
        for j in 0..<16 { out.append(UInt8(q[j] & 15) | UInt8(q[j + 16] & 15) << 4) }
        return out
    }

    /// One K super-block. Scales are chosen per sub-block from its range, then quantized
    /// against the super-block's d (and dmin) to the type's scale bits.
    static func encodeK(_ x: [Float], as type: GGMLType) -> [UInt8] {
        let sub = type == .q4_K || type == .q5_K ? 32 : 16
        let n = 256 / sub
        let hasMin = type == .q2_K || type == .q4_K || type == .q5_K
        // Levels of q, and the bits of the scales and mins.
        let qMax: Int = switch type {
        case .q2_K: 3
        case .q3_K: 7
        case .q4_K: 15
        case .q5_K: 31
        default: 63
        }
        let scaleMax = type == .q2_K ? 15 : type == .q6_K ? 127 : 63
        var steps = [Float](repeating: 0, count: n), mins = [Float](repeating: 0, count: n)
        for s in 0..<n {
            let v = x[s * sub..<(s + 1) * sub]
            if hasMin {
                let lo = min(0, v.min() ?? 0), hi = v.max() ?? 0
                steps[s] = (hi - lo) / Float(qMax); mins[s] = -lo
            } else {
                // Symmetric: q in -(qMax+1)/2 ..< (qMax+1)/2.
                steps[s] = (v.map { abs($0) }.max() ?? 0) / Float((qMax + 1) / 2)
            }
        }
        // Q3_K stores scale + 32 in 6 bits; use the non-negative half.
        let scaleLevels = type == .q3_K ? 31 : scaleMax
        let d = (steps.max() ?? 0) / Float(scaleLevels), dmin = (mins.max() ?? 0) / Float(scaleLevels)
        let dq = Float(Float16(d)), dminq = Float(Float16(dmin))
        let sc = steps.map { level($0, dq, 0...scaleLevels) }
        let mn = mins.map { level($0, dminq, 0...scaleLevels) }
        var q = [Int](repeating: 0, count: 256)
        for i in 0..<256 {
            let s = i / sub
            let step = dq * Float(sc[s])
            q[i] = hasMin ? level(x[i] + dminq * Float(mn[s]), step, 0...qMax)
                          : level(x[i], step, -(qMax + 1) / 2...(qMax - 1) / 2) + (qMax + 1) / 2
        }
        return packK(type, q: q, scales: sc, mins: mn, d: half(d), dmin: half(dmin))
    }

    /// Lays out quantized levels (0...qMax, offset included) and scales as `type`'s bytes.
    static func packK(_ type: GGMLType, q: [Int], scales sc: [Int], mins mn: [Int], d: [UInt8], dmin: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: type.typeSize)
        func twoBits(at base: Int, _ i: Int, _ v: Int) {
            out[base + 32 * (i / 128) + i % 32] |= UInt8(v & 3) << UInt8(2 * ((i % 128) / 32))
        }
        func packScaleMinK4() {
            for j in 0..<4 {
                out[4 + j] = UInt8(sc[j] & 63) | UInt8(sc[j + 4] >> 4) << 6
                out[8 + j] = UInt8(mn[j] & 63) | UInt8(mn[j + 4] >> 4) << 6
                out[12 + j] = UInt8(sc[j + 4] & 15) | UInt8(mn[j + 4] & 15) << 4
            }
        }
        switch type {
        case .q2_K:
            for s in 0..<16 { out[s] = UInt8(sc[s]) | UInt8(mn[s]) << 4 }
            for i in 0..<256 { twoBits(at: 16, i, q[i]) }
            out[80] = d[0]; out[81] = d[1]; out[82] = dmin[0]; out[83] = dmin[1]
        case .q3_K:
            for i in 0..<256 {
                twoBits(at: 32, i, q[i])
                if q[i] >= 4 { out[i % 32] |= 1 << UInt8(i / 32) }
            }
            for k in 0..<16 {
                let v = sc[k] + 32
                out[96 + k % 8] |= UInt8(v & 15) << (k < 8 ? 0 : 4)
                out[96 + 8 + k % 4] |= UInt8(v >> 4) << UInt8(2 * (k / 4))
            }
            out[108] = d[0]; out[109] = d[1]
        case .q4_K, .q5_K:
            out[0] = d[0]; out[1] = d[1]; out[2] = dmin[0]; out[3] = dmin[1]
            packScaleMinK4()
            let qs = type == .q4_K ? 16 : 48
            for i in 0..<256 {
                out[qs + 32 * (i / 64) + i % 32] |= UInt8(q[i] & 15) << (i % 64 < 32 ? 0 : 4)
                if type == .q5_K && q[i] >= 16 { out[16 + i % 32] |= 1 << UInt8(i / 32) }
            }
        case .q6_K:
            for i in 0..<256 {
                let h = i / 128, t = (i % 128) / 32, l = i % 32
                out[64 * h + 32 * (t % 2) + l] |= UInt8(q[i] & 15) << (t < 2 ? 0 : 4)
                out[128 + 32 * h + l] |= UInt8(q[i] >> 4) << UInt8(2 * t)
            }
            for s in 0..<16 { out[192 + s] = UInt8(bitPattern: Int8(sc[s])) }
            out[208] = d[0]; out[209] = d[1]
        default:
            preconditionFailure("packK: \(type.name) is not a K type")
        }
        return out
    }
}
