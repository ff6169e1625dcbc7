/// One metadata value. GGUF value type ids are given in `GGUFValue.typeID`.
public indirect enum GGUFValue: Equatable, Sendable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16)
    case uint32(UInt32), int32(Int32), float32(Float), bool(Bool)
    case string(String)
    /// Elements all share one type; `elementType` keeps it for empty arrays and for writing.
    case array(elementType: UInt32, [GGUFValue])
    case uint64(UInt64), int64(Int64), float64(Double)

    public var typeID: UInt32 {
        switch self {
        case .uint8: 0
        case .int8: 1
        case .uint16: 2
        case .int16: 3
        case .uint32: 4
        case .int32: 5
        case .float32: 6
        case .bool: 7
        case .string: 8
        case .array: 9
        case .uint64: 10
        case .int64: 11
        case .float64: 12
        }
    }

    /// Integer value of any integer case (and of bool).
    public var intValue: Int? {
        switch self {
        case .uint8(let v): Int(v)
        case .int8(let v): Int(v)
        case .uint16(let v): Int(v)
        case .int16(let v): Int(v)
        case .uint32(let v): Int(v)
        case .int32(let v): Int(v)
        case .uint64(let v): v <= UInt64(Int.max) ? Int(v) : nil
        case .int64(let v): Int(v)
        case .bool(let v): v ? 1 : 0
        default: nil
        }
    }

    public var doubleValue: Double? {
        switch self {
        case .float32(let v): Double(v)
        case .float64(let v): v
        default: intValue.map(Double.init)
        }
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    public var arrayValue: [GGUFValue]? {
        if case .array(_, let a) = self { return a }
        return nil
    }

    /// A short human-readable rendering (long arrays abbreviated).
    public var summary: String {
        switch self {
        case .string(let s):
            let flat = s.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\\n")
            return flat.count > 80 ? "\"\(flat.prefix(77))...\" (\(s.utf8.count) bytes)" : "\"\(flat)\""
        case .array(_, let a):
            let head = a.prefix(4).map(\.summary).joined(separator: ", ")
            return a.count > 4 ? "[\(head), ...] (\(a.count) items)" : "[\(head)]"
        case .float32(let v): return "\(v)"
        case .float64(let v): return "\(v)"
        case .bool(let b): return "\(b)"
        default: return intValue.map(String.init) ?? "?"
        }
    }
}
