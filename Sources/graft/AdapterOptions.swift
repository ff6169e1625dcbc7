import AdapterFormat
import ArgumentParser
import Foundation
import Hub
import LlamaModel

/// `--adapter SPEC` (repeatable): a hub id (`tenant/name[@version]`) or a PEFT directory,
/// optionally followed by `:weight`; several make a weighted mix.
struct AdapterOptions: ParsableArguments {
    @Option(name: .customLong("adapter"), parsing: .singleValue,
            help: ArgumentHelp("Apply an adapter: tenant/name[@version] from the hub or a PEFT directory, with an optional :weight (repeat to mix).", valueName: "id[:weight]"))
    var specs: [String] = []

    struct Spec {
        var source: String
        var weight: Float
    }

    static func parse(_ spec: String) throws -> Spec {
        if let colon = spec.lastIndex(of: ":"), let w = Float(spec[spec.index(after: colon)...]) {
            guard w.isFinite else { throw ValidationError("adapter weight in '\(spec)' is not finite") }
            return Spec(source: String(spec[..<colon]), weight: w)
        }
        return Spec(source: spec, weight: 1)
    }

    /// Whether an adapter is a PEFT directory on this machine (only the in-process path reads those).
    var hasLocalDirectory: Bool {
        specs.contains { text in
            var isDirectory: ObjCBool = false
            let source = (try? Self.parse(text).source) ?? text
            return FileManager.default.fileExists(atPath: source, isDirectory: &isDirectory) && isDirectory.boolValue
        }
    }

    /// Loads every adapter and returns the mix, plus a description for status lines.
    func mix(for model: LlamaModel, modelOptions: ModelOptions) throws -> (AdapterMix, [String]) {
        if specs.isEmpty { return (.none, []) }
        let loader = AdapterLoader(hub: modelOptions.registryOptions.hub, config: model.config,
                                   baseModelSHA256: modelOptions.catalogSHA256())
        var entries: [(adapter: PreparedAdapter, weight: Float)] = []
        var names: [String] = []
        for text in specs {
            let spec = try Self.parse(text)
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: spec.source, isDirectory: &isDirectory), isDirectory.boolValue {
                let adapter = try PEFTAdapter.read(directory: URL(fileURLWithPath: spec.source), config: model.config)
                entries.append((try PreparedAdapter(adapter, config: model.config), spec.weight))
                names.append("\(spec.source) (PEFT) x\(spec.weight)")
            } else {
                let loaded = try loader.load(try AdapterID(parsing: spec.source))
                entries.append((loaded.adapter, spec.weight))
                names.append("\(loaded.id) x\(spec.weight)")
            }
        }
        return (AdapterMix(entries), names)
    }
}
