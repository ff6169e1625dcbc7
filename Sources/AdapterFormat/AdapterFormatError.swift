/// Everything that can be wrong with a safetensors file, a `.graft` file or a PEFT adapter
/// directory. Each case carries the facts needed to find the problem (tensor name, offsets,
/// sizes); readers throw these and never trap on bad input.
public enum AdapterFormatError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file ends before something it announces (`context`) is complete.
    case truncated(context: String, needed: Int, available: Int)
    /// The header length field is beyond the reader's limit.
    case headerTooLarge(claimed: UInt64, limit: Int)
    /// JSON (a header or adapter_config.json) is malformed at `offset`, counted from the start of the file.
    case invalidJSON(offset: Int, reason: String)
    /// The header is valid JSON but not a valid header (not an object, bad field type...).
    case invalidHeader(String)
    /// A tensor entry lacks a field or has one of the wrong type.
    case invalidEntry(tensor: String, reason: String)
    case unknownDType(tensor: String, dtype: String)
    /// The byte count implied by shape and dtype differs from the stored one (`field` says
    /// which: "data_offsets" or "raw_size").
    case sizeMismatch(tensor: String, field: String, expected: Int, found: Int)
    case tensorTooLarge(tensor: String, bytes: Int, limit: Int)
    /// `begin > end`, or offsets too large to be real.
    case invalidOffsets(tensor: String, begin: UInt64, end: UInt64)
    /// A tensor's bytes lie past the end of the data section.
    case outOfRange(tensor: String, begin: Int, end: Int, dataSize: Int)
    case overlapping(tensor: String, begin: Int, other: String, otherEnd: Int)
    /// Bytes of the data section that belong to no tensor (safetensors forbids holes).
    case unusedBytes(offset: Int, count: Int)
    case unsupportedEncoding(tensor: String, field: String, value: String)
    case corruptData(tensor: String, reason: String)
    case checksumMismatch(tensor: String, expected: UInt32, actual: UInt32)
    case invalidMetadata(key: String, reason: String)
    case unsupportedFormatVersion(String)
    case unknownTensor(String)
    case duplicateTensor(String)
    case missingPartner(tensor: String, partner: String)
    /// A LoRA tensor of a module the base model's architecture does not have (`expected`: the
    /// modules it has, such as `self_attn.q_proj`).
    case moduleMismatch(tensor: String, architecture: String, expected: [String])
    /// lora_A is not [r, in] with lora_B [out, r] for the same r.
    case inconsistentShapes(target: String, a: [Int], b: [Int])
    /// The adapter does not fit the base model.
    case shapeMismatch(tensor: String, expected: [Int], found: [Int])
    case layerOutOfRange(tensor: String, layer: Int, layers: Int)
    case nonFiniteValue(tensor: String)
    /// A finite value does not fit the storage dtype (e.g. above 65504 in F16).
    case valueOutOfRange(tensor: String, dtype: String)
    /// Metadata keys the format owns cannot be set as free-form metadata.
    case reservedMetadataKey(String)
    case conflictingMetadata(key: String)
    case invalidConfig(key: String, reason: String)
    case unsupported(String)
    case io(path: String, message: String)

    public var description: String {
        switch self {
        case .truncated(let context, let needed, let available):
            return "truncated file: \(context) needs \(needed) bytes but the file has \(available)"
        case .headerTooLarge(let claimed, let limit):
            return "header length \(claimed) exceeds the limit of \(limit) bytes"
        case .invalidJSON(let offset, let reason):
            return "invalid JSON at byte \(offset): \(reason)"
        case .invalidHeader(let reason):
            return "invalid header: \(reason)"
        case .invalidEntry(let tensor, let reason):
            return "tensor '\(tensor)': \(reason)"
        case .unknownDType(let tensor, let dtype):
            return "tensor '\(tensor)': unsupported dtype '\(dtype)' (supported: F32, F16, BF16)"
        case .sizeMismatch(let tensor, let field, let expected, let found):
            return "tensor '\(tensor)': shape and dtype need \(expected) bytes but \(field) gives \(found)"
        case .tensorTooLarge(let tensor, let bytes, let limit):
            return "tensor '\(tensor)': \(bytes) bytes exceeds the limit of \(limit)"
        case .invalidOffsets(let tensor, let begin, let end):
            return "tensor '\(tensor)': invalid data_offsets [\(begin), \(end)]"
        case .outOfRange(let tensor, let begin, let end, let dataSize):
            return "tensor '\(tensor)': data_offsets [\(begin), \(end)] lie beyond the \(dataSize)-byte data section (truncated file?)"
        case .overlapping(let tensor, let begin, let other, let otherEnd):
            return "tensor '\(tensor)' starts at \(begin), inside tensor '\(other)' which ends at \(otherEnd)"
        case .unusedBytes(let offset, let count):
            return "\(count) bytes at data offset \(offset) belong to no tensor"
        case .unsupportedEncoding(let tensor, let field, let value):
            return "tensor '\(tensor)': unsupported \(field) '\(value)'"
        case .corruptData(let tensor, let reason):
            return "tensor '\(tensor)': corrupt data: \(reason)"
        case .checksumMismatch(let tensor, let expected, let actual):
            return "tensor '\(tensor)': CRC-32 mismatch (header says \(hex(expected)), data has \(hex(actual)))"
        case .invalidMetadata(let key, let reason):
            return "metadata '\(key)': \(reason)"
        case .unsupportedFormatVersion(let v):
            return "unsupported .graft format version '\(v)' (this build reads version 1)"
        case .unknownTensor(let name):
            return "unexpected tensor '\(name)' (not a LoRA A/B weight of a known projection)"
        case .duplicateTensor(let name):
            return "tensor '\(name)' appears more than once"
        case .missingPartner(let tensor, let partner):
            return "tensor '\(tensor)' has no partner '\(partner)'"
        case .moduleMismatch(let tensor, let architecture, let expected):
            return "tensor '\(tensor)' is not a LoRA weight of a module of a \(architecture) model (its layers have "
                + "\(expected.joined(separator: ", "))); maybe wrong base model?"
        case .inconsistentShapes(let target, let a, let b):
            return "\(target): lora_A \(a) and lora_B \(b) are not [r, in] and [out, r]"
        case .shapeMismatch(let tensor, let expected, let found):
            return "tensor '\(tensor)' has shape \(found) but the base model needs \(expected); maybe wrong base model?"
        case .layerOutOfRange(let tensor, let layer, let layers):
            return "tensor '\(tensor)' targets layer \(layer) but the base model has \(layers); maybe wrong base model?"
        case .nonFiniteValue(let tensor):
            return "tensor '\(tensor)' holds NaN or infinite values"
        case .valueOutOfRange(let tensor, let dtype):
            return "tensor '\(tensor)' has values too large for \(dtype); store it as F32 or BF16"
        case .reservedMetadataKey(let key):
            return "metadata key '\(key)' is reserved by the .graft format"
        case .conflictingMetadata(let key):
            return "metadata '\(key)' is given twice with different values"
        case .invalidConfig(let key, let reason):
            return "adapter_config.json '\(key)': \(reason)"
        case .unsupported(let what):
            return "not supported: \(what)"
        case .io(let path, let message):
            return "\(path): \(message)"
        }
    }
}

private func hex(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return "0x" + String(repeating: "0", count: 8 - s.count) + s
}
