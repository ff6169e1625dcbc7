#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file opened read-only, read with `pread` so that no shared file position is involved.
/// Every read is bounds-checked against the size the file had when it was opened.
final class ReadOnlyFile {
    let path: String
    let descriptor: Int32
    let size: UInt64

    init(path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ZipError.io(path: path, message: errnoMessage()) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let message = errnoMessage()
            close(fd)
            throw ZipError.io(path: path, message: message)
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw ZipError.io(path: path, message: "not a regular file")
        }
        self.path = path
        self.descriptor = fd
        self.size = UInt64(max(0, Int64(info.st_size)))
    }

    deinit { close(descriptor) }

    /// True when `length` bytes starting at `offset` lie inside the file.
    func contains(offset: UInt64, length: UInt64) -> Bool {
        offset <= size && length <= size - offset
    }

    /// Fills `buffer` from `offset`, failing unless the whole range is inside the file.
    /// `what` names the structure being read, for the error message.
    func readExactly(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64, what: String) throws {
        guard contains(offset: offset, length: UInt64(buffer.count)) else {
            throw ZipError.corruptArchive(
                reason: "\(what) needs \(buffer.count) bytes at offset \(offset), but the file is only \(size) bytes long",
                offset: offset)
        }
        var done = 0
        while done < buffer.count {
            guard let base = buffer.baseAddress else { return }
            let got = pread(descriptor, base + done, buffer.count - done, off_t(offset + UInt64(done)))
            if got < 0 {
                if errno == EINTR { continue }
                throw ZipError.io(path: path, message: errnoMessage())
            }
            if got == 0 {
                throw ZipError.corruptArchive(
                    reason: "\(what): the file ended after \(done) of \(buffer.count) bytes (was it truncated while being read?)",
                    offset: offset + UInt64(done))
            }
            done += got
        }
    }

    /// Reads `count` bytes at `offset` into a new array (for small structures only).
    func readExactly(count: Int, at offset: UInt64, what: String) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { try readExactly(into: $0, at: offset, what: what) }
        return bytes
    }
}

/// A little-endian reader over bytes taken from a file at `baseOffset`; reading past the
/// end throws `ZipError.corruptArchive` naming the structure and the absolute offset.
struct ByteCursor {
    private let bytes: [UInt8]
    private(set) var position: Int
    let baseOffset: UInt64
    let context: String

    init(_ bytes: [UInt8], baseOffset: UInt64, context: String, position: Int = 0) {
        self.bytes = bytes
        self.baseOffset = baseOffset
        self.context = context
        self.position = position
    }

    var remaining: Int { bytes.count - position }
    var absoluteOffset: UInt64 { baseOffset + UInt64(position) }

    private mutating func require(_ count: Int) throws {
        guard count >= 0, count <= remaining else {
            throw ZipError.corruptArchive(
                reason: "\(context) is cut short: \(count) more bytes needed, \(remaining) left",
                offset: absoluteOffset)
        }
    }

    mutating func skip(_ count: Int) throws {
        try require(count)
        position += count
    }

    mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
        try require(count)
        defer { position += count }
        return bytes[position ..< position + count]
    }

    mutating func u16() throws -> UInt16 { UInt16(truncatingIfNeeded: try little(2)) }
    mutating func u32() throws -> UInt32 { UInt32(truncatingIfNeeded: try little(4)) }
    mutating func u64() throws -> UInt64 { try little(8) }

    private mutating func little(_ width: Int) throws -> UInt64 {
        try require(width)
        var value: UInt64 = 0
        for index in 0 ..< width {
            value |= UInt64(bytes[position + index]) << (8 * UInt64(index))
        }
        position += width
        return value
    }

    /// Reads a 32-bit little-endian value at an arbitrary index without moving.
    func peekU32(at index: Int) -> UInt32? {
        guard index >= 0, index <= bytes.count - 4 else { return nil }
        return UInt32(bytes[index]) | UInt32(bytes[index + 1]) << 8
            | UInt32(bytes[index + 2]) << 16 | UInt32(bytes[index + 3]) << 24
    }
}

/// Writes all of `buffer` to `fd`, retrying on EINTR and short writes.
/// - Returns: 0 on success, otherwise the `errno` of the failed write.
func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) -> Int32 {
    guard var cursor = buffer.baseAddress else { return 0 }
    var left = buffer.count
    while left > 0 {
        let wrote = write(fd, cursor, left)
        if wrote < 0 {
            if errno == EINTR { continue }
            return errno
        }
        cursor += wrote
        left -= wrote
    }
    return 0
}
