import ArgumentParser
import Foundation
import LlamaModel
import Tokenizer

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate text from a prompt, streamed to standard output.",
        discussion: "The prompt is wrapped in the model's chat template unless --raw is given.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var adapterOptions: AdapterOptions

    @Argument(help: "The prompt (read from standard input when omitted).")
    var prompt: String?

    @Flag(help: "Plain completion: no chat template.")
    var raw = false

    @Option(help: "System message for the chat template (default: the template's own).")
    var system: String?

    @Option(name: .customLong("max-tokens"), help: "Maximum new tokens.")
    var maxTokens = 256

    @Option(help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = 0.8

    @Option(name: .customLong("top-p"), help: "Nucleus sampling threshold (1 disables).")
    var topP: Float = 0.95

    @Option(name: .customLong("top-k"), help: "Sample among the k most likely tokens (0 disables).")
    var topK = 40

    @Option(help: "Random seed; the same seed gives the same output (default: random).")
    var seed: UInt64?

    @Option(parsing: .singleValue, help: "Stop at this string (repeatable).")
    var stop: [String] = []

    @Flag(help: "Print timing to standard error.")
    var verbose = false

    func validate() throws {
        guard maxTokens > 0 else { throw ValidationError("--max-tokens must be positive") }
        guard temperature >= 0 else { throw ValidationError("--temperature must not be negative") }
        guard topP > 0 && topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") }
        guard topK >= 0 else { throw ValidationError("--top-k must not be negative") }
    }

    func run() throws {
        let text = try prompt ?? readStandardInput()
        let model = try modelOptions.load(verbose: verbose)
        let tokenizer = model.tokenizer
        let ids: [Int]
        if raw {
            ids = tokenizer.encode(text)
        } else {
            guard let template = tokenizer.chatTemplate else {
                throw CLIError("the model has no chat template that Graft can render; use --raw")
            }
            var messages: [ChatMessage] = []
            if let system { messages.append(ChatMessage(role: "system", content: system)) }
            messages.append(ChatMessage(role: "user", content: text))
            ids = tokenizer.encode(template.render(messages, addGenerationPrompt: true))
        }
        let sampling = SamplingParameters(temperature: temperature, topK: topK, topP: topP,
                                          seed: seed ?? UInt64.random(in: 0...UInt64.max))
        let (mix, adapterNames) = try adapterOptions.mix(for: model, modelOptions: modelOptions)
        if verbose && !adapterNames.isEmpty { Terminal.note("adapters: " + adapterNames.joined(separator: ", ")) }
        let request = GenerationRequest(prompt: ids, maxTokens: maxTokens, sampling: sampling, stop: stop, adapters: mix)
        let result = try model.generate(request) { piece in
            Terminal.write(piece)
        }
        Terminal.write("\n")
        if verbose {
            let n = result.tokens.count
            Terminal.note(String(format: "prompt %d tokens in %.3f s (%.1f tok/s); generated %d tokens in %.3f s (%.1f tok/s); stop: %@; seed %llu",
                                 result.promptTokens, result.prefillSeconds, Double(result.promptTokens) / result.prefillSeconds,
                                 n, result.decodeSeconds, n > 1 ? Double(n - 1) / result.decodeSeconds : 0,
                                 result.finishReason.rawValue, sampling.seed))
        }
    }
}

func readStandardInput() throws -> String {
    let data = FileHandle.standardInput.readDataToEndOfFile()
    guard let s = String(data: data, encoding: .utf8) else { throw CLIError("standard input is not valid UTF-8") }
    return s
}
