/// Everything that can be wrong with a GGUF file. Each case carries the facts needed to find
/// the problem (offsets are byte offsets from the start of the file).
public enum GGUFError: Error, CustomStringConvertible, Equatable {
    case badMagic(found: UInt32)
    case unsupportedVersion(UInt32)
    case truncated(offset: Int, needed: Int, available: Int)
    case invalidString(offset: Int)
    case unknownValueType(UInt32, key: String)
    case implausibleCount(what: String, count: UInt64, offset: Int)
    case duplicateKey(String)
    case duplicateTensor(String)
    case badDimensions(tensor: String, reason: String)
    case unsupportedTensorType(type: String, tensor: String)
    case misalignedTensor(tensor: String, offset: UInt64, alignment: Int)
    case tensorOutOfBounds(tensor: String, start: Int, end: Int, fileSize: Int)
    case badAlignment(Int)
    case missingKey(String)
    case wrongValueType(key: String, expected: String)
    case missingTensor(String)
    case shapeMismatch(tensor: String, expected: [Int], found: [Int])
    case io(path: String, reason: String)

    public var description: String {
        switch self {
        case .badMagic(let m):
            return "not a GGUF file: magic is 0x\(String(m, radix: 16)), expected 0x46554747 ('GGUF')"
        case .unsupportedVersion(let v): return "unsupported GGUF version \(v) (supported: 2, 3)"
        case .truncated(let offset, let needed, let available):
            return "truncated GGUF file: needed \(needed) bytes at offset \(offset), only \(available) available"
        case .invalidString(let offset): return "invalid UTF-8 string at offset \(offset)"
        case .unknownValueType(let t, let key): return "unknown metadata value type \(t) for key '\(key)'"
        case .implausibleCount(let what, let count, let offset):
            return "implausible \(what) \(count) at offset \(offset): larger than the file could hold"
        case .duplicateKey(let k): return "duplicate metadata key '\(k)'"
        case .duplicateTensor(let n): return "duplicate tensor name '\(n)'"
        case .badDimensions(let t, let reason): return "tensor \(t): bad dimensions (\(reason))"
        case .unsupportedTensorType(let type, let tensor): return "tensor \(tensor) has type \(type), which is not supported"
        case .misalignedTensor(let t, let off, let a): return "tensor \(t) data offset \(off) is not a multiple of the alignment \(a)"
        case .tensorOutOfBounds(let t, let s, let e, let size):
            return "tensor \(t) data [\(s), \(e)) lies outside the file (\(size) bytes)"
        case .badAlignment(let a): return "general.alignment \(a) is not a positive power of two"
        case .missingKey(let k): return "missing metadata key '\(k)'"
        case .wrongValueType(let k, let expected): return "metadata key '\(k)' is not \(expected)"
        case .missingTensor(let n): return "missing tensor '\(n)'"
        case .shapeMismatch(let t, let e, let f): return "tensor \(t) has shape \(f), expected \(e)"
        case .io(let path, let reason): return "\(path): \(reason)"
        }
    }
}
