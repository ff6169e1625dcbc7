import Crypto
import Foundation
import Synchronization

/// Limits on one tenant's use of a shared daemon; nil means no limit.
public struct TenantQuotas: Codable, Equatable, Sendable {
    /// Bytes of stored adapter files.
    public var adapterBytes: Int?
    public var requestsPerMinute: Int?
    /// Inference requests running at the same time.
    public var concurrentStreams: Int?
    /// Bytes of uploaded files.
    public var fileBytes: Int?

    public init(adapterBytes: Int? = nil, requestsPerMinute: Int? = nil, concurrentStreams: Int? = nil,
                fileBytes: Int? = nil) {
        self.adapterBytes = adapterBytes; self.requestsPerMinute = requestsPerMinute
        self.concurrentStreams = concurrentStreams; self.fileBytes = fileBytes
    }

    enum CodingKeys: String, CodingKey {
        case adapterBytes = "adapter_bytes", requestsPerMinute = "requests_per_minute"
        case concurrentStreams = "concurrent_streams", fileBytes = "file_bytes"
    }
}

/// A tenant as stored: its name, the SHA-256 of its key (never the key) and its quotas.
public struct TenantRecord: Codable, Equatable, Sendable {
    public var name: String
    public var keySHA256: String
    public var admin: Bool
    public var quotas: TenantQuotas
    public var createdAt: Int

    enum CodingKeys: String, CodingKey {
        case name, admin, quotas
        case keySHA256 = "key_sha256", createdAt = "created_at"
    }
}

public enum TenantError: Error, Equatable, CustomStringConvertible {
    case exists(String)
    case notFound(String)
    case invalid(String)

    public var description: String {
        switch self {
        case .exists(let t): return "tenant '\(t)' already exists"
        case .notFound(let t): return "no tenant '\(t)'"
        case .invalid(let s): return s
        }
    }
}

/// `tenants.json` at the hub's root: the tenants and their hashed keys. With no file (or no
/// tenants) the hub is single-user. Every change is one atomic rewrite of the file.
public final class TenantStore: Sendable {
    public let url: URL
    private let lock = Mutex(())

    public init(hub: Hub) { url = hub.root.appendingPathComponent("tenants.json") }

    private struct File: Codable { var tenants: [TenantRecord] }

    /// Every tenant, sorted by name.
    public func all() throws -> [TenantRecord] {
        guard let data = FileManager.default.contents(atPath: url.path) else { return [] }
        do {
            return try JSONDecoder().decode(File.self, from: data).tenants.sorted { $0.name < $1.name }
        } catch {
            throw HubError.io(path: url.path, message: "not a valid tenants file: \(error)")
        }
    }

    private func save(_ tenants: [TenantRecord]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(to: url, contents: try encoder.encode(File(tenants: tenants)), permissions: 0o600)
    }

    /// Adds a tenant and returns its new key, which is not stored and cannot be shown again.
    public func add(_ name: String, admin: Bool = false, quotas: TenantQuotas = .init()) throws -> String {
        try AdapterID.validate(name, what: "tenant")
        return try lock.withLock { _ in
            var tenants = try all()
            if tenants.contains(where: { $0.name == name }) { throw TenantError.exists(name) }
            let key = Self.newKey()
            tenants.append(TenantRecord(name: name, keySHA256: Self.hash(key), admin: admin, quotas: quotas,
                                        createdAt: Int(Date().timeIntervalSince1970)))
            try save(tenants)
            return key
        }
    }

    /// Replaces a tenant's key; the old one stops working at once.
    public func rotateKey(_ name: String) throws -> String {
        try lock.withLock { _ in
            var tenants = try all()
            guard let i = tenants.firstIndex(where: { $0.name == name }) else { throw TenantError.notFound(name) }
            let key = Self.newKey()
            tenants[i].keySHA256 = Self.hash(key)
            try save(tenants)
            return key
        }
    }

    public func setQuotas(_ name: String, _ quotas: TenantQuotas) throws {
        try lock.withLock { _ in
            var tenants = try all()
            guard let i = tenants.firstIndex(where: { $0.name == name }) else { throw TenantError.notFound(name) }
            tenants[i].quotas = quotas
            try save(tenants)
        }
    }

    /// Removes a tenant (its adapters stay in the hub until deleted).
    public func remove(_ name: String) throws {
        try lock.withLock { _ in
            var tenants = try all()
            guard let i = tenants.firstIndex(where: { $0.name == name }) else { throw TenantError.notFound(name) }
            tenants.remove(at: i)
            try save(tenants)
        }
    }

    /// The tenant whose key this is, comparing hashes in constant time.
    public func authenticate(key: String) throws -> TenantRecord? {
        let digest = Self.hash(key)
        var found: TenantRecord?
        for t in try all() where Self.constantTimeEqual(t.keySHA256, digest) { found = t }
        return found
    }

    static func newKey() -> String {
        var bytes = [UInt8](repeating: 0, count: 32)
        var rng = SystemRandomNumberGenerator()
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255, using: &rng) }
        let text = Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        return "gft-" + text
    }

    public static func hash(_ key: String) -> String {
        SHA256.hash(data: Data(key.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    private static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var diff: UInt8 = 0
        for i in x.indices { diff |= x[i] ^ y[i] }
        return diff == 0
    }
}
