import ArgumentParser
import GGUF

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a GGUF file's architecture, metadata and tensor table.")

    @Argument(help: "The .gguf file.")
    var file: String

    @Flag(help: "Print metadata only, not the tensor table.")
    var metadataOnly = false

    func run() throws {
        let gguf = try GGUFFile(path: file)
        print("file: \(file)")
        print("GGUF version \(gguf.version), \(gguf.metadata.count) metadata keys, \(gguf.tensors.count) tensors, alignment \(gguf.alignment), data at offset \(gguf.dataOffset)")
        print("architecture: \(gguf.string("general.architecture") ?? "(none)")")
        print("\nmetadata:")
        for key in gguf.metadataKeys {
            print("  \(key) = \(gguf.metadata[key]!.summary)")
        }
        if metadataOnly { return }
        print("\ntensors:")
        let width = gguf.tensors.map(\.name.count).max() ?? 0
        var counts: [String: Int] = [:]
        for t in gguf.tensors {
            counts[t.type.name, default: 0] += t.elementCount
            let name = t.name.padding(toLength: width, withPad: " ", startingAt: 0)
            let dims = t.dimensions.map(String.init).joined(separator: " x ")
            let type = t.type.name.padding(toLength: 5, withPad: " ", startingAt: 0)
            print("  \(name)  \(type)  [\(dims)]  \(t.byteCount) bytes at +\(t.relativeOffset)")
        }
        let total = counts.values.reduce(0, +)
        print("\nparameters: \(total) (" + counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ")")
    }
}
