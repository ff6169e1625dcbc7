/// Bounds-checked little-endian reads from a raw buffer. Every read either succeeds or throws
/// `GGUFError.truncated` with the offset; nothing here can trap on bad input.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    var offset: Int = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var remaining: Int { bytes.count - offset }

    mutating func need(_ n: Int) throws {
        guard n >= 0, n <= remaining else {
            throw GGUFError.truncated(offset: offset, needed: n, available: max(0, remaining))
        }
    }

    mutating func read<T: FixedWidthInteger>(_: T.Type) throws -> T {
        try need(MemoryLayout<T>.size)
        let v = bytes.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += MemoryLayout<T>.size
        return T(littleEndian: v)
    }

    mutating func readFloat() throws -> Float { Float(bitPattern: try read(UInt32.self)) }
    mutating func readDouble() throws -> Double { Double(bitPattern: try read(UInt64.self)) }

    mutating func readString() throws -> String {
        let start = offset
        let length = try read(UInt64.self)
        guard length <= UInt64(remaining) else {
            throw GGUFError.truncated(offset: offset, needed: Int(clamping: length), available: remaining)
        }
        let n = Int(length)
        let slice = UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + n])
        guard let s = String(validating: slice.bindMemory(to: UInt8.self), as: UTF8.self) else {
            throw GGUFError.invalidString(offset: start)
        }
        offset += n
        return s
    }
}
