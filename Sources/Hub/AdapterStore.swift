import AdapterFormat
import Foundation

/// `tenant/name` (the newest version) or `tenant/name@version`.
public struct AdapterID: Hashable, Sendable, CustomStringConvertible {
    public var tenant: String
    public var name: String
    public var version: Int?

    public init(tenant: String, name: String, version: Int? = nil) throws {
        try Self.validate(tenant, what: "tenant")
        try Self.validate(name, what: "adapter name")
        if let version, version < 1 { throw AdapterStoreError.invalidID("version \(version) must be 1 or more") }
        self.tenant = tenant; self.name = name; self.version = version
    }

    /// Parses `tenant/name[@version]`.
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            throw AdapterStoreError.invalidID("'\(text)' is not tenant/name or tenant/name@version")
        }
        let nameAndVersion = parts[1].split(separator: "@", omittingEmptySubsequences: false)
        guard nameAndVersion.count <= 2 else { throw AdapterStoreError.invalidID("'\(text)' has more than one '@'") }
        var version: Int?
        if nameAndVersion.count == 2 {
            guard let v = Int(nameAndVersion[1]), "\(v)" == nameAndVersion[1] else {
                throw AdapterStoreError.invalidID("version '\(nameAndVersion[1])' in '\(text)' is not a number")
            }
            version = v
        }
        try self.init(tenant: String(parts[0]), name: String(nameAndVersion[0]), version: version)
    }

    public var description: String { version.map { "\(tenant)/\(name)@\($0)" } ?? "\(tenant)/\(name)" }

    public func with(version: Int) -> AdapterID {
        var copy = self
        copy.version = version
        return copy
    }

    /// Names are 1-64 characters of letters, digits, '.', '_' and '-', starting with a letter
    /// or digit: no path separators, no hidden files, no '..'.
    public static func validate(_ s: String, what: String) throws {
        let allowed = s.unicodeScalars.allSatisfy { c in
            (c.value < 128) && (c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "." || c == "_" || c == "-")
        }
        guard !s.isEmpty, s.count <= 64, allowed, let first = s.unicodeScalars.first,
              first != ".", first != "_", first != "-", !s.contains("..") else {
            throw AdapterStoreError.invalidID(
                "\(what) '\(s)' must be 1-64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit")
        }
    }
}

public enum AdapterStoreError: Error, CustomStringConvertible, Equatable {
    case invalidID(String)
    case notFound(String)
    case otherTenant(id: String, tenant: String)

    public var description: String {
        switch self {
        case .invalidID(let s): return "invalid adapter id: \(s)"
        case .notFound(let s): return "no adapter \(s) in the hub"
        case .otherTenant(let id, let tenant): return "adapter \(id) belongs to another tenant than '\(tenant)'"
        }
    }
}

/// One stored adapter version.
public struct StoredAdapter: Sendable {
    public var id: AdapterID
    public var url: URL
    public var size: Int
    /// Identifies the file itself (device, inode, size, modification time): a version deleted
    /// and published again is a different file under the same id.
    public var stamp: [UInt64]
}

/// Adapters live at `tenants/<tenant>/adapters/<name>/<version>.graft`. A version is written
/// once, atomically, and never changed; publishing again makes the next version. A deleted
/// version leaves a `<version>.deleted` marker so its number is never issued again: an id with
/// a version always means the same weights.
extension Hub {
    public var tenantsDirectory: URL { root.appendingPathComponent("tenants", isDirectory: true) }

    func adapterDirectory(tenant: String, name: String) -> URL {
        tenantsDirectory.appendingPathComponent(tenant, isDirectory: true)
            .appendingPathComponent("adapters", isDirectory: true).appendingPathComponent(name, isDirectory: true)
    }

    func adapterURL(_ id: AdapterID, version: Int) -> URL {
        adapterDirectory(tenant: id.tenant, name: id.name).appendingPathComponent("\(version).graft")
    }

    /// Stored versions of an adapter, ascending.
    public func adapterVersions(tenant: String, name: String) -> [Int] {
        versionFiles(tenant: tenant, name: name, suffix: ".graft")
    }

    private func versionFiles(tenant: String, name: String, suffix: String) -> [Int] {
        let dir = adapterDirectory(tenant: tenant, name: name)
        let files = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return files.compactMap { f in
            // Only canonical numbers: "01.graft" or "+1.graft" are strays, not copies of version 1.
            guard f.hasSuffix(suffix), let v = Int(f.dropLast(suffix.count)), v >= 1, "\(v)\(suffix)" == f else { return nil }
            return v
        }.sorted()
    }

    /// The highest version ever issued, deleted ones included.
    private func lastIssuedVersion(tenant: String, name: String) -> Int {
        max(adapterVersions(tenant: tenant, name: name).last ?? 0,
            versionFiles(tenant: tenant, name: name, suffix: ".deleted").last ?? 0)
    }

    /// The stored file `id` names (its newest version when it names none). With `tenant`,
    /// an id of another tenant is refused.
    public func resolveAdapter(_ id: AdapterID, as tenant: String? = nil) throws -> StoredAdapter {
        if let tenant, tenant != id.tenant { throw AdapterStoreError.otherTenant(id: id.description, tenant: tenant) }
        let versions = adapterVersions(tenant: id.tenant, name: id.name)
        guard let version = id.version ?? versions.last, versions.contains(version) else {
            throw AdapterStoreError.notFound(id.version == nil || versions.isEmpty
                ? id.description : "\(id) (versions: \(versions.map(String.init).joined(separator: ", ")))")
        }
        let url = adapterURL(id, version: version)
        var st = stat()
        guard stat(url.path, &st) == 0 else { throw AdapterStoreError.notFound(id.with(version: version).description) }
        #if os(Linux)
        let modified = st.st_mtim
        #else
        let modified = st.st_mtimespec
        #endif
        return StoredAdapter(id: id.with(version: version), url: url, size: Int(st.st_size),
                             stamp: [UInt64(st.st_dev), UInt64(st.st_ino), UInt64(st.st_size),
                                     UInt64(modified.tv_sec), UInt64(modified.tv_nsec)])
    }

    /// The header of a stored adapter (enough for `GraftFile.summary`), without reading its
    /// tensors.
    public func adapterHeader(_ stored: StoredAdapter) throws -> [UInt8] {
        let length = try GraftFile.headerByteCount(try readFile(stored.url.path, limit: 8))
        return try readFile(stored.url.path, limit: length)
    }

    /// Stores `bytes` (an encoded .graft file) as the next version of `tenant/name`.
    @discardableResult
    public func publishAdapter(_ bytes: [UInt8], tenant: String, name: String) throws -> AdapterID {
        let id = try AdapterID(tenant: tenant, name: name)
        let (_, info) = try GraftFile.decode(bytes)  // never store something that does not decode in full
        guard info.tenant == tenant && info.name == name else {
            throw AdapterStoreError.invalidID("the file says it is \(info.tenant)/\(info.name), not \(tenant)/\(name)")
        }
        // Another writer may take a version first: creation without replace fails, try the next.
        for _ in 0..<100 {
            let version = lastIssuedVersion(tenant: tenant, name: name) + 1
            do {
                try AtomicFile.write(to: adapterURL(id, version: version), contents: bytes, replaceExisting: false)
                return id.with(version: version)
            } catch HubError.alreadyExists {
                continue
            }
        }
        throw HubError.io(path: adapterDirectory(tenant: tenant, name: name).path, message: "could not claim a new version")
    }

    /// Every stored version, optionally of one tenant, sorted by id.
    public func listAdapters(tenant: String? = nil) -> [StoredAdapter] {
        let fm = FileManager.default
        let tenants = tenant.map { [$0] } ?? ((try? fm.contentsOfDirectory(atPath: tenantsDirectory.path)) ?? []).sorted()
        var out: [StoredAdapter] = []
        for t in tenants where (try? AdapterID.validate(t, what: "tenant")) != nil {
            let dir = tenantsDirectory.appendingPathComponent(t).appendingPathComponent("adapters")
            for name in ((try? fm.contentsOfDirectory(atPath: dir.path)) ?? []).sorted() {
                guard let base = try? AdapterID(tenant: t, name: name) else { continue }
                for v in adapterVersions(tenant: t, name: name) {
                    if let stored = try? resolveAdapter(base.with(version: v)) { out.append(stored) }
                }
            }
        }
        return out
    }

    /// Deletes one version, or every version when `id` names none. Returns what was deleted.
    @discardableResult
    public func deleteAdapter(_ id: AdapterID, as tenant: String? = nil) throws -> [AdapterID] {
        if let tenant, tenant != id.tenant { throw AdapterStoreError.otherTenant(id: id.description, tenant: tenant) }
        let versions = id.version.map { [$0] } ?? adapterVersions(tenant: id.tenant, name: id.name)
        guard !versions.isEmpty, versions.allSatisfy(adapterVersions(tenant: id.tenant, name: id.name).contains) else {
            throw AdapterStoreError.notFound(id.description)
        }
        let dir = adapterDirectory(tenant: id.tenant, name: id.name)
        var deleted: [AdapterID] = []
        for v in versions {
            // The marker first: a crash in between leaves the version reserved, never reissued.
            try AtomicFile.write(to: dir.appendingPathComponent("\(v).deleted"), contents: [UInt8]())
            let url = adapterURL(id, version: v)
            if unlink(url.path) == 0 {
                deleted.append(id.with(version: v))
            } else if errno != ENOENT {  // ENOENT: a concurrent delete took it first
                throw HubError.io(path: url.path, message: String(cString: strerror(errno)))
            }
        }
        syncDirectory(dir)
        guard !deleted.isEmpty else { throw AdapterStoreError.notFound(id.description) }
        return deleted
    }

    private func syncDirectory(_ url: URL) {
        let fd = open(url.path, O_RDONLY | O_DIRECTORY)
        if fd >= 0 { _ = fsync(fd); close(fd) }
    }
}
