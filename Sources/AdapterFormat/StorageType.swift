/// Element types a tensor can be stored as (safetensors' dtype names). Graft computes in
/// Float32; these convert to and from it.
public enum StorageType: String, CaseIterable, Sendable {
    case f32 = "F32"
    case f16 = "F16"
    case bf16 = "BF16"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .f32: 4
        case .f16, .bf16: 2
        }
    }

    /// Little-endian bytes of `values` in this type. F16 and BF16 round to nearest, ties to
    /// even. Returns nil if a finite value becomes infinite (only possible for F16, > 65504).
    public func encode(_ values: [Float]) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: values.count * byteSize)
        var overflow = false
        out.withUnsafeMutableBytes { raw in
            switch self {
            case .f32:
                for (n, v) in values.enumerated() { raw.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: 4 * n, as: UInt32.self) }
            case .f16:
                for (n, v) in values.enumerated() {
                    let h = Float16(v)
                    if h.isInfinite && v.isFinite { overflow = true }
                    raw.storeBytes(of: h.bitPattern.littleEndian, toByteOffset: 2 * n, as: UInt16.self)
                }
            case .bf16:
                for (n, v) in values.enumerated() {
                    raw.storeBytes(of: bfloat16Bits(v).littleEndian, toByteOffset: 2 * n, as: UInt16.self)
                }
            }
        }
        return overflow ? nil : out
    }

    /// Float32 values of little-endian `bytes` of this type (`bytes.count` must be a multiple of
    /// `byteSize`; callers check sizes first). Widening from F16 and BF16 is exact.
    public func decode(_ bytes: ArraySlice<UInt8>) -> [Float] {
        precondition(bytes.count % byteSize == 0, "byte count is not a whole number of elements")
        let count = bytes.count / byteSize
        return bytes.withUnsafeBytes { raw in
            [Float](unsafeUninitializedCapacity: count) { out, initialized in
                switch self {
                case .f32:
                    for n in 0..<count {
                        out[n] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * n, as: UInt32.self)))
                    }
                case .f16:
                    for n in 0..<count {
                        out[n] = Float(Float16(bitPattern: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * n, as: UInt16.self))))
                    }
                case .bf16:
                    for n in 0..<count {
                        let h = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * n, as: UInt16.self))
                        out[n] = Float(bitPattern: UInt32(h) << 16)
                    }
                }
                initialized = count
            }
        }
    }
}

/// The bfloat16 bits of `v`: the high half of its Float32 bits, rounded to nearest, ties to
/// even (as PyTorch's `.to(torch.bfloat16)` does). NaN stays a quiet NaN of the same sign.
func bfloat16Bits(_ v: Float) -> UInt16 {
    let bits = v.bitPattern
    if v.isNaN { return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040 }
    // Adding 0x7FFF plus the lowest kept bit carries into the kept half exactly when the
    // dropped half is above one half, or equal to it with an odd kept half.
    let rounded = bits &+ 0x7FFF &+ ((bits >> 16) & 1)
    return UInt16(truncatingIfNeeded: rounded >> 16)
}
