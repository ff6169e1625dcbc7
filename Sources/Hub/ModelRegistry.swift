import AdapterFormat
import Crypto
import Foundation
import LlamaModel

/// What `addModel` learnt of a file by loading it.
public struct ModelCheck: Sendable {
    public var architecture: String
    public var description: String

    public init(architecture: String, description: String) {
        self.architecture = architecture; self.description = description
    }

    /// Loads the file as the daemon would (configuration, every tensor's shape and type,
    /// tokenizer, chat template) and describes it; throws the first reason it cannot run.
    public static func load(_ url: URL) throws -> ModelCheck {
        let model = try LlamaModel(path: url.path)
        if let error = model.tokenizer.chatTemplateError {
            throw HubError.modelRefused(path: url.path, reason: "its chat template cannot be used: \(error)")
        }
        let c = model.config
        let types = Set(model.weights.layers.flatMap { l in Projection.allCases.map { l.matrix($0).format.rawValue } })
        return ModelCheck(architecture: c.architecture, description: "\(model.name): \(c.architecture), \(c.layers) layers, "
            + "\(c.dim) wide, \(c.heads)/\(c.kvHeads) heads, vocabulary \(c.vocabularySize), context \(c.contextLength), "
            + "weights \(types.sorted().joined(separator: "/")) (\(model.weights.byteCount >> 20) MiB in memory)")
    }
}

extension Hub {
    /// Registers the GGUF file at `source` as base model `name` (default: the file name
    /// without `.gguf`): checks that Graft can run it, hashes it, copies it into
    /// `models/<name>/` (or links it there with `link`), and adds it to the catalog last, so a
    /// failure at any step leaves the hub as it was.
    public func addModel(at source: URL, name: String? = nil, link: Bool = false, makeDefault: Bool = false,
                         check: (URL) throws -> ModelCheck = ModelCheck.load,
                         progress: (String) -> Void = { _ in }) throws -> CatalogModel {
        let source = source.standardizedFileURL
        guard let size = Self.fileSize(source) else { throw HubError.io(path: source.path, message: "no such file") }
        let name = name ?? Self.modelName(forFile: source.lastPathComponent)
        var catalog = try self.catalog()
        guard Catalog.isSafeComponent(name) else {
            throw HubError.modelRefused(path: source.path, reason: "'\(name)' is not a plain name (use --name)")
        }
        guard !catalog.names.contains(name) else {
            throw HubError.modelRefused(path: source.path, reason: "the hub already has a model called \(name) (use --name)")
        }
        progress("checking \(source.lastPathComponent)")
        let checked = try check(source)
        progress(checked.description)
        let directory = modelsDirectory.appendingPathComponent(name, isDirectory: true)
        let file = source.lastPathComponent
        let destination = directory.appendingPathComponent(file)
        guard !FileManager.default.fileExists(atPath: directory.path) else {
            throw HubError.alreadyExists(path: directory.path)
        }
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let digest: String
            if link {
                progress("hashing \(source.path)")
                digest = try Checksum.sha256Hex(ofFile: source)
                try FileManager.default.createSymbolicLink(at: destination, withDestinationURL: source)
            } else {
                progress("copying \(size >> 20) MiB into \(directory.path)")
                digest = try Self.copy(source, to: destination)
            }
            try writeSidecar(for: destination, digest: digest)
            var model = CatalogModel(name: name, description: checked.description, file: file, size: size, sha256: digest,
                                     source: .added(path: source.path, linked: link))
            model.architecture = checked.architecture
            if makeDefault {
                for i in catalog.models.indices { catalog.models[i].isDefault = false }
                model.isDefault = true
            }
            catalog.models.append(model)
            try writeCatalog(catalog)
            return model
        } catch {
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
    }

    /// Removes base model `name` from the catalog and its directory under `models/` (a linked
    /// file itself stays). Refused while adapters were made for it or while it is the default,
    /// unless `force`. Returns the adapters left without their base.
    @discardableResult
    public func removeModel(_ name: String, force: Bool = false) throws -> [AdapterID] {
        var catalog = try self.catalog()
        let model = try catalog.model(named: name, catalogPath: catalogURL.path)
        let dependents = adapters(madeFor: model)
        if !force {
            if !dependents.isEmpty {
                throw HubError.modelInUse(model: name, adapters: dependents.map(\.description))
            }
            if model.isDefault {
                throw HubError.modelInUse(model: name, adapters: [], isDefault: true)
            }
        }
        catalog.models.removeAll { $0.name == name }
        try writeCatalog(catalog)
        try? FileManager.default.removeItem(at: modelsDirectory.appendingPathComponent(name, isDirectory: true))
        return dependents
    }

    /// The stored adapter versions whose recorded base is `model` (by SHA-256, or by name
    /// when an adapter recorded none).
    public func adapters(madeFor model: CatalogModel) -> [AdapterID] {
        listAdapters().compactMap { stored in
            guard let info = try? GraftFile.summary(adapterHeader(stored)).info else { return nil }
            let match = info.baseModelSHA256.isEmpty ? info.baseModel == model.name : info.baseModelSHA256 == model.sha256
            return match ? stored.id : nil
        }
    }

    func writeCatalog(_ catalog: Catalog) throws {
        try catalog.validate(path: catalogURL.path)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(to: catalogURL, contents: try encoder.encode(catalog))
    }

    /// `Qwen2.5-1.5B-Instruct-Q4_K_M.gguf` → `qwen2.5-1.5b-instruct-q4_k_m`.
    static func modelName(forFile file: String) -> String {
        var base = file
        if base.lowercased().hasSuffix(".gguf") { base.removeLast(5) }
        let allowed = base.lowercased().unicodeScalars.map { s -> Character in
            s.isASCII && (s.properties.isAlphabetic || ("0"..."9").contains(s) || "._-".unicodeScalars.contains(s)) ? Character(s) : "-"
        }
        let name = String(allowed)
        return name.hasPrefix(".") || name.isEmpty ? "model" + name : name
    }

    /// Copies `source` to `destination` atomically, returning the SHA-256 of what was written.
    static func copy(_ source: URL, to destination: URL) throws -> String {
        guard let input = InputStream(url: source) else { throw HubError.io(path: source.path, message: "cannot open") }
        input.open()
        defer { input.close() }
        var hasher = SHA256()
        let chunk = 1 << 20
        var buffer = [UInt8](repeating: 0, count: chunk)
        try AtomicFile.write(to: destination, replaceExisting: false) { writer in
            while true {
                let n = input.read(&buffer, maxLength: chunk)
                if n < 0 { throw HubError.io(path: source.path, message: input.streamError?.localizedDescription ?? "read failed") }
                if n == 0 { break }
                try buffer.withUnsafeBytes { raw in
                    let part = UnsafeRawBufferPointer(rebasing: raw[0..<n])
                    hasher.update(bufferPointer: part)
                    try writer.write(part)
                }
            }
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}
