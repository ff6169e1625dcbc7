/// Plain decoding of tensor data to Float32, for every supported type. These are the
/// reference definitions; TensorKit has the fast fused kernels for the hot types.
///
/// Block layouts (32 elements per block):
/// - Q4_0: f16 d, 16 bytes of nibbles; w = d * (q - 8)
/// - Q4_1: f16 d, f16 m, 16 bytes of nibbles; w = d * q + m
/// - Q8_0: f16 d, 32 int8; w = d * q
/// Nibbles: byte j holds element j in its low half and element j + 16 in its high half.
public enum Dequantize {
    /// Decodes `count` elements of type `type` from `src` into `dst`.
    public static func decode(_ type: GGMLType, _ src: UnsafeRawPointer, into dst: UnsafeMutablePointer<Float>,
                              count: Int) throws {
        switch type {
        case .f32:
            for i in 0..<count { dst[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        case .f16:
            for i in 0..<count { dst[i] = halfToFloat(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        case .bf16:
            for i in 0..<count {
                dst[i] = Float(bitPattern: UInt32(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16)
            }
        case .q4_0:
            for b in 0..<count / 32 {
                let p = src + b * 18
                let d = halfToFloat(p.loadUnaligned(as: UInt16.self))
                for j in 0..<16 {
                    let q = p.load(fromByteOffset: 2 + j, as: UInt8.self)
                    dst[b * 32 + j] = d * Float(Int(q & 0x0F) - 8)
                    dst[b * 32 + j + 16] = d * Float(Int(q >> 4) - 8)
                }
            }
        case .q4_1:
            for b in 0..<count / 32 {
                let p = src + b * 20
                let d = halfToFloat(p.loadUnaligned(as: UInt16.self))
                let m = halfToFloat(p.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
                for j in 0..<16 {
                    let q = p.load(fromByteOffset: 4 + j, as: UInt8.self)
                    dst[b * 32 + j] = d * Float(q & 0x0F) + m
                    dst[b * 32 + j + 16] = d * Float(q >> 4) + m
                }
            }
        case .q8_0:
            for b in 0..<count / 32 {
                let p = src + b * 34
                let d = halfToFloat(p.loadUnaligned(as: UInt16.self))
                for j in 0..<32 { dst[b * 32 + j] = d * Float(p.load(fromByteOffset: 2 + j, as: Int8.self)) }
            }
        default:
            throw GGUFError.unsupportedTensorType(type: type.name, tensor: "?")
        }
    }

    /// Decodes a whole tensor to Float32.
    public static func tensor(_ info: GGUFTensorInfo, in file: GGUFFile) throws -> [Float] {
        guard info.type.isSupported else {
            throw GGUFError.unsupportedTensorType(type: info.type.name, tensor: info.name)
        }
        let data = file.data(of: info)
        var out = [Float](repeating: 0, count: info.elementCount)
        try out.withUnsafeMutableBufferPointer { dst in
            if let base = data.baseAddress { try decode(info.type, base, into: dst.baseAddress!, count: info.elementCount) }
        }
        return out
    }

    /// IEEE half to float, written out so it needs no hardware support.
    @inline(__always)
    public static func halfToFloat(_ h: UInt16) -> Float {
        Float(Float16(bitPattern: UInt16(littleEndian: h)))
    }
}

/// Encoding to the block formats, used to build test models and to write GGUF files.
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
        default:
            preconditionFailure("Quantize.encode does not support \(type.name)")
        }
        return out
    }
}
