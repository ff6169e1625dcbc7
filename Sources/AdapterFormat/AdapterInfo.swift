import Foundation
import LlamaModel

/// Who an adapter belongs to and what it was trained on: the identity fields of a `.graft`
/// file's metadata. (Rank, alpha and the tensors live in the `LoRAAdapter`.)
public struct AdapterInfo: Equatable, Sendable {
    /// The base model's name, e.g. "smollm2-135m-instruct".
    public var baseModel: String
    /// Hex SHA-256 of the base model file the adapter was trained against.
    public var baseModelSHA256: String
    public var tenant: String
    public var name: String
    /// Creation time; stored as ISO-8601 to the second, so sub-second parts are dropped.
    public var created: Date
    /// Further string metadata (training config JSON, final metrics...); merged on encode with
    /// the adapter's own `metadata`, and equal to it after decode.
    public var extra: [String: String]

    public init(baseModel: String, baseModelSHA256: String, tenant: String, name: String,
                created: Date = Date(), extra: [String: String] = [:]) {
        self.baseModel = baseModel; self.baseModelSHA256 = baseModelSHA256
        self.tenant = tenant; self.name = name
        self.created = Date(timeIntervalSince1970: created.timeIntervalSince1970.rounded(.down))
        self.extra = extra
    }
}

/// What `adapters show` prints about a `.graft` file, read from its header alone.
public struct GraftSummary: Equatable, Sendable {
    public var info: AdapterInfo
    public var rank: Int
    public var alpha: Float
    public var useRSLoRA: Bool
    /// PEFT module names (q_proj, ...), in model order.
    public var targetModules: [String]
    /// Number of (layer, projection) pairs.
    public var pairCount: Int
    public var parameterCount: Int
    /// Storage dtypes in use (normally one).
    public var dtypes: [StorageType]
    /// Whether any tensor is zlib-compressed.
    public var compressed: Bool
    /// Size of the whole file on disk.
    public var storedBytes: Int
    /// What the parameters take as Float32 in memory.
    public var rawFloat32Bytes: Int { parameterCount * 4 }
}

/// The `__metadata__` keys of a `.graft` file, and their conversion to and from values.
enum GraftMetadata {
    static let format = "graft-adapter"
    static let version = "1"

    enum Key {
        static let format = "format", formatVersion = "format_version"
        static let baseModel = "base_model", baseModelSHA256 = "base_model_sha256"
        static let rank = "rank", alpha = "alpha", useRSLoRA = "use_rslora", targetModules = "target_modules"
        static let tenant = "tenant", name = "name", created = "created"
    }

    static let reserved: Set<String> = [
        Key.format, Key.formatVersion, Key.baseModel, Key.baseModelSHA256, Key.rank, Key.alpha,
        Key.useRSLoRA, Key.targetModules, Key.tenant, Key.name, Key.created,
    ]

    /// All metadata of a file: the format's own keys plus the free-form pairs of `info` and
    /// `adapter`, which may neither use a reserved key nor disagree with each other.
    static func encode(_ adapter: LoRAAdapter, info: AdapterInfo) throws -> [String: String] {
        var out = info.extra
        for (key, value) in adapter.metadata {
            if let existing = out[key], existing != value { throw AdapterFormatError.conflictingMetadata(key: key) }
            out[key] = value
        }
        if let key = out.keys.sorted().first(where: reserved.contains) {
            throw AdapterFormatError.reservedMetadataKey(key)
        }
        out[Key.format] = format
        out[Key.formatVersion] = version
        out[Key.baseModel] = info.baseModel
        out[Key.baseModelSHA256] = info.baseModelSHA256
        out[Key.rank] = String(adapter.rank)
        out[Key.alpha] = "\(adapter.alpha)"
        out[Key.useRSLoRA] = adapter.useRSLoRA ? "true" : "false"
        out[Key.targetModules] = adapter.projections.map(\.rawValue).joined(separator: ",")
        out[Key.tenant] = info.tenant
        out[Key.name] = info.name
        out[Key.created] = info.created.formatted(.iso8601)
        return out
    }

    /// The checked contents of a file's metadata.
    struct Decoded {
        var info: AdapterInfo
        var rank: Int
        var alpha: Float
        var useRSLoRA: Bool
        var targetModules: [String]
    }

    static func decode(_ metadata: [String: String]) throws -> Decoded {
        func require(_ key: String) throws -> String {
            guard let v = metadata[key] else { throw AdapterFormatError.invalidMetadata(key: key, reason: "missing") }
            return v
        }
        let fmt = try require(Key.format)
        guard fmt == format else {
            throw AdapterFormatError.invalidMetadata(key: Key.format, reason: "is '\(fmt)', expected '\(format)'")
        }
        let v = try require(Key.formatVersion)
        guard v == version else { throw AdapterFormatError.unsupportedFormatVersion(v) }
        let rankText = try require(Key.rank)
        guard let rank = Int(rankText), rank > 0 else {
            throw AdapterFormatError.invalidMetadata(key: Key.rank, reason: "'\(rankText)' is not a positive integer")
        }
        let alphaText = try require(Key.alpha)
        guard let alpha = Float(alphaText), alpha.isFinite else {
            throw AdapterFormatError.invalidMetadata(key: Key.alpha, reason: "'\(alphaText)' is not a finite number")
        }
        let rsText = try require(Key.useRSLoRA)
        guard rsText == "true" || rsText == "false" else {
            throw AdapterFormatError.invalidMetadata(key: Key.useRSLoRA, reason: "'\(rsText)' is not true or false")
        }
        let createdText = try require(Key.created)
        guard let created = try? Date(createdText, strategy: .iso8601) else {
            throw AdapterFormatError.invalidMetadata(key: Key.created, reason: "'\(createdText)' is not an ISO-8601 time")
        }
        let modules = try require(Key.targetModules)
        let extra = metadata.filter { !reserved.contains($0.key) }
        let info = AdapterInfo(baseModel: try require(Key.baseModel), baseModelSHA256: try require(Key.baseModelSHA256),
                               tenant: try require(Key.tenant), name: try require(Key.name),
                               created: created, extra: extra)
        return Decoded(info: info, rank: rank, alpha: alpha, useRSLoRA: rsText == "true",
                       targetModules: modules.isEmpty ? [] : modules.split(separator: ",").map(String.init))
    }
}
