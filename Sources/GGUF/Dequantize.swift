/// Plain decoding of tensor data to Float32, for every supported type. These are the
/// reference definitions; TensorKit has the fast fused kernels. Each value is computed with
/// the same float operations in the same order as ggml's `dequantize_row_*`, so results are
/// bit-identical to the reference implementation.
///
/// Block layouts (32 elements per block; the K types are in DequantizeK.swift):
/// - Q4_0: f16 d, 16 bytes of nibbles; w = d * (q - 8)
/// - Q4_1: f16 d, f16 m, 16 bytes of nibbles; w = d * q + m
/// - Q5_0: f16 d, u32 qh, 16 bytes of nibbles; q = nibble | (bit j of qh) << 4; w = d * (q - 16)
/// - Q5_1: f16 d, f16 m, u32 qh, 16 bytes of nibbles; w = d * q + m
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
        case .q5_0:
            for b in 0..<count / 32 {
                let p = src + b * 22
                let d = halfToFloat(p.loadUnaligned(as: UInt16.self))
                let qh = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
                for j in 0..<32 {
                    dst[b * 32 + j] = d * Float(Int(fiveBit(p + 6, qh, j)) - 16)
                }
            }
        case .q5_1:
            for b in 0..<count / 32 {
                let p = src + b * 24
                let d = halfToFloat(p.loadUnaligned(as: UInt16.self))
                let m = halfToFloat(p.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
                let qh = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
                for j in 0..<32 { dst[b * 32 + j] = d * Float(fiveBit(p + 8, qh, j)) + m }
            }
        case .q8_0:
            for b in 0..<count / 32 {
                let p = src + b * 34
                let d = halfToFloat(p.loadUnaligned(as: UInt16.self))
                for j in 0..<32 { dst[b * 32 + j] = d * Float(p.load(fromByteOffset: 2 + j, as: Int8.self)) }
            }
        case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K:
            for b in 0..<count / 256 {
                decodeK(type, src + b * type.typeSize, into: dst + b * 256)
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

    /// Element j (0..<32) of a Q5 block: its nibble from `qs` and its fifth bit from `qh`.
    @inline(__always)
    static func fiveBit(_ qs: UnsafeRawPointer, _ qh: UInt32, _ j: Int) -> UInt8 {
        let byte = qs.load(fromByteOffset: j & 15, as: UInt8.self)
        return (j < 16 ? byte & 0x0F : byte >> 4) | UInt8((qh >> UInt32(j)) & 1) << 4
    }

    /// IEEE half to float, written out so it needs no hardware support.
    @inline(__always)
    public static func halfToFloat(_ h: UInt16) -> Float {
        Float(Float16(bitPattern: UInt16(littleEndian: h)))
    }
}
