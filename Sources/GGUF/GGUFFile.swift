/// GGUF (version 2 and 3) reader.
///
/// File layout, all little-endian:
/// 1. magic `GGUF` (u32 0x46554747), version u32, tensor count u64, metadata count u64
/// 2. metadata: key (u64 length + UTF-8), value type u32, value (strings as above; arrays as
///    element type u32 + count u64 + elements)
/// 3. tensor infos: name, n_dims u32, dims u64 x n_dims (dims[0] is the contiguous one),
///    ggml type u32, data offset u64 relative to the data section
/// 4. padding to `general.alignment` (default 32), then the data section.
public final class GGUFFile: @unchecked Sendable {
    public let version: UInt32
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    /// Offset of the data section from the start of the file.
    public let dataOffset: Int
    public let path: String?

    private let storage: AnyObject?
    public let bytes: UnsafeRawBufferPointer
    private let tensorIndex: [String: Int]

    /// Memory-maps and parses the file at `path`.
    public convenience init(path: String) throws {
        let file = try MappedFile(path: path)
        try self.init(bytes: file.bytes, owner: file, path: path)
    }

    /// Parses a GGUF image held in memory (tests build these with `GGUFWriter`).
    public convenience init(data: [UInt8]) throws {
        let box = ByteBox(data)
        try self.init(bytes: box.bytes, owner: box, path: nil)
    }

    /// Parses `bytes`, which `owner` keeps alive.
    public init(bytes: UnsafeRawBufferPointer, owner: AnyObject?, path: String?) throws {
        self.storage = owner
        self.bytes = bytes
        self.path = path
        var r = ByteReader(bytes)
        let magic = try r.read(UInt32.self)
        guard magic == 0x4655_4747 else { throw GGUFError.badMagic(found: magic) }
        version = try r.read(UInt32.self)
        guard version == 2 || version == 3 else { throw GGUFError.unsupportedVersion(version) }
        let countOffset = r.offset
        let tensorCount = try r.read(UInt64.self)
        let kvCount = try r.read(UInt64.self)
        // Each metadata entry takes at least 13 bytes and each tensor info at least 28.
        guard kvCount <= UInt64(r.remaining / 13) else {
            throw GGUFError.implausibleCount(what: "metadata count", count: kvCount, offset: countOffset + 8)
        }
        guard tensorCount <= UInt64(r.remaining / 28) else {
            throw GGUFError.implausibleCount(what: "tensor count", count: tensorCount, offset: countOffset)
        }

        var metadata: [String: GGUFValue] = [:]
        var keys: [String] = []
        for _ in 0..<Int(kvCount) {
            let key = try r.readString()
            let type = try r.read(UInt32.self)
            let value = try Self.readValue(&r, type: type, key: key, depth: 0)
            guard metadata.updateValue(value, forKey: key) == nil else { throw GGUFError.duplicateKey(key) }
            keys.append(key)
        }
        self.metadata = metadata
        self.metadataKeys = keys

        var alignment = 32
        if let a = metadata["general.alignment"] {
            guard let v = a.intValue, v > 0, v & (v - 1) == 0 else { throw GGUFError.badAlignment(a.intValue ?? -1) }
            alignment = v
        }
        self.alignment = alignment

        var infos: [GGUFTensorInfo] = []
        var index: [String: Int] = [:]
        for _ in 0..<Int(tensorCount) {
            let name = try r.readString()
            let nDims = try r.read(UInt32.self)
            guard (1...4).contains(nDims) else {
                throw GGUFError.badDimensions(tensor: name, reason: "\(nDims) dimensions, expected 1 to 4")
            }
            var dims: [Int] = []
            var count = 1
            for _ in 0..<Int(nDims) {
                let d = try r.read(UInt64.self)
                guard d > 0, d < 1 << 40 else { throw GGUFError.badDimensions(tensor: name, reason: "dimension \(d)") }
                let (product, overflow) = count.multipliedReportingOverflow(by: Int(d))
                guard !overflow, product < 1 << 42 else {
                    throw GGUFError.badDimensions(tensor: name, reason: "element count overflows")
                }
                dims.append(Int(d))
                count = product
            }
            let typeID = try r.read(UInt32.self)
            guard let type = GGMLType.known(id: typeID) else {
                throw GGUFError.unsupportedTensorType(type: "\(typeID)", tensor: name)
            }
            guard dims[0] % type.blockSize == 0 else {
                throw GGUFError.badDimensions(tensor: name,
                    reason: "row length \(dims[0]) is not a multiple of the \(type.name) block size \(type.blockSize)")
            }
            let offset = try r.read(UInt64.self)
            guard offset % UInt64(alignment) == 0 else {
                throw GGUFError.misalignedTensor(tensor: name, offset: offset, alignment: alignment)
            }
            guard index.updateValue(infos.count, forKey: name) == nil else { throw GGUFError.duplicateTensor(name) }
            infos.append(GGUFTensorInfo(name: name, dimensions: dims, type: type,
                                        relativeOffset: Int(clamping: offset), byteCount: type.byteCount(elements: count)))
        }
        let padded = (r.offset + alignment - 1) / alignment * alignment
        dataOffset = padded
        for info in infos {
            let start = padded.addingReportingOverflow(info.relativeOffset)
            let end = start.partialValue.addingReportingOverflow(info.byteCount)
            guard !start.overflow, !end.overflow, end.partialValue <= bytes.count else {
                throw GGUFError.tensorOutOfBounds(tensor: info.name, start: start.partialValue,
                                                  end: end.partialValue, fileSize: bytes.count)
            }
        }
        tensors = infos
        tensorIndex = index
    }

    private static func readValue(_ r: inout ByteReader, type: UInt32, key: String, depth: Int) throws -> GGUFValue {
        switch type {
        case 0: return .uint8(try r.read(UInt8.self))
        case 1: return .int8(try r.read(Int8.self))
        case 2: return .uint16(try r.read(UInt16.self))
        case 3: return .int16(try r.read(Int16.self))
        case 4: return .uint32(try r.read(UInt32.self))
        case 5: return .int32(try r.read(Int32.self))
        case 6: return .float32(try r.readFloat())
        case 7:
            let b = try r.read(UInt8.self)
            return .bool(b != 0)
        case 8: return .string(try r.readString())
        case 9:
            guard depth < 4 else { throw GGUFError.unknownValueType(type, key: key) }
            let elementType = try r.read(UInt32.self)
            let countOffset = r.offset
            let count = try r.read(UInt64.self)
            // The smallest element is one byte; a count beyond the remaining bytes is a lie.
            guard count <= UInt64(r.remaining) else {
                throw GGUFError.implausibleCount(what: "array length", count: count, offset: countOffset)
            }
            var items: [GGUFValue] = []
            items.reserveCapacity(Int(count))
            for _ in 0..<Int(count) {
                items.append(try readValue(&r, type: elementType, key: key, depth: depth + 1))
            }
            return .array(elementType: elementType, items)
        case 10: return .uint64(try r.read(UInt64.self))
        case 11: return .int64(try r.read(Int64.self))
        case 12: return .float64(try r.readDouble())
        default: throw GGUFError.unknownValueType(type, key: key)
        }
    }

    // MARK: - Lookup

    public func tensor(named name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// The raw bytes of a tensor's data.
    public func data(of tensor: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        let start = dataOffset + tensor.relativeOffset
        return UnsafeRawBufferPointer(rebasing: bytes[start..<start + tensor.byteCount])
    }

    /// Drops a memory-mapped tensor's pages from resident memory once its data has been
    /// copied elsewhere (no effect for in-memory images).
    public func discardPages(of tensor: GGUFTensorInfo) {
        guard let mapped = storage as? MappedFile else { return }
        let start = dataOffset + tensor.relativeOffset
        mapped.discard(start..<start + tensor.byteCount)
    }

    public func requireTensor(_ name: String) throws -> GGUFTensorInfo {
        guard let t = tensor(named: name) else { throw GGUFError.missingTensor(name) }
        return t
    }

    public func string(_ key: String) -> String? { metadata[key]?.stringValue }
    public func int(_ key: String) -> Int? { metadata[key]?.intValue }
    public func double(_ key: String) -> Double? { metadata[key]?.doubleValue }
    public func bool(_ key: String) -> Bool? { metadata[key]?.boolValue }

    public func requireInt(_ key: String) throws -> Int {
        guard let v = metadata[key] else { throw GGUFError.missingKey(key) }
        guard let i = v.intValue else { throw GGUFError.wrongValueType(key: key, expected: "an integer") }
        return i
    }

    public func requireDouble(_ key: String) throws -> Double {
        guard let v = metadata[key] else { throw GGUFError.missingKey(key) }
        guard let d = v.doubleValue else { throw GGUFError.wrongValueType(key: key, expected: "a number") }
        return d
    }

    public func requireString(_ key: String) throws -> String {
        guard let v = metadata[key] else { throw GGUFError.missingKey(key) }
        guard let s = v.stringValue else { throw GGUFError.wrongValueType(key: key, expected: "a string") }
        return s
    }

    /// An array of strings, e.g. `tokenizer.ggml.tokens`.
    public func stringArray(_ key: String) throws -> [String] {
        guard let v = metadata[key] else { throw GGUFError.missingKey(key) }
        guard let a = v.arrayValue else { throw GGUFError.wrongValueType(key: key, expected: "an array") }
        return try a.map {
            guard let s = $0.stringValue else { throw GGUFError.wrongValueType(key: key, expected: "an array of strings") }
            return s
        }
    }

    /// An array of integers, e.g. `tokenizer.ggml.token_type`.
    public func intArray(_ key: String) throws -> [Int] {
        guard let v = metadata[key] else { throw GGUFError.missingKey(key) }
        guard let a = v.arrayValue else { throw GGUFError.wrongValueType(key: key, expected: "an array") }
        return try a.map {
            guard let i = $0.intValue else { throw GGUFError.wrongValueType(key: key, expected: "an array of integers") }
            return i
        }
    }
}

/// Tensor metadata. `dimensions[0]` is the contiguous (row) length, as in ggml.
public struct GGUFTensorInfo: Equatable, Sendable {
    public let name: String
    public let dimensions: [Int]
    public let type: GGMLType
    /// Offset of the data from the start of the data section.
    public let relativeOffset: Int
    public let byteCount: Int

    public var elementCount: Int { dimensions.reduce(1, *) }
    /// Length of one row (the contiguous dimension).
    public var rowLength: Int { dimensions[0] }
    /// Number of rows: the product of the other dimensions.
    public var rowCount: Int { elementCount / dimensions[0] }
}

/// Owns an in-memory image so `GGUFFile` can point into it.
final class ByteBox {
    let storage: UnsafeMutableRawBufferPointer
    let count: Int
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: storage.baseAddress, count: count) }
    init(_ data: [UInt8]) {
        count = data.count
        storage = .allocate(byteCount: max(data.count, 1), alignment: 64)
        storage.initializeMemory(as: UInt8.self, repeating: 0)
        data.withUnsafeBytes { storage.copyMemory(from: $0) }
    }
    deinit { storage.deallocate() }
}
