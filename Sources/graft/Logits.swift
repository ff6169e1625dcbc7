import ArgumentParser
import Foundation

struct Logits: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the float32 logits of the last N positions of a token sequence.",
        discussion: "The output is raw little-endian float32, row-major [N, vocab], for comparison with other implementations.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var adapterOptions: AdapterOptions

    @Option(help: "Comma-separated token ids.")
    var tokens: String

    @Option(help: "How many final positions to write.")
    var last = 1

    @Option(help: "Output file.")
    var output: String

    func run() throws {
        var ids: [Int] = []
        for (i, part) in tokens.split(separator: ",", omittingEmptySubsequences: false).enumerated() {
            guard let id = Int(part.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("--tokens item \(i + 1) ('\(part)') is not an integer")
            }
            ids.append(id)
        }
        guard !ids.isEmpty else { throw ValidationError("--tokens is empty") }
        guard last >= 1 && last <= ids.count else { throw ValidationError("--last must be in 1...\(ids.count)") }
        let model = try modelOptions.load()
        let (mix, _) = try adapterOptions.mix(for: model, modelOptions: modelOptions)
        let logits = try model.forward(ids, cache: model.makeCache(), logits: .last(last), adapters: mix)
        let data = logits.withUnsafeBufferPointer { Data(buffer: $0) }
        try data.write(to: URL(fileURLWithPath: output), options: .atomic)
        Terminal.note("wrote \(last) x \(model.config.vocabularySize) float32 logits to \(output)")
    }
}
