import ArgumentParser
import DaemonClient
import Foundation
import LlamaModel
import Tokenizer

struct Generate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate text from a prompt, streamed to standard output.",
        discussion: """
        The prompt is wrapped in the model's chat template unless --raw is given. When a daemon serves the hub, \
        the request goes through it (--offline loads the model here instead).
        """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var adapterOptions: AdapterOptions
    @OptionGroup var daemonOptions: DaemonOptions

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

    func run() async throws {
        let text = try prompt ?? readStandardInput()
        if modelOptions.model == nil, !adapterOptions.hasLocalDirectory,
           let client = daemonOptions.client(for: modelOptions.registryOptions.hub) {
            try await generate(text, through: client)
            return
        }
        let model = try modelOptions.load(verbose: verbose)
        let tokenizer = model.tokenizer
        let ids: [Int]
        if raw {
            ids = tokenizer.encodePrompt(text)
        } else {
            guard let template = tokenizer.chatTemplate else {
                throw CLIError("the model has no chat template that Graft can render; use --raw")
            }
            var messages: [ChatMessage] = []
            if let system { messages.append(ChatMessage(role: "system", content: system)) }
            messages.append(ChatMessage(role: "user", content: text))
            ids = tokenizer.encodePrompt(try template.render(messages, addGenerationPrompt: true))
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

extension Generate {
    /// The same request through a running daemon, streamed.
    func generate(_ text: String, through client: DaemonClient) async throws {
        var body: [String: Any] = ["max_tokens": maxTokens, "temperature": temperature, "top_p": topP, "top_k": topK,
                                   "stream": true, "stream_options": ["include_usage": true]]
        if let seed { body["seed"] = Int64(bitPattern: seed) }
        if !stop.isEmpty { body["stop"] = stop }
        let path: String
        if raw {
            path = "/v1/completions"
            body["prompt"] = text
        } else {
            path = "/v1/chat/completions"
            var messages: [[String: String]] = []
            if let system { messages.append(["role": "system", "content": system]) }
            messages.append(["role": "user", "content": text])
            body["messages"] = messages
        }
        if adapterOptions.specs.isEmpty {  // the base model: the first entry of the daemon's list
            let models = try await client.call(.GET, "/v1/models")
            body["model"] = ((models["data"] as? [[String: Any]])?.first?["id"] as? String) ?? ""
        } else {
            body["model"] = adapterOptions.specs.joined(separator: "+")
        }
        if verbose { Terminal.note("through the daemon at \(client.socketPath)") }
        let t0 = Date()
        var usage: [String: Any] = [:]
        try await client.stream(path, json: body) { event in
            if let u = event["usage"] as? [String: Any] { usage = u }
            guard let choice = (event["choices"] as? [[String: Any]])?.first else { return }
            if let piece = (choice["delta"] as? [String: Any])?["content"] as? String ?? choice["text"] as? String {
                Terminal.write(piece)
            }
        }
        Terminal.write("\n")
        if verbose {
            Terminal.note(String(format: "prompt %d tokens, generated %d tokens in %.3f s (daemon)",
                                 usage["prompt_tokens"] as? Int ?? 0, usage["completion_tokens"] as? Int ?? 0,
                                 Date().timeIntervalSince(t0)))
        }
    }
}

func readStandardInput() throws -> String {
    let data = FileHandle.standardInput.readDataToEndOfFile()
    guard let s = String(data: data, encoding: .utf8) else { throw CLIError("standard input is not valid UTF-8") }
    return s
}
