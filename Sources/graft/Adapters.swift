import AdapterFormat
import ArgumentParser
import Foundation
import GGUF
import Hub
import LlamaModel

struct Adapters: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage LoRA adapters in the hub (ids are tenant/name or tenant/name@version).",
        subcommands: [AdaptersList.self, AdaptersShow.self, AdaptersImport.self, AdaptersExport.self,
                      AdaptersDelete.self, AdaptersMerge.self, AdaptersFold.self])
}

extension StorageType: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: argument.uppercased()) }
}

/// The base model's configuration and identity, without loading its weights.
struct BaseModel {
    let config: LlamaConfig
    let name: String
    let sha256: String

    init(_ options: ModelOptions) throws {
        let gguf = try GGUFFile(path: try options.modelPath())
        config = try LlamaConfig(gguf: gguf)
        name = options.displayName()
        sha256 = options.catalogSHA256() ?? ""
    }
}

func readAdapter(_ hub: Hub, _ text: String) throws -> (AdapterID, LoRAAdapter, AdapterInfo) {
    let stored = try hub.resolveAdapter(AdapterID(parsing: text))
    let (adapter, info) = try GraftFile.decode([UInt8](Data(contentsOf: stored.url)))
    return (stored.id, adapter, info)
}

struct AdaptersList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List stored adapter versions.")
    @OptionGroup var registryOptions: RegistryOptions
    @OptionGroup var daemonOptions: DaemonOptions
    @Option(help: "Only this tenant's adapters.") var tenant: String?

    func run() async throws {
        if let client = daemonOptions.client(for: registryOptions.hub) {
            let query = tenant.map { "?tenant=\($0)" } ?? ""
            let list = try await client.call(.GET, "/v1/adapters\(query)")["data"] as? [[String: Any]] ?? []
            if list.isEmpty { print("no adapters") }
            for a in list {
                let modules = (a["target_modules"] as? [String] ?? []).joined(separator: ",")
                print("\(a["id"] as? String ?? "?")  \(a["bytes"] as? Int ?? 0) bytes  rank \(a["rank"] as? Int ?? 0), \(modules), base \(a["base_model"] as? String ?? "?")")
            }
            return
        }
        let all = registryOptions.hub.listAdapters(tenant: tenant)
        if all.isEmpty { print("no adapters in \(registryOptions.hub.root.path)"); return }
        for a in all {
            let summary = try? GraftFile.summary(registryOptions.hub.adapterHeader(a))
            let detail = summary.map { "rank \($0.rank), \($0.targetModules.joined(separator: ",")), base \($0.info.baseModel)" } ?? "unreadable"
            print("\(a.id)  \(a.size) bytes  \(detail)")
        }
    }
}

struct AdaptersShow: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show an adapter's rank, modules, base model, sizes, metadata and versions.")
    @OptionGroup var registryOptions: RegistryOptions
    @Argument(help: "tenant/name[@version]") var id: String

    func run() throws {
        let hub = registryOptions.hub
        let stored = try hub.resolveAdapter(AdapterID(parsing: id))
        let s = try GraftFile.summary(hub.adapterHeader(stored))
        print("id:            \(stored.id)")
        print("file:          \(stored.url.path)")
        print("rank / alpha:  \(s.rank) / \(s.alpha)\(s.useRSLoRA ? " (rsLoRA)" : "")")
        print("modules:       \(s.targetModules.joined(separator: ", ")) (\(s.pairCount) pairs, \(s.parameterCount) parameters)")
        print("base model:    \(s.info.baseModel) sha256 \(s.info.baseModelSHA256.isEmpty ? "(unknown)" : s.info.baseModelSHA256)")
        print("created:       \(ISO8601DateFormatter().string(from: s.info.created))")
        print(String(format: "size:          %d bytes on disk, %d bytes as float32 (%.2fx), %@%@", s.storedBytes, s.rawFloat32Bytes,
                     Double(s.rawFloat32Bytes) / Double(max(1, s.storedBytes)),
                     s.dtypes.map(\.rawValue).joined(separator: "/"), s.compressed ? ", zlib" : ""))
        for (k, v) in s.info.extra.sorted(by: { $0.key < $1.key }) { print("meta \(k): \(v)") }
        let versions = hub.adapterVersions(tenant: stored.id.tenant, name: stored.id.name)
        print("versions:      \(versions.map(String.init).joined(separator: ", "))")
    }
}

struct AdaptersImport: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "import", abstract: "Import a PEFT LoRA adapter directory into the hub.")
    @OptionGroup var modelOptions: ModelOptions
    @Argument(help: "Directory with adapter_config.json and adapter_model.safetensors.") var directory: String
    @Option(help: "Owning tenant.") var tenant: String
    @Option(help: "Adapter name.") var name: String
    @Option(help: "Storage type in the hub: f32, bf16 or f16.") var dtype: StorageType = GraftFile.defaultStorage

    func run() throws {
        let base = try BaseModel(modelOptions)
        _ = try AdapterID(tenant: tenant, name: name)
        let adapter = try PEFTAdapter.read(directory: URL(fileURLWithPath: directory), config: base.config)
        let info = AdapterInfo(baseModel: base.name, baseModelSHA256: base.sha256, tenant: tenant, name: name,
                               extra: ["source": "peft-import"])
        let bytes = try GraftFile.encode(adapter, info: info, dtype: dtype)
        let id = try modelOptions.registryOptions.hub.publishAdapter(bytes, tenant: tenant, name: name)
        print("imported \(id): rank \(adapter.rank), \(adapter.pairs.count) pairs, \(bytes.count) bytes")
    }
}

struct AdaptersExport: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "export", abstract: "Write an adapter in PEFT format.")
    @OptionGroup var modelOptions: ModelOptions
    @Argument(help: "tenant/name[@version]") var id: String
    @Option(help: "Output format (peft).") var format = "peft"
    @Argument(help: "Output directory.") var output: String
    @Option(help: "safetensors element type: f32, bf16 or f16.") var dtype: StorageType = .f32

    func run() throws {
        guard format == "peft" else { throw ValidationError("unknown --format '\(format)' (supported: peft)") }
        let base = try BaseModel(modelOptions)
        let (resolved, adapter, info) = try readAdapter(modelOptions.registryOptions.hub, id)
        try PEFTAdapter.write(adapter, config: base.config, baseModelName: info.baseModel, to: URL(fileURLWithPath: output), dtype: dtype)
        print("exported \(resolved) to \(output)")
    }
}

struct AdaptersDelete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delete", abstract: "Delete one version, or all versions of an adapter.")
    @OptionGroup var registryOptions: RegistryOptions
    @OptionGroup var daemonOptions: DaemonOptions
    @Argument(help: "tenant/name (all versions) or tenant/name@version") var id: String

    func run() async throws {
        if let client = daemonOptions.client(for: registryOptions.hub) {
            let answer = try await client.call(.DELETE, "/v1/adapters/\(id)")
            print("deleted \(id) versions \((answer["versions"] as? [Int] ?? []).map(String.init).joined(separator: ", "))")
            return
        }
        let deleted = try registryOptions.hub.deleteAdapter(AdapterID(parsing: id))
        print("deleted " + deleted.map(\.description).joined(separator: ", "))
    }
}

struct AdaptersFold: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fold", abstract: "Bake an adapter into a copy of the base model (a GGUF file).")
    @OptionGroup var modelOptions: ModelOptions
    @Argument(help: "tenant/name[@version]") var id: String
    @Option(help: "Output .gguf file.") var output: String
    @Option(help: "Type of the merged weights: f32 or f16.") var type = "f32"

    func run() throws {
        let ggmlType: GGMLType
        switch type.lowercased() {
        case "f32": ggmlType = .f32
        case "f16": ggmlType = .f16
        default: throw ValidationError("--type must be f32 or f16")
        }
        let (resolved, adapter, _) = try readAdapter(modelOptions.registryOptions.hub, id)
        let source = try GGUFFile(path: try modelOptions.modelPath())
        Terminal.note("folding \(resolved) into \(modelOptions.displayName())...")
        let bytes = try LlamaModel.foldedGGUF(source: source, adapter: adapter, type: ggmlType,
                                               name: "\(source.string("general.name") ?? "model") + \(resolved)")
        try AtomicFile.write(to: URL(fileURLWithPath: output), contents: bytes)
        print("wrote \(output) (\(bytes.count) bytes)")
    }
}
