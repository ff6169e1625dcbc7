/// The header shared by safetensors and `.graft` files.
///
/// File layout (all integers little-endian):
/// 1. `N`: u64, the byte length of the header.
/// 2. `N` bytes of UTF-8 JSON, padded with spaces: an object mapping each tensor name to
///    `{"dtype": "F32"|"F16"|"BF16", "shape": [d0, d1, ...], "data_offsets": [begin, end]}`, plus
///    an optional `"__metadata__"` object of string values.
/// 3. The data section. `data_offsets` count from its first byte; tensors cover it exactly,
///    without holes or overlaps.
///
/// A `.graft` entry may add `"compression": "zlib"`, `"shuffle": "byte"`, `"raw_size"` (the
/// uncompressed byte count) and `"crc32"` (of the uncompressed, unshuffled bytes); its
/// `data_offsets` then delimit the stored blob.
struct TensorEntry {
    var name: String
    var dtype: StorageType
    var shape: [Int]
    /// Offsets of the stored bytes within the data section.
    var begin: Int
    var end: Int
    /// Bytes of the tensor once decoded: elements x dtype size.
    var rawSize: Int
    var compressed = false
    var shuffled = false
    var crc32: UInt32?

    var elementCount: Int { rawSize / dtype.byteSize }
}

struct TensorHeader {
    static let metadataKey = "__metadata__"

    var entries: [TensorEntry]
    var metadata: [String: String]
    /// Where the data section starts: 8 + N.
    var dataStart: Int

    /// Parses the length prefix and JSON header of `bytes` (the whole file, or at least its
    /// first `dataStart` bytes). Checks every entry on its own; `checkLayout` then checks the
    /// offsets against the data section.
    /// - Parameter graft: whether `.graft` fields (compression, shuffle, raw_size, crc32) are allowed.
    static func parse(_ bytes: [UInt8], graft: Bool) throws -> TensorHeader {
        let dataStart = try GraftFile.headerByteCount(bytes)
        let n = dataStart - 8
        guard dataStart <= bytes.count else {
            throw AdapterFormatError.truncated(context: "the \(n)-byte header", needed: dataStart, available: bytes.count)
        }
        guard let members = try JSONParser.parse(bytes, range: 8..<dataStart).members else {
            throw AdapterFormatError.invalidHeader("the header is not a JSON object")
        }
        var header = TensorHeader(entries: [], metadata: [:], dataStart: dataStart)
        for (key, value) in members {
            if key == metadataKey {
                header.metadata = try parseMetadata(value)
            } else {
                header.entries.append(try parseEntry(name: key, value, graft: graft))
            }
        }
        return header
    }

    private static func parseMetadata(_ value: JSONValue) throws -> [String: String] {
        guard let members = value.members else {
            throw AdapterFormatError.invalidMetadata(key: metadataKey, reason: "is not an object")
        }
        var out: [String: String] = [:]
        for (key, v) in members {
            guard let s = v.string else {
                throw AdapterFormatError.invalidMetadata(key: key, reason: "value is not a string (safetensors metadata holds strings only)")
            }
            out[key] = s
        }
        return out
    }

    private static func parseEntry(name: String, _ value: JSONValue, graft: Bool) throws -> TensorEntry {
        func bad(_ reason: String) -> AdapterFormatError { .invalidEntry(tensor: name, reason: reason) }
        guard let fields = value.members else { throw bad("entry is not an object") }
        let known = graft ? ["dtype", "shape", "data_offsets", "compression", "shuffle", "raw_size", "crc32"]
                          : ["dtype", "shape", "data_offsets"]
        for (key, v) in fields where !known.contains(key) {
            if key == "compression" || key == "shuffle" {
                throw AdapterFormatError.unsupportedEncoding(tensor: name, field: key, value: v.string ?? "\(v.compact)")
            }
            throw bad("unexpected field '\(key)'")
        }
        guard let dtypeName = value["dtype"]?.string else { throw bad("missing or non-string dtype") }
        guard let dtype = StorageType(rawValue: dtypeName) else {
            throw AdapterFormatError.unknownDType(tensor: name, dtype: dtypeName)
        }
        guard let dims = value["shape"]?.array else { throw bad("missing or non-array shape") }
        var shape: [Int] = []
        var bytes = dtype.byteSize
        for d in dims {
            guard let n = d.int else { throw bad("shape holds \(d.compact), not a non-negative integer") }
            let (product, overflow) = bytes.multipliedReportingOverflow(by: n)
            guard !overflow, product <= SafeTensors.maxTensorBytes else {
                throw AdapterFormatError.tensorTooLarge(tensor: name, bytes: overflow ? Int.max : product,
                                                        limit: SafeTensors.maxTensorBytes)
            }
            shape.append(n)
            bytes = product
        }
        guard let offsets = value["data_offsets"]?.array, offsets.count == 2,
              let begin = offsets[0].uint64, let end = offsets[1].uint64 else {
            throw bad("data_offsets must be two non-negative integers")
        }
        // Offsets beyond 2^62 cannot address a real file; refusing them keeps later arithmetic exact.
        guard begin <= end, end < 1 << 62 else {
            throw AdapterFormatError.invalidOffsets(tensor: name, begin: begin, end: end)
        }
        var entry = TensorEntry(name: name, dtype: dtype, shape: shape, begin: Int(begin), end: Int(end), rawSize: bytes)
        if let v = value["compression"] {
            guard v.string == "zlib" else {
                throw AdapterFormatError.unsupportedEncoding(tensor: name, field: "compression", value: v.string ?? v.compact)
            }
            entry.compressed = true
        }
        if let v = value["shuffle"] {
            guard v.string == "byte" else {
                throw AdapterFormatError.unsupportedEncoding(tensor: name, field: "shuffle", value: v.string ?? v.compact)
            }
            entry.shuffled = true
        }
        if let v = value["raw_size"] {
            guard let raw = v.int else { throw bad("raw_size must be a non-negative integer") }
            guard raw == bytes else {
                throw AdapterFormatError.sizeMismatch(tensor: name, field: "raw_size", expected: bytes, found: raw)
            }
        } else if entry.compressed {
            throw bad("a compressed tensor needs raw_size")
        }
        if let v = value["crc32"] {
            guard let crc = v.uint64, crc <= UInt64(UInt32.max) else { throw bad("crc32 must be an unsigned 32-bit integer") }
            entry.crc32 = UInt32(crc)
        }
        if !entry.compressed && entry.end - entry.begin != bytes {
            throw AdapterFormatError.sizeMismatch(tensor: name, field: "data_offsets", expected: bytes,
                                                  found: entry.end - entry.begin)
        }
        return entry
    }

    /// Checks that the entries tile a data section of `dataSize` bytes exactly: every tensor
    /// inside it, none overlapping, no unused bytes.
    func checkLayout(dataSize: Int) throws {
        let sorted = entries.sorted { ($0.begin, $0.end) < ($1.begin, $1.end) }
        // Range first: a tensor moved past the end leaves a hole, and the cause is the better report.
        for e in sorted where e.end > dataSize {
            throw AdapterFormatError.outOfRange(tensor: e.name, begin: e.begin, end: e.end, dataSize: dataSize)
        }
        var previous: TensorEntry?
        for e in sorted {
            let covered = previous?.end ?? 0
            if e.begin < covered, let p = previous {
                throw AdapterFormatError.overlapping(tensor: e.name, begin: e.begin, other: p.name, otherEnd: p.end)
            }
            if e.begin > covered { throw AdapterFormatError.unusedBytes(offset: covered, count: e.begin - covered) }
            previous = e
        }
        let covered = previous?.end ?? 0
        if covered < dataSize { throw AdapterFormatError.unusedBytes(offset: covered, count: dataSize - covered) }
    }

    /// The length prefix and JSON header for `entries` (in that order) and `metadata` (sorted
    /// by key), the JSON padded with spaces so the data section starts at a multiple of 8.
    /// - Parameter fields: extra fields of each entry, after dtype, shape and data_offsets.
    static func serialize(entries: [(name: String, dtype: StorageType, shape: [Int], begin: Int, end: Int,
                                     fields: [(key: String, value: JSONValue)])],
                          metadata: [String: String]) -> [UInt8] {
        var members: [(key: String, value: JSONValue)] = []
        if !metadata.isEmpty {
            let sortedMetadata = metadata.sorted { Array($0.key.utf8).lexicographicallyPrecedes($1.key.utf8) }
            members.append((metadataKey, .object(sortedMetadata.map { ($0.key, .string($0.value)) })))
        }
        for e in entries {
            let base: [(key: String, value: JSONValue)] = [
                ("dtype", .string(e.dtype.rawValue)),
                ("shape", .array(e.shape.map { .int($0) })),
                ("data_offsets", .array([.int(e.begin), .int(e.end)])),
            ]
            members.append((e.name, .object(base + e.fields)))
        }
        var json = Array(JSONValue.object(members).compact.utf8)
        json += [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8)
        var out = [UInt8]()
        out.reserveCapacity(8 + json.count)
        for k in 0..<8 { out.append(UInt8(truncatingIfNeeded: UInt64(json.count) >> (8 * UInt64(k)))) }
        return out + json
    }
}
