import CZlib
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension ZipArchive {
    /// The default size of the read and write buffers used while extracting (1 MiB).
    public static let defaultChunkSize = 1 << 20

    /// Streams the extracted data of the member `name` to `sink`, one chunk at a time.
    ///
    /// Stored (method 0) and deflated (method 8) members are supported. The member is never
    /// held in memory as a whole: at most two buffers of `chunkSize` bytes are used. The
    /// CRC-32 and the uncompressed size are checked after the last chunk, so a caller that
    /// commits its output only once this returns never keeps bad data.
    /// - Returns: the central directory entry of the member.
    /// - Throws: `ZipError` for archive problems; errors thrown by `sink` propagate unchanged.
    @discardableResult
    public func extract(_ name: String, chunkSize: Int = ZipArchive.defaultChunkSize,
                        to sink: (UnsafeRawBufferPointer) throws -> Void) throws -> ZipEntry {
        let entry = try requireEntry(named: name)
        try extract(entry, chunkSize: chunkSize, to: sink)
        return entry
    }

    /// Streams the extracted data of the member `name` to the open file descriptor `fd`.
    /// - Throws: `ZipError`; a failed write is `ZipError.io` naming the descriptor.
    @discardableResult
    public func extract(_ name: String, toFileDescriptor fd: Int32,
                        chunkSize: Int = ZipArchive.defaultChunkSize) throws -> ZipEntry {
        try extract(name, chunkSize: chunkSize) { chunk in
            let code = writeAll(fd, chunk)
            if code != 0 { throw ZipError.io(path: "file descriptor \(fd)", message: errnoMessage(code)) }
        }
    }

    /// Streams the extracted data of `entry` (one of `entries`) to `sink`; see `extract(_:chunkSize:to:)`.
    public func extract(_ entry: ZipEntry, chunkSize: Int = ZipArchive.defaultChunkSize,
                        to sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        let chunk = min(max(chunkSize, 1), 1 << 30)
        let dataStart = try locateData(of: entry)
        var checker = OutputChecker(entry: entry)
        switch entry.method {
        case 0:
            try copyStored(entry, from: dataStart, chunk: chunk, checker: &checker, sink: sink)
        case 8:
            try inflateDeflated(entry, from: dataStart, chunk: chunk, checker: &checker, sink: sink)
        default:
            throw ZipError.unsupported(member: entry.name, reason: "compression method \(entry.method) (only stored and deflate are read)")
        }
        try checker.finish()
    }

    /// Reads and checks the local header of `entry`; returns the absolute offset of its data.
    private func locateData(of entry: ZipEntry) throws -> UInt64 {
        guard entry.flags & 1 == 0 else {
            throw ZipError.unsupported(member: entry.name, reason: "the member is encrypted")
        }
        let offset = entry.localHeaderOffset
        let header = try file.readExactly(count: 30, at: offset, what: "local header of \(entry.name)")
        var cursor = ByteCursor(header, baseOffset: offset, context: "local header of \(entry.name)")
        guard try cursor.u32() == Self.localHeaderSignature else {
            throw ZipError.corruptArchive(
                reason: "no local header for \(entry.name) at the offset its central directory entry gives", offset: offset)
        }
        try cursor.skip(2 + 2)  // version needed, flags
        let method = try cursor.u16()
        try cursor.skip(2 + 2 + 4 + 4 + 4)  // time, date, CRC and sizes (the central directory is authoritative)
        let nameLength = UInt64(try cursor.u16())
        let extraLength = UInt64(try cursor.u16())
        guard method == entry.method else {
            throw ZipError.corruptArchive(
                reason: "the local header of \(entry.name) says method \(method), the central directory says \(entry.method)",
                offset: offset)
        }
        let nameBytes = try file.readExactly(count: Int(nameLength), at: offset + 30, what: "local name of \(entry.name)")
        guard String(decoding: nameBytes, as: UTF8.self) == entry.name else {
            throw ZipError.corruptArchive(
                reason: "the local header at this offset names another member than \(entry.name)", offset: offset)
        }
        let dataStart = offset + 30 + nameLength + extraLength
        guard dataStart <= centralDirectoryOffset, entry.compressedSize <= centralDirectoryOffset - dataStart else {
            throw ZipError.corruptArchive(
                reason: "the data of \(entry.name) (\(entry.compressedSize) bytes from \(dataStart)) runs past the central directory at \(centralDirectoryOffset)",
                offset: dataStart)
        }
        return dataStart
    }

    private func copyStored(_ entry: ZipEntry, from dataStart: UInt64, chunk: Int,
                            checker: inout OutputChecker, sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard entry.compressedSize == entry.uncompressedSize else {
            throw ZipError.corruptArchive(
                reason: "stored member \(entry.name) records \(entry.compressedSize) stored bytes but \(entry.uncompressedSize) extracted bytes",
                offset: entry.localHeaderOffset)
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)
        defer { buffer.deallocate() }
        var copied: UInt64 = 0
        while copied < entry.compressedSize {
            let count = Int(min(UInt64(chunk), entry.compressedSize - copied))
            let slice = UnsafeMutableRawBufferPointer(rebasing: buffer[0 ..< count])
            try file.readExactly(into: slice, at: dataStart + copied, what: "data of \(entry.name)")
            copied += UInt64(count)
            try checker.accept(UnsafeRawBufferPointer(slice))
            try sink(UnsafeRawBufferPointer(slice))
        }
    }

    private func inflateDeflated(_ entry: ZipEntry, from dataStart: UInt64, chunk: Int,
                                 checker: inout OutputChecker, sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        // zlib keeps a pointer back to the stream, so it must live at a fixed address.
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        defer { stream.deinitialize(count: 1); stream.deallocate() }
        let initStatus = inflateInit2_(stream, -15, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard initStatus == Z_OK else {
            throw ZipError.unsupported(member: entry.name, reason: "zlib could not start inflating (status \(initStatus))")
        }
        defer { inflateEnd(stream) }

        let input = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)
        let output = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)
        defer { input.deallocate(); output.deallocate() }
        guard let inputBase = input.baseAddress, let outputBase = output.baseAddress else { return }

        var fed: UInt64 = 0
        var finished = false
        while !finished {
            if stream.pointee.avail_in == 0 {
                guard fed < entry.compressedSize else {
                    throw ZipError.corruptArchive(
                        reason: "the deflate data of \(entry.name) ends (\(entry.compressedSize) bytes) before its stream does",
                        offset: dataStart + fed)
                }
                let count = Int(min(UInt64(chunk), entry.compressedSize - fed))
                try file.readExactly(into: UnsafeMutableRawBufferPointer(rebasing: input[0 ..< count]),
                                     at: dataStart + fed, what: "compressed data of \(entry.name)")
                fed += UInt64(count)
                stream.pointee.next_in = inputBase.assumingMemoryBound(to: Bytef.self)
                stream.pointee.avail_in = uInt(count)
            }
            stream.pointee.next_out = outputBase.assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_out = uInt(chunk)
            let status = inflate(stream, Z_NO_FLUSH)
            switch status {
            case Z_OK:
                break
            case Z_STREAM_END:
                finished = true
            case Z_BUF_ERROR where stream.pointee.avail_in == 0:
                break  // needs more input: read on the next turn
            default:
                let detail = stream.pointee.msg.map { String(cString: $0) } ?? "zlib status \(status)"
                throw ZipError.corruptArchive(
                    reason: "the deflate data of \(entry.name) is invalid: \(detail)",
                    offset: dataStart + UInt64(stream.pointee.total_in))
            }
            let produced = chunk - Int(stream.pointee.avail_out)
            if produced > 0 {
                let piece = UnsafeRawBufferPointer(rebasing: output[0 ..< produced])
                try checker.accept(piece)
                try sink(piece)
            }
        }
        let unused = UInt64(stream.pointee.avail_in) + (entry.compressedSize - fed)
        guard unused == 0 else {
            throw ZipError.corruptArchive(
                reason: "the deflate stream of \(entry.name) ends \(unused) bytes before the end of its recorded data",
                offset: dataStart + UInt64(stream.pointee.total_in))
        }
    }
}

/// Counts and checksums extracted bytes, stopping as soon as more come out than recorded.
private struct OutputChecker {
    let entry: ZipEntry
    var count: UInt64 = 0
    var crc: uLong = crc32(0, nil, 0)

    init(entry: ZipEntry) { self.entry = entry }

    mutating func accept(_ bytes: UnsafeRawBufferPointer) throws {
        count += UInt64(bytes.count)
        guard count <= entry.uncompressedSize else {
            throw ZipError.sizeMismatch(member: entry.name, expected: entry.uncompressedSize, actual: count)
        }
        if let base = bytes.baseAddress {
            crc = crc32(crc, base.assumingMemoryBound(to: Bytef.self), uInt(bytes.count))
        }
    }

    func finish() throws {
        guard count == entry.uncompressedSize else {
            throw ZipError.sizeMismatch(member: entry.name, expected: entry.uncompressedSize, actual: count)
        }
        let actual = UInt32(truncatingIfNeeded: crc)
        guard actual == entry.crc32 else {
            throw ZipError.crcMismatch(member: entry.name, expected: entry.crc32, actual: actual)
        }
    }
}
