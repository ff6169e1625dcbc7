#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One member of a zip archive, as recorded in its central directory.
public struct ZipEntry: Equatable, Sendable {
    /// The member's path inside the archive (e.g. `pkg/model.gguf`).
    public let name: String
    /// The compression method: 0 = stored, 8 = deflate.
    public let method: UInt16
    /// The general purpose flag bits (bit 0 = encrypted).
    public let flags: UInt16
    /// The CRC-32 of the uncompressed data.
    public let crc32: UInt32
    /// The length of the member's data as stored in the archive.
    public let compressedSize: UInt64
    /// The length of the member's data once extracted.
    public let uncompressedSize: UInt64
    /// The absolute file offset of the member's local header.
    public let localHeaderOffset: UInt64

    /// True for directory entries (names ending in `/`).
    public var isDirectory: Bool { name.hasSuffix("/") }
}

/// A read-only view of a zip archive on disk (e.g. a Python wheel).
///
/// Opening it reads only the End Of Central Directory record (ZIP64 aware) and the
/// central directory; member data is streamed on demand by `extract`. Malformed input
/// throws `ZipError` and never traps.
public final class ZipArchive {
    /// The path the archive was opened from.
    public let path: String
    /// The members, in central directory order.
    public let entries: [ZipEntry]
    /// The absolute offset where the central directory starts (member data must end before it).
    public let centralDirectoryOffset: UInt64

    let file: ReadOnlyFile

    static let eocdSignature: UInt32 = 0x0605_4B50
    static let zip64LocatorSignature: UInt32 = 0x0706_4B50
    static let zip64EOCDSignature: UInt32 = 0x0606_4B50
    static let centralHeaderSignature: UInt32 = 0x0201_4B50
    static let localHeaderSignature: UInt32 = 0x0403_4B50
    static let eocdLength = 22
    static let maxCommentLength = 0xFFFF
    /// A central directory larger than this is refused rather than read into memory.
    static let maxCentralDirectoryLength: UInt64 = 256 << 20

    /// Opens the archive at `path` and reads its central directory.
    public convenience init(path: String) throws {
        try self.init(file: ReadOnlyFile(path: path))
    }

    init(file: ReadOnlyFile) throws {
        self.file = file
        self.path = file.path
        let directory = try Self.locateCentralDirectory(in: file)
        self.centralDirectoryOffset = directory.offset
        self.entries = try Self.readCentralDirectory(directory, in: file)
    }

    /// The member called `name`, if there is one.
    public func entry(named name: String) -> ZipEntry? {
        entries.first { $0.name == name }
    }

    /// The member called `name`, or `ZipError.memberNotFound` listing the file members.
    public func requireEntry(named name: String) throws -> ZipEntry {
        if let entry = entry(named: name) { return entry }
        throw ZipError.memberNotFound(name: name, available: entries.filter { !$0.isDirectory }.map(\.name))
    }

    // MARK: - End of central directory

    struct CentralDirectoryLocation {
        var offset: UInt64
        var length: UInt64
        var count: UInt64
    }

    private static func locateCentralDirectory(in file: ReadOnlyFile) throws -> CentralDirectoryLocation {
        let tailLength = Int(min(file.size, UInt64(eocdLength + maxCommentLength)))
        guard tailLength >= eocdLength else {
            throw ZipError.missingEndOfCentralDirectory(path: file.path, scanned: tailLength)
        }
        let tailStart = file.size - UInt64(tailLength)
        let tail = try file.readExactly(count: tailLength, at: tailStart, what: "end of the archive")
        let scanner = ByteCursor(tail, baseOffset: tailStart, context: "end of central directory")

        // Scan backwards for a signature whose comment length fits inside the file.
        var found: Int?
        var index = tailLength - eocdLength
        while index >= 0 {
            if scanner.peekU32(at: index) == eocdSignature {
                let commentLength = Int(tail[index + 20]) | Int(tail[index + 21]) << 8
                if index + eocdLength + commentLength <= tailLength {
                    found = index
                    break
                }
            }
            index -= 1
        }
        guard let eocdIndex = found else {
            throw ZipError.missingEndOfCentralDirectory(path: file.path, scanned: tailLength)
        }
        let eocdOffset = tailStart + UInt64(eocdIndex)
        var eocd = ByteCursor(tail, baseOffset: tailStart, context: "end of central directory record", position: eocdIndex + 4)
        let diskNumber = try eocd.u16()
        let directoryDisk = try eocd.u16()
        let entriesOnDisk = try eocd.u16()
        let totalEntries = try eocd.u16()
        let directoryLength = try eocd.u32()
        let directoryOffset = try eocd.u32()

        var location = CentralDirectoryLocation(
            offset: UInt64(directoryOffset), length: UInt64(directoryLength), count: UInt64(totalEntries))
        var directoryEnd = eocdOffset

        let locatorIndex = eocdIndex - 20
        let hasLocator = locatorIndex >= 0 && scanner.peekU32(at: locatorIndex) == zip64LocatorSignature
        let needsZip64 = totalEntries == 0xFFFF || directoryLength == 0xFFFF_FFFF || directoryOffset == 0xFFFF_FFFF
        if hasLocator {
            var locator = ByteCursor(tail, baseOffset: tailStart, context: "ZIP64 end of central directory locator",
                                     position: locatorIndex + 4)
            _ = try locator.u32()  // disk holding the ZIP64 record
            let recordOffset = try locator.u64()
            let disks = try locator.u32()
            guard disks <= 1 else {
                throw ZipError.unsupported(member: nil, reason: "the archive spans \(disks) disks")
            }
            do {
                location = try readZip64Record(at: recordOffset, in: file, limit: tailStart + UInt64(locatorIndex))
                directoryEnd = recordOffset
            } catch let error as ZipError where !needsZip64 {
                // The 32-bit record is complete, so a signature-like accident before it is not fatal.
                if case .unsupported = error { throw error }
            }
        } else if needsZip64 {
            throw ZipError.corruptArchive(
                reason: "the end of central directory record holds ZIP64 markers but no ZIP64 locator precedes it",
                offset: eocdOffset)
        } else if diskNumber != 0 || directoryDisk != 0 || entriesOnDisk != totalEntries {
            throw ZipError.unsupported(member: nil, reason: "multi-disk (spanned) archives are not supported")
        }

        guard location.offset <= directoryEnd, location.length <= directoryEnd - location.offset else {
            throw ZipError.corruptArchive(
                reason: "the central directory (offset \(location.offset), \(location.length) bytes) overlaps its end record at \(directoryEnd)",
                offset: eocdOffset)
        }
        guard location.length <= maxCentralDirectoryLength else {
            throw ZipError.unsupported(member: nil, reason: "the central directory is \(location.length) bytes long")
        }
        guard location.count <= location.length / 46 else {
            throw ZipError.corruptArchive(
                reason: "\(location.count) entries cannot fit in a central directory of \(location.length) bytes",
                offset: eocdOffset)
        }
        return location
    }

    private static func readZip64Record(at offset: UInt64, in file: ReadOnlyFile, limit: UInt64) throws -> CentralDirectoryLocation {
        guard offset < limit else {
            throw ZipError.corruptArchive(
                reason: "the ZIP64 locator points at \(offset), past its own position \(limit)", offset: limit)
        }
        let bytes = try file.readExactly(count: 56, at: offset, what: "ZIP64 end of central directory record")
        var record = ByteCursor(bytes, baseOffset: offset, context: "ZIP64 end of central directory record")
        guard try record.u32() == zip64EOCDSignature else {
            throw ZipError.corruptArchive(reason: "no ZIP64 end of central directory record where the locator points", offset: offset)
        }
        try record.skip(8 + 2 + 2)  // record size, version made by, version needed
        let disk = try record.u32()
        let directoryDisk = try record.u32()
        let entriesOnDisk = try record.u64()
        let totalEntries = try record.u64()
        let length = try record.u64()
        let directoryOffset = try record.u64()
        guard disk == 0, directoryDisk == 0, entriesOnDisk == totalEntries else {
            throw ZipError.unsupported(member: nil, reason: "multi-disk (spanned) archives are not supported")
        }
        return CentralDirectoryLocation(offset: directoryOffset, length: length, count: totalEntries)
    }

    // MARK: - Central directory

    private static func readCentralDirectory(_ location: CentralDirectoryLocation, in file: ReadOnlyFile) throws -> [ZipEntry] {
        let bytes = try file.readExactly(count: Int(location.length), at: location.offset, what: "central directory")
        var cursor = ByteCursor(bytes, baseOffset: location.offset, context: "central directory")
        var entries: [ZipEntry] = []
        entries.reserveCapacity(Int(location.count))
        for index in 0 ..< location.count {
            let start = cursor.absoluteOffset
            guard try cursor.u32() == centralHeaderSignature else {
                throw ZipError.corruptArchive(
                    reason: "central directory entry \(index) of \(location.count) has a bad signature", offset: start)
            }
            try cursor.skip(2 + 2)  // version made by, version needed
            let flags = try cursor.u16()
            let method = try cursor.u16()
            try cursor.skip(2 + 2)  // modification time and date
            let crc = try cursor.u32()
            let compressed32 = try cursor.u32()
            let uncompressed32 = try cursor.u32()
            let nameLength = Int(try cursor.u16())
            let extraLength = Int(try cursor.u16())
            let commentLength = Int(try cursor.u16())
            try cursor.skip(2 + 2 + 4)  // start disk, internal and external attributes
            let localOffset32 = try cursor.u32()
            let name = String(decoding: try cursor.take(nameLength), as: UTF8.self)
            let extra = Array(try cursor.take(extraLength))
            try cursor.skip(commentLength)

            var sizes = (compressed: UInt64(compressed32), uncompressed: UInt64(uncompressed32), offset: UInt64(localOffset32))
            if compressed32 == 0xFFFF_FFFF || uncompressed32 == 0xFFFF_FFFF || localOffset32 == 0xFFFF_FFFF {
                sizes = try applyZip64Extra(extra, to: sizes, member: name, entryOffset: start,
                                            needUncompressed: uncompressed32 == 0xFFFF_FFFF,
                                            needCompressed: compressed32 == 0xFFFF_FFFF,
                                            needOffset: localOffset32 == 0xFFFF_FFFF)
            }
            guard sizes.offset < location.offset else {
                throw ZipError.corruptArchive(
                    reason: "member \(name) claims a local header at \(sizes.offset), inside or past the central directory at \(location.offset)",
                    offset: start)
            }
            entries.append(ZipEntry(name: name, method: method, flags: flags, crc32: crc,
                                    compressedSize: sizes.compressed, uncompressedSize: sizes.uncompressed,
                                    localHeaderOffset: sizes.offset))
        }
        return entries
    }

    /// Replaces the 32-bit placeholders with the values of the ZIP64 extended information
    /// extra field (header id 1), which lists only the fields that overflowed, in a fixed order.
    private static func applyZip64Extra(
        _ extra: [UInt8], to sizes: (compressed: UInt64, uncompressed: UInt64, offset: UInt64),
        member: String, entryOffset: UInt64,
        needUncompressed: Bool, needCompressed: Bool, needOffset: Bool
    ) throws -> (compressed: UInt64, uncompressed: UInt64, offset: UInt64) {
        var result = sizes
        var fields = ByteCursor(extra, baseOffset: entryOffset, context: "extra fields of \(member)")
        while fields.remaining >= 4 {
            let headerID = try fields.u16()
            let length = Int(try fields.u16())
            let body = Array(try fields.take(length))
            guard headerID == 0x0001 else { continue }
            var zip64 = ByteCursor(body, baseOffset: entryOffset, context: "ZIP64 extra field of \(member)")
            if needUncompressed { result.uncompressed = try zip64.u64() }
            if needCompressed { result.compressed = try zip64.u64() }
            if needOffset { result.offset = try zip64.u64() }
            return result
        }
        throw ZipError.corruptArchive(
            reason: "member \(member) has 32-bit overflow markers but no ZIP64 extra field", offset: entryOffset)
    }
}
