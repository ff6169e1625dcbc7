import Foundation

/// Where a catalog model's file comes from: a member of a Python wheel fetched with pip
/// (`pip-wheel`), or a file a user added with `graft models add`, copied into the hub
/// (`file`) or linked where it lies (`link`, `path` says where).
public struct ModelSource: Codable, Equatable, Sendable {
    /// `pip-wheel`, `file` or `link`.
    public var kind: String
    /// The Python package (distribution) name.
    public var package: String
    /// The exact package version.
    public var version: String
    /// The path of the model file inside the wheel.
    public var member: String

    /// The file a `file` source was copied from or a `link` source points at.
    public var path: String?

    /// Creates a source description.
    public init(kind: String = "pip-wheel", package: String, version: String, member: String, path: String? = nil) {
        self.kind = kind
        self.package = package
        self.version = version
        self.member = member
        self.path = path
    }

    /// A file added by a user.
    public static func added(path: String, linked: Bool) -> ModelSource {
        ModelSource(kind: linked ? "link" : "file", package: "", version: "", member: "", path: path)
    }

    enum CodingKeys: String, CodingKey { case kind, package, version, member, path }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kind = try c.decode(String.self, forKey: .kind)
        package = try c.decodeIfPresent(String.self, forKey: .package) ?? ""
        version = try c.decodeIfPresent(String.self, forKey: .version) ?? ""
        member = try c.decodeIfPresent(String.self, forKey: .member) ?? ""
        path = try c.decodeIfPresent(String.self, forKey: .path)
    }
}

/// A base model the hub knows, as listed in `catalog.json`.
public struct CatalogModel: Codable, Equatable, Sendable {
    /// The model's name in the hub (also its directory under `models/`).
    public var name: String
    /// True for the model used when none is named.
    public var isDefault: Bool
    /// A human readable description.
    public var description: String?
    /// The file name the model is stored under.
    public var file: String
    /// The exact size of the file in bytes.
    public var size: UInt64
    /// The lowercase hexadecimal SHA-256 of the file.
    public var sha256: String
    /// Where the file is fetched from.
    public var source: ModelSource
    /// `general.architecture` of the file, when known.
    public var architecture: String?

    enum CodingKeys: String, CodingKey {
        case name, isDefault = "default", description, file, size, sha256, source, architecture
    }

    /// Creates a catalog entry.
    public init(name: String, isDefault: Bool = false, description: String? = nil, file: String,
                size: UInt64, sha256: String, source: ModelSource) {
        self.name = name
        self.isDefault = isDefault
        self.description = description
        self.file = file
        self.size = size
        self.sha256 = sha256
        self.source = source
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        isDefault = try container.decodeIfPresent(Bool.self, forKey: .isDefault) ?? false
        description = try container.decodeIfPresent(String.self, forKey: .description)
        file = try container.decode(String.self, forKey: .file)
        size = try container.decode(UInt64.self, forKey: .size)
        sha256 = try container.decode(String.self, forKey: .sha256)
        source = try container.decode(ModelSource.self, forKey: .source)
        architecture = try container.decodeIfPresent(String.self, forKey: .architecture)
    }
}

/// The list of base models the hub can pull (`<root>/catalog.json`).
public struct Catalog: Codable, Equatable, Sendable {
    /// The models, in file order.
    public var models: [CatalogModel]

    /// Creates a catalog from a list of models.
    public init(models: [CatalogModel]) {
        self.models = models
    }

    /// Loads and validates the catalog at `url`.
    /// - Throws: `HubError.catalogMissing` if there is no file, `HubError.catalogInvalid` with the
    ///   decoding error or the failed rule otherwise.
    public static func load(from url: URL) throws -> Catalog {
        let path = url.path
        guard FileManager.default.fileExists(atPath: path) else { throw HubError.catalogMissing(path: path) }
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw HubError.io(path: path, message: error.localizedDescription)
        }
        let catalog: Catalog
        do {
            catalog = try JSONDecoder().decode(Catalog.self, from: data)
        } catch {
            throw HubError.catalogInvalid(path: path, reason: describe(error))
        }
        try catalog.validate(path: path)
        return catalog
    }

    /// The names of all models.
    public var names: [String] { models.map(\.name) }

    /// The model marked as default (the first one if several are marked).
    public var defaultModel: CatalogModel? { models.first { $0.isDefault } }

    /// The model called `name`, or the default model when `name` is nil.
    /// - Throws: `HubError.unknownModel` listing the known names, or `HubError.noDefaultModel`.
    public func model(named name: String?, catalogPath: String = "catalog.json") throws -> CatalogModel {
        guard let name else {
            guard let model = defaultModel else { throw HubError.noDefaultModel(catalog: catalogPath) }
            return model
        }
        guard let model = models.first(where: { $0.name == name }) else {
            throw HubError.unknownModel(name: name, known: names)
        }
        return model
    }

    /// Checks the rules the hub relies on: unique, path-safe names and files, and 64-digit hex digests.
    public func validate(path: String) throws {
        var seen = Set<String>()
        for model in models {
            guard Self.isSafeComponent(model.name) else {
                throw HubError.catalogInvalid(path: path, reason: "model name \"\(model.name)\" is not a plain directory name")
            }
            guard seen.insert(model.name).inserted else {
                throw HubError.catalogInvalid(path: path, reason: "model \(model.name) is listed twice")
            }
            guard Self.isSafeComponent(model.file), !model.file.hasSuffix(".sha256") else {
                throw HubError.catalogInvalid(path: path, reason: "file \"\(model.file)\" of \(model.name) is not a plain file name")
            }
            guard model.source.kind != "pip-wheel" || (Self.isSafeRequirementPart(model.source.package)
                    && Self.isSafeRequirementPart(model.source.version) && !model.source.member.isEmpty) else {
                throw HubError.catalogInvalid(
                    path: path, reason: "source of \(model.name) needs a plain package name, version and member")
            }
            let hexDigits = model.sha256.utf8.allSatisfy { (48 ... 57).contains($0) || (97 ... 102).contains($0) }
            guard model.sha256.utf8.count == 64, hexDigits else {
                throw HubError.catalogInvalid(
                    path: path, reason: "sha256 of \(model.name) must be 64 lowercase hexadecimal digits")
            }
        }
    }

    static func isSafeComponent(_ text: String) -> Bool {
        !text.isEmpty && text != "." && text != ".." && !text.hasPrefix(".")
            && !text.contains("/") && !text.contains("\\") && !text.contains("\0")
    }

    /// Package names and versions are passed to pip as one argument: no option-like or odd text.
    static func isSafeRequirementPart(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, first != "-" else { return false }
        return text.unicodeScalars.allSatisfy {
            ($0.isASCII && ($0.properties.isAlphabetic || ("0" ... "9").contains($0))) || "._-+!".unicodeScalars.contains($0)
        }
    }

    private static func describe(_ error: Error) -> String {
        guard let decoding = error as? DecodingError else { return String(describing: error) }
        func at(_ context: DecodingError.Context) -> String {
            let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return path.isEmpty ? "" : " at \(path)"
        }
        switch decoding {
        case let .keyNotFound(key, context):
            return "missing key \"\(key.stringValue)\"\(at(context))"
        case let .typeMismatch(type, context):
            return "expected \(type)\(at(context)): \(context.debugDescription)"
        case let .valueNotFound(type, context):
            return "missing \(type) value\(at(context))"
        case let .dataCorrupted(context):
            let underlying = context.underlyingError.map { " (\($0.localizedDescription))" } ?? ""
            return "not valid JSON\(at(context)): \(context.debugDescription)\(underlying)"
        @unknown default:
            return String(describing: decoding)
        }
    }
}
