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
    static let configuration = CommandConfiguration(abstract: "List the base models the hub knows and which are pulled.")

    @OptionGroup var registryOptions: RegistryOptions

    func run() throws {
        let hub = registryOptions.hub
        let catalog = try hub.catalog()
        let installed = Dictionary(uniqueKeysWithValues: hub.installedModels().map { ($0.name, $0) })
        print("hub: \(hub.root.path)")
        for m in catalog.models {
            let mark = m.isDefault ? "*" : " "
            if let i = installed[m.name] {
                print("\(mark) \(m.name)  pulled\(i.verified ? ", verified" : "")  \(i.size) bytes  \(i.path.path)")
            } else {
                print("\(mark) \(m.name)  not pulled (graft pull \(m.name))")
            }
        }
    }
}
