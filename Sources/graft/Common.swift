import ArgumentParser
import Foundation
import GGUF
import Hub
import LlamaModel

struct RegistryOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Hub directory (default: $GRAFT_REGISTRY, else ./Registry).", valueName: "dir"))
    var registry: String?

    var hub: Hub { Hub(root: Hub.resolveRoot(explicit: registry)) }
}

struct ModelOptions: ParsableArguments {
    @OptionGroup var registryOptions: RegistryOptions

    @Option(name: .long, help: ArgumentHelp("A model name from the hub's catalog, or a path to a .gguf file (default: the catalog's default model).", valueName: "name|path"))
    var model: String?

    /// The GGUF file to load.
    func modelPath() throws -> String {
        if let model, model.hasSuffix(".gguf") || model.contains("/") {
            guard FileManager.default.fileExists(atPath: model) else { throw CLIError("no such model file: \(model)") }
            return model
        }
        return try registryOptions.hub.modelPath(model).path
    }

    /// The catalog's SHA-256 of the model when it comes from the hub (nil for a file path).
    func catalogSHA256() -> String? {
        if let model, model.hasSuffix(".gguf") || model.contains("/") { return nil }
        return try? registryOptions.hub.catalog().model(named: model).sha256
    }

    /// The catalog entry's name, or the file name for a path.
    func displayName() -> String {
        if let model, model.hasSuffix(".gguf") || model.contains("/") { return (model as NSString).lastPathComponent }
        return (try? registryOptions.hub.catalog().model(named: model).name) ?? "model"
    }

    func load(verbose: Bool = false, storage: LlamaWeights.Storage = .quantized) throws -> LlamaModel {
        let path = try modelPath()
        let t0 = Clock.now
        let model = try LlamaModel(path: path, storage: storage)
        if verbose {
            Terminal.note(String(format: "loaded %@ (%@) in %.2f s", model.name, (path as NSString).lastPathComponent, Clock.now - t0))
        }
        return model
    }
}

struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

enum Terminal {
    /// A status line on standard error, so standard output stays clean for data.
    static func note(_ s: String) {
        FileHandle.standardError.write(Data((s + "\n").utf8))
    }

    static func write(_ s: String) {
        FileHandle.standardOutput.write(Data(s.utf8))
    }
}

/// Peak resident set size of this process in bytes (VmHWM).
func peakRSS() -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let kb = line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
        return kb.map { $0 * 1024 }
    }
    return nil
}
