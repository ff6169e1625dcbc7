import CZlib
import Foundation
import Hub

/// One member of a zip built by `TestZip`.
struct TestZipMember {
    var name: String
    var data: [UInt8]
    var deflate: Bool
    /// When set, this CRC-32 is recorded instead of the real one.
    var recordedCRC: UInt32?

    init(_ name: String, _ data: [UInt8], deflate: Bool, recordedCRC: UInt32? = nil) {
        self.name = name
        self.data = data
        self.deflate = deflate
        self.recordedCRC = recordedCRC
    }
}

/// Where the pieces of a built zip landed, for tests that damage them.
struct TestZipLayout {
    var localHeaderOffsets: [String: Int] = [:]
    var dataOffsets: [String: Int] = [:]
    var dataLengths: [String: Int] = [:]
    var centralEntryOffsets: [String: Int] = [:]
    var centralDirectoryOffset = 0
    var endRecordOffset = 0
}

/// A minimal zip writer: stored and raw-deflated members, a central directory, optional
/// ZIP64 records (every size and offset then goes through the ZIP64 extra field), and a comment.
struct TestZip {
    var members: [TestZipMember]
    var zip64 = false
    var comment: [UInt8] = []

    func build() -> (bytes: [UInt8], layout: TestZipLayout) {
        var out: [UInt8] = []
        var layout = TestZipLayout()
        var central: [UInt8] = []
        var centralEntries: [(name: String, offsetInCentral: Int)] = []
        for member in members {
            let stored = member.deflate ? rawDeflate(member.data) : member.data
            let crc = member.recordedCRC ?? crc32Of(member.data)
            let nameBytes = Array(member.name.utf8)
            let method: UInt16 = member.deflate ? 8 : 0
            let localOffset = out.count
            layout.localHeaderOffsets[member.name] = localOffset

            var localExtra: [UInt8] = []
            if zip64 {
                localExtra.le16(1); localExtra.le16(16)
                localExtra.le64(UInt64(member.data.count)); localExtra.le64(UInt64(stored.count))
            }
            out.le32(0x0403_4B50); out.le16(zip64 ? 45 : 20); out.le16(0x0800); out.le16(method)
            out.le16(0); out.le16(0x21)
            out.le32(crc)
            out.le32(zip64 ? 0xFFFF_FFFF : UInt32(stored.count))
            out.le32(zip64 ? 0xFFFF_FFFF : UInt32(member.data.count))
            out.le16(UInt16(nameBytes.count)); out.le16(UInt16(localExtra.count))
            out += nameBytes
            out += localExtra
            layout.dataOffsets[member.name] = out.count
            layout.dataLengths[member.name] = stored.count
            out += stored

            var centralExtra: [UInt8] = []
            if zip64 {
                centralExtra.le16(1); centralExtra.le16(24)
                centralExtra.le64(UInt64(member.data.count)); centralExtra.le64(UInt64(stored.count))
                centralExtra.le64(UInt64(localOffset))
            }
            centralEntries.append((member.name, central.count))
            central.le32(0x0201_4B50); central.le16(0x031E); central.le16(zip64 ? 45 : 20)
            central.le16(0x0800); central.le16(method); central.le16(0); central.le16(0x21)
            central.le32(crc)
            central.le32(zip64 ? 0xFFFF_FFFF : UInt32(stored.count))
            central.le32(zip64 ? 0xFFFF_FFFF : UInt32(member.data.count))
            central.le16(UInt16(nameBytes.count)); central.le16(UInt16(centralExtra.count)); central.le16(0)
            central.le16(0); central.le16(0); central.le32(0o100644 << 16)
            central.le32(zip64 ? 0xFFFF_FFFF : UInt32(localOffset))
            central += nameBytes
            central += centralExtra
        }
        let centralOffset = out.count
        layout.centralDirectoryOffset = centralOffset
        for entry in centralEntries { layout.centralEntryOffsets[entry.name] = centralOffset + entry.offsetInCentral }
        out += central

        let count = members.count
        if zip64 {
            let recordOffset = out.count
            out.le32(0x0606_4B50); out.le64(44); out.le16(45); out.le16(45); out.le32(0); out.le32(0)
            out.le64(UInt64(count)); out.le64(UInt64(count))
            out.le64(UInt64(central.count)); out.le64(UInt64(centralOffset))
            out.le32(0x0706_4B50); out.le32(0); out.le64(UInt64(recordOffset)); out.le32(1)
        }
        layout.endRecordOffset = out.count
        out.le32(0x0605_4B50); out.le16(0); out.le16(0)
        out.le16(zip64 ? 0xFFFF : UInt16(count)); out.le16(zip64 ? 0xFFFF : UInt16(count))
        out.le32(zip64 ? 0xFFFF_FFFF : UInt32(central.count))
        out.le32(zip64 ? 0xFFFF_FFFF : UInt32(centralOffset))
        out.le16(UInt16(comment.count))
        out += comment
        return (out, layout)
    }
}

extension [UInt8] {
    mutating func le16(_ value: UInt16) { for i in 0 ..< 2 { append(UInt8(truncatingIfNeeded: value >> (8 * i))) } }
    mutating func le32(_ value: UInt32) { for i in 0 ..< 4 { append(UInt8(truncatingIfNeeded: value >> (8 * i))) } }
    mutating func le64(_ value: UInt64) { for i in 0 ..< 8 { append(UInt8(truncatingIfNeeded: value >> (8 * i))) } }

    /// Overwrites four bytes at `offset` with `value`, little-endian.
    mutating func put32(_ value: UInt32, at offset: Int) {
        for i in 0 ..< 4 { self[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
    }
}

/// The CRC-32 of `bytes`, from zlib.
func crc32Of(_ bytes: [UInt8]) -> UInt32 {
    let value = bytes.withUnsafeBufferPointer { buffer in
        crc32(0, buffer.baseAddress, uInt(buffer.count))
    }
    return UInt32(truncatingIfNeeded: value)
}

/// `data` compressed as a raw deflate stream (no zlib header), as zip stores it.
func rawDeflate(_ data: [UInt8], level: Int32 = 6) -> [UInt8] {
    let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    stream.initialize(to: z_stream())
    defer { stream.deinitialize(count: 1); stream.deallocate() }
    guard deflateInit2_(stream, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY,
                        zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else { return [] }
    defer { deflateEnd(stream) }
    var input = data
    var output = [UInt8](repeating: 0, count: Int(deflateBound(stream, uLong(data.count))) + 64)
    let written: Int = input.withUnsafeMutableBufferPointer { inBuffer in
        output.withUnsafeMutableBufferPointer { outBuffer in
            stream.pointee.next_in = inBuffer.baseAddress
            stream.pointee.avail_in = uInt(inBuffer.count)
            stream.pointee.next_out = outBuffer.baseAddress
            stream.pointee.avail_out = uInt(outBuffer.count)
            guard deflate(stream, Z_FINISH) == Z_STREAM_END else { return -1 }
            return outBuffer.count - Int(stream.pointee.avail_out)
        }
    }
    return written < 0 ? [] : Array(output.prefix(written))
}

/// Deterministic bytes that compress somewhat (text-like runs mixed with noise).
func sampleBytes(count: Int, seed: UInt64 = 0x9E37_79B9_7F4A_7C15) -> [UInt8] {
    var state = seed
    var bytes = [UInt8]()
    bytes.reserveCapacity(count)
    let words = Array("tensor weight lora adapter graft hub model ".utf8)
    while bytes.count < count {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        if state >> 61 == 0 {
            bytes.append(UInt8(truncatingIfNeeded: state >> 33))
        } else {
            let start = Int((state >> 40) % UInt64(words.count))
            bytes.append(words[start])
        }
    }
    return bytes
}

/// Runs `body` with a fresh empty directory that is removed afterwards.
func withTemporaryDirectory<T>(_ body: (URL) throws -> T) throws -> T {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("graft-hub-tests-\(UInt64.random(in: 0 ... UInt64.max))", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: url) }
    return try body(url)
}

/// Writes `bytes` to `directory/name` and returns the file's URL.
func writeFile(_ bytes: [UInt8], named name: String, in directory: URL) throws -> URL {
    let url = directory.appendingPathComponent(name)
    try Data(bytes).write(to: url)
    return url
}

/// Extracts `name` from the zip at `url` into memory.
func extractToMemory(_ url: URL, _ name: String, chunkSize: Int = ZipArchive.defaultChunkSize) throws -> [UInt8] {
    let archive = try ZipArchive(path: url.path)
    var out: [UInt8] = []
    try archive.extract(name, chunkSize: chunkSize) { out.append(contentsOf: $0) }
    return out
}

/// A fetcher that "downloads" a wheel built in memory, counting its calls.
final class FakeFetcher: WheelFetcher {
    let wheel: [UInt8]
    private(set) var calls = 0
    private(set) var directories: [URL] = []

    init(wheel: [UInt8]) { self.wheel = wheel }

    func fetchWheel(package: String, version: String, into directory: URL,
                    progress: (String) -> Void) throws -> URL {
        calls += 1
        directories.append(directory)
        return try writeFile(wheel, named: "\(package)-\(version)-py3-none-any.whl", in: directory)
    }
}
