import GGUF
import TestSupport

/// Visible to every file of this target.
typealias SeededRandom = TestSupport.SeededRandom

/// Hand-assembled GGUF bytes, for headers the writer would never produce.
struct RawGGUF {
    var bytes: [UInt8] = []

    /// Magic, version and the two counts.
    init(version: UInt32 = 3, tensorCount: UInt64, metadataCount: UInt64, magic: UInt32 = 0x4655_4747) {
        u32(magic); u32(version); u64(tensorCount); u64(metadataCount)
    }

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func string(_ s: String) { u64(UInt64(s.utf8.count)); bytes.append(contentsOf: s.utf8) }

    /// A metadata entry whose value bytes are given raw.
    mutating func entry(_ key: String, type: UInt32, value: [UInt8]) {
        string(key); u32(type); bytes.append(contentsOf: value)
    }

    mutating func tensorInfo(_ name: String, dims: [UInt64], type: UInt32, offset: UInt64) {
        string(name); u32(UInt32(dims.count))
        for d in dims { u64(d) }
        u32(type); u64(offset)
    }

    /// Zero padding up to a multiple of `alignment`, then `count` data bytes.
    mutating func data(count: Int, alignment: Int = 32, fill: UInt8 = 0) {
        while bytes.count % alignment != 0 { bytes.append(0) }
        bytes.append(contentsOf: [UInt8](repeating: fill, count: count))
    }
}

enum Sample {
    /// A small valid file with two metadata entries and three tensors of different types.
    static func file() -> [UInt8] {
        var w = GGUFWriter()
        w.set("general.architecture", .string("llama"))
        w.set("llama.context_length", .uint32(64))
        w.addTensor("a", dimensions: [32, 2], type: .q8_0, values: (0..<64).map { Float($0) / 8 - 4 })
        w.addTensor("b", dimensions: [5], type: .f32, values: [1, -2, 3, -4, 5])
        w.addTensor("c", dimensions: [32], type: .q4_1, values: (0..<32).map { Float($0) / 4 })
        return w.serialize()
    }

    /// Little-endian bytes of a fixed-width integer.
    static func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

    /// The f16 bit pattern of `f` as two little-endian bytes.
    static func half(_ f: Float) -> [UInt8] { le(Float16(f).bitPattern) }
}

/// The GGUFError `body` throws, or nil.
func ggufError(_ body: () throws -> Void) -> GGUFError? {
    do { try body() } catch let e as GGUFError { return e } catch { return nil }
    return nil
}
