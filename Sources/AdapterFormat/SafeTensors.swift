/// One tensor as stored: a dtype, a shape and its little-endian element bytes.
public struct SafeTensor: Equatable, Sendable {
    public let dtype: StorageType
    public let shape: [Int]
    public let data: [UInt8]

    /// Wraps stored bytes; `data.count` must equal the element count times `dtype.byteSize`.
    public init(dtype: StorageType, shape: [Int], data: [UInt8]) {
        precondition(shape.reduce(1, *) * dtype.byteSize == data.count, "tensor data does not match its shape")
        self.dtype = dtype; self.shape = shape; self.data = data
    }

    /// Converts Float32 `values` to `dtype`; nil if a value does not fit (F16 beyond 65504).
    public init?(values: [Float], shape: [Int], dtype: StorageType) {
        precondition(shape.reduce(1, *) == values.count, "tensor values do not match its shape")
        guard let data = dtype.encode(values) else { return nil }
        self.dtype = dtype; self.shape = shape; self.data = data
    }

    public var elementCount: Int { data.count / dtype.byteSize }

    /// The elements widened to Float32.
    public var values: [Float] { dtype.decode(data[...]) }
}

/// The safetensors format, read and written exactly (see `TensorHeader` for the layout).
///
/// Files written here follow the reference writer: tensors sorted by name, offsets contiguous
/// from 0, the JSON header compact and space-padded to a multiple of 8 bytes, metadata
/// (strings only) under `__metadata__`. The reader checks everything a hostile or damaged
/// file could get wrong before it allocates or copies tensor data.
public enum SafeTensors {
    /// The largest JSON header a reader accepts (100 MB, as the reference reader).
    public static let maxHeaderBytes = 100_000_000
    /// The largest tensor a reader accepts (2 GiB, far above any LoRA factor).
    public static let maxTensorBytes = 1 << 31

    /// Serializes `tensors` with `metadata` into the bytes of a safetensors file.
    public static func encode(_ tensors: [String: SafeTensor], metadata: [String: String] = [:]) -> [UInt8] {
        let names = tensors.keys.sorted { Array($0.utf8).lexicographicallyPrecedes($1.utf8) }
        var offset = 0
        var entries: [(name: String, dtype: StorageType, shape: [Int], begin: Int, end: Int,
                       fields: [(key: String, value: JSONValue)])] = []
        for name in names {
            let t = tensors[name]!
            entries.append((name, t.dtype, t.shape, offset, offset + t.data.count, []))
            offset += t.data.count
        }
        var out = TensorHeader.serialize(entries: entries, metadata: metadata)
        out.reserveCapacity(out.count + offset)
        for name in names { out += tensors[name]!.data }
        return out
    }

    /// Parses a safetensors file held in memory.
    /// - Throws: `AdapterFormatError` naming the tensor and offsets of the first problem.
    public static func decode(_ bytes: [UInt8]) throws -> (tensors: [String: SafeTensor], metadata: [String: String]) {
        let header = try TensorHeader.parse(bytes, graft: false)
        try header.checkLayout(dataSize: bytes.count - header.dataStart)
        var tensors: [String: SafeTensor] = [:]
        for e in header.entries {
            let data = Array(bytes[(header.dataStart + e.begin)..<(header.dataStart + e.end)])
            tensors[e.name] = SafeTensor(dtype: e.dtype, shape: e.shape, data: data)
        }
        return (tensors, header.metadata)
    }
}
