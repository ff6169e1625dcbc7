/// Builds a GGUF v3 image in memory: metadata in insertion order, tensors aligned to
/// `alignment`. Used by tests (tiny random models) and by tools that write models.
public struct GGUFWriter {
    public var alignment = 32
    private var metadata: [(String, GGUFValue)] = []
    private var tensors: [(name: String, dims: [Int], type: GGMLType, data: [UInt8])] = []

    public init() {}

    public mutating func set(_ key: String, _ value: GGUFValue) { metadata.append((key, value)) }

    /// Adds a tensor; `dimensions[0]` is the contiguous one and `data` is already encoded.
    public mutating func addTensor(_ name: String, dimensions: [Int], type: GGMLType, data: [UInt8]) {
        tensors.append((name, dimensions, type, data))
    }

    /// Adds a tensor from Float32 values, encoding them as `type`.
    public mutating func addTensor(_ name: String, dimensions: [Int], type: GGMLType = .f32, values: [Float]) {
        addTensor(name, dimensions: dimensions, type: type, data: Quantize.encode(values, as: type))
    }

    public func serialize() -> [UInt8] {
        var out: [UInt8] = []
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func putString(_ s: String) { put(UInt64(s.utf8.count)); out.append(contentsOf: Array(s.utf8)) }
        func putValue(_ v: GGUFValue) {
            switch v {
            case .uint8(let x): put(x)
            case .int8(let x): put(x)
            case .uint16(let x): put(x)
            case .int16(let x): put(x)
            case .uint32(let x): put(x)
            case .int32(let x): put(x)
            case .float32(let x): put(x.bitPattern)
            case .bool(let x): put(UInt8(x ? 1 : 0))
            case .string(let s): putString(s)
            case .array(let t, let items):
                put(t); put(UInt64(items.count))
                for item in items { putValue(item) }
            case .uint64(let x): put(x)
            case .int64(let x): put(x)
            case .float64(let x): put(x.bitPattern)
            }
        }
        // A non-default alignment must be recorded, or readers assume 32.
        var entries = metadata
        if alignment != 32 && !entries.contains(where: { $0.0 == "general.alignment" }) {
            entries.insert(("general.alignment", .uint32(UInt32(alignment))), at: 0)
        }
        put(UInt32(0x4655_4747)); put(UInt32(3))
        put(UInt64(tensors.count)); put(UInt64(entries.count))
        for (k, v) in entries { putString(k); put(v.typeID); putValue(v) }
        var offset = 0
        var offsets: [Int] = []
        for t in tensors {
            offsets.append(offset)
            offset = (offset + t.data.count + alignment - 1) / alignment * alignment
        }
        for (i, t) in tensors.enumerated() {
            putString(t.name); put(UInt32(t.dims.count))
            for d in t.dims { put(UInt64(d)) }
            put(t.type.id); put(UInt64(offsets[i]))
        }
        while out.count % alignment != 0 { out.append(0) }
        let base = out.count
        for (i, t) in tensors.enumerated() {
            while out.count < base + offsets[i] { out.append(0) }
            out.append(contentsOf: t.data)
        }
        return out
    }
}
