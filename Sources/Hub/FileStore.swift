import Crypto
import Foundation

/// An uploaded file's record, `tenants/<tenant>/files/<id>.json`, beside its bytes in
/// `tenants/<tenant>/files/<id>` (both written whole; the record last, so a listed file is
/// always complete).
public struct StoredFile: Codable, Equatable, Sendable {
    public var id: String
    public var bytes: Int
    /// Unix seconds.
    public var createdAt: Int
    /// Unix seconds with their fraction: orders files uploaded within one second.
    public var created: Double
    public var filename: String
    public var purpose: String
    public var sha256: String
    /// Lines of text (a JSONL file's rows, blank lines included).
    public var lines: Int
}

public struct FileNotFound: Error, CustomStringConvertible {
    public var description: String
}

/// Checks UTF-8 as bytes arrive, across chunk boundaries (RFC 3629: no overlong forms, no
/// surrogates, nothing above U+10FFFF).
public struct UTF8Validator: Sendable {
    private var need = 0
    private var lower: UInt8 = 0x80
    private var upper: UInt8 = 0xBF
    public private(set) var isValid = true
    /// Bytes consumed before the first invalid one.
    public private(set) var offset = 0
    public private(set) var newlines = 0

    public init() {}

    public mutating func consume(_ bytes: UnsafeRawBufferPointer) {
        guard isValid else { return }
        for b in bytes {
            if need == 0 {
                switch b {
                case 0x0A: newlines += 1
                case 0x00...0x7F: break
                case 0xC2...0xDF: need = 1
                case 0xE0: need = 2; lower = 0xA0
                case 0xE1...0xEC, 0xEE...0xEF: need = 2
                case 0xED: need = 2; upper = 0x9F
                case 0xF0: need = 3; lower = 0x90
                case 0xF1...0xF3: need = 3
                case 0xF4: need = 3; upper = 0x8F
                default: isValid = false; return
                }
            } else {
                guard b >= lower && b <= upper else { isValid = false; return }
                lower = 0x80; upper = 0xBF
                need -= 1
            }
            offset += 1
        }
    }

    /// Valid and not ending inside a character.
    public var isComplete: Bool { isValid && need == 0 }
}

/// A file being uploaded: bytes are written to a hidden temporary file as they arrive, hashed
/// and checked as UTF-8 on the way; `finish` makes it appear whole, and dropping it uncommitted
/// leaves nothing behind.
public final class FileUpload {
    let hub: Hub
    public let tenant: String
    let id: String
    private let writer: AtomicFileWriter
    private var hasher = SHA256()
    public private(set) var utf8 = UTF8Validator()
    public var count: Int { Int(writer.bytesWritten) }

    init(hub: Hub, tenant: String) throws {
        self.hub = hub
        self.tenant = tenant
        id = "file-" + Hub.randomID()
        writer = try AtomicFile.begin(hub.filesDirectory(tenant: tenant).appendingPathComponent(id))
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        try writer.write(bytes)
        hasher.update(bufferPointer: bytes)
        utf8.consume(bytes)
    }

    /// Commits the bytes, then the record; returns the record.
    public func finish(filename: String, purpose: String) throws -> StoredFile {
        let endsWithNewline = count == 0 || lastByteIsNewline
        let now = Date().timeIntervalSince1970
        let record = StoredFile(id: id, bytes: count, createdAt: Int(now), created: now, filename: filename, purpose: purpose,
                                sha256: hasher.finalize().map { String(format: "%02x", $0) }.joined(),
                                lines: utf8.newlines + (endsWithNewline ? 0 : 1))
        try writer.commit(replaceExisting: false)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(to: hub.filesDirectory(tenant: tenant).appendingPathComponent(id + ".json"),
                             contents: try encoder.encode(record))
        return record
    }

    private var lastByteIsNewline: Bool {
        guard let h = FileHandle(forReadingAtPath: writer.temporaryPath) else { return false }
        defer { try? h.close() }
        guard (try? h.seek(toOffset: UInt64(count - 1))) != nil, let b = try? h.read(upToCount: 1) else { return false }
        return b.first == 0x0A
    }

    public func abandon() { writer.abandon() }
}

extension Hub {
    public func filesDirectory(tenant: String) -> URL {
        tenantsDirectory.appendingPathComponent(tenant, isDirectory: true).appendingPathComponent("files", isDirectory: true)
    }

    /// 24 random hex digits from the system's generator: ids nobody can guess.
    static func randomID() -> String {
        var g = SystemRandomNumberGenerator()
        return (0..<12).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &g)) }.joined()
    }

    public func beginUpload(tenant: String) throws -> FileUpload {
        try AdapterID.validate(tenant, what: "tenant")
        return try FileUpload(hub: self, tenant: tenant)
    }

    /// The tenant's files, newest first.
    public func listFiles(tenant: String) -> [StoredFile] {
        let dir = filesDirectory(tenant: tenant)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        let decoder = JSONDecoder()
        return names.filter { $0.hasPrefix("file-") && $0.hasSuffix(".json") }.compactMap { name in
            (try? Data(contentsOf: dir.appendingPathComponent(name))).flatMap { try? decoder.decode(StoredFile.self, from: $0) }
        }.sorted { ($0.created, $0.id) > ($1.created, $1.id) }
    }

    /// The file `id` of `tenant` (another tenant's id is not found).
    public func file(_ id: String, tenant: String) throws -> StoredFile {
        guard id.hasPrefix("file-"), id.count <= 64, id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }),
              let data = try? Data(contentsOf: filesDirectory(tenant: tenant).appendingPathComponent(id + ".json")),
              let record = try? JSONDecoder().decode(StoredFile.self, from: data)
        else { throw FileNotFound(description: "no file \(id)") }
        return record
    }

    /// The file `id` of whichever tenant has it (for admins).
    public func findFile(_ id: String) -> (tenant: String, file: StoredFile)? {
        let tenants = (try? FileManager.default.contentsOfDirectory(atPath: tenantsDirectory.path)) ?? []
        for t in tenants.sorted() {
            if let f = try? file(id, tenant: t) { return (t, f) }
        }
        return nil
    }

    public func contentURL(of file: StoredFile, tenant: String) -> URL {
        filesDirectory(tenant: tenant).appendingPathComponent(file.id)
    }

    /// Removes the record first (the file disappears from listings), then the bytes.
    public func deleteFile(_ id: String, tenant: String) throws {
        let record = try file(id, tenant: tenant)
        let dir = filesDirectory(tenant: tenant)
        try FileManager.default.removeItem(at: dir.appendingPathComponent(record.id + ".json"))
        try? FileManager.default.removeItem(at: dir.appendingPathComponent(record.id))
    }

    /// Bytes of the tenant's stored files.
    public func fileBytes(tenant: String) -> Int { listFiles(tenant: tenant).reduce(0) { $0 + $1.bytes } }

    /// Removes uploads a crash interrupted: temporary files, and bytes whose record was never written.
    public func removeIncompleteUploads(tenant: String) {
        let dir = filesDirectory(tenant: tenant)
        let names = Set((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [])
        for name in names where name.hasSuffix(".tmp") || (name.hasPrefix("file-") && !name.hasSuffix(".json")
                                                            && !names.contains(name + ".json")) {
            try? FileManager.default.removeItem(at: dir.appendingPathComponent(name))
        }
    }
}
