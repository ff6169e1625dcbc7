import ArgumentParser
import Foundation
import GGUF
import Tokenizer

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Tokenize JSON lines from standard input.",
        discussion: """
        Reads only the tokenizer and chat template of the model (a vocabulary-only GGUF will do). The
        ids start with BOS when the model adds one. Each input line is {"text": "..."} or, with --chat, {"messages": [{"role", "content"}...],
        "add_generation_prompt": bool}. Each output line is {"ids": [...]} (with --chat also "text",
        the rendered template).
        """)

    @OptionGroup var modelOptions: ModelOptions

    @Flag(help: "Render chat messages with the model's template first.")
    var chat = false

    struct TextLine: Decodable { var text: String }
    struct ChatLine: Decodable {
        var messages: [ChatMessage]
        var add_generation_prompt: Bool?
    }
    struct Output: Encodable {
        var ids: [Int]
        var text: String?
    }

    func run() throws {
        // Only the tokenizer is read, so a vocabulary-only GGUF (no tensors) works too.
        let tokenizer = try Tokenizer(gguf: GGUFFile(path: modelOptions.modelPath()))
        let decoder = JSONDecoder()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        var lineNumber = 0
        while let line = readLine(strippingNewline: true) {
            lineNumber += 1
            if line.allSatisfy(\.isWhitespace) { continue }
            let data = Data(line.utf8)
            let output: Output
            do {
                if chat {
                    guard let template = tokenizer.chatTemplate else {
                        throw CLIError(tokenizer.chatTemplateError.map { "the model's chat template cannot be used: \($0)" }
                                       ?? "the model has no chat template")
                    }
                    let input = try decoder.decode(ChatLine.self, from: data)
                    let text = try template.render(input.messages, addGenerationPrompt: input.add_generation_prompt ?? false)
                    output = Output(ids: tokenizer.encodePrompt(text), text: text)
                } else {
                    output = Output(ids: tokenizer.encodePrompt(try decoder.decode(TextLine.self, from: data).text), text: nil)
                }
            } catch let error as DecodingError {
                let expected = chat ? "{\"messages\": [{\"role\": ..., \"content\": ...}], \"add_generation_prompt\": bool}" : "{\"text\": ...}"
                throw CLIError("line \(lineNumber): \(describe(error)); expected \(expected)")
            }
            Terminal.write(String(decoding: try encoder.encode(output), as: UTF8.self) + "\n")
        }
    }
}

/// A one-line account of a decoding error: which field and what went wrong.
func describe(_ error: DecodingError) -> String {
    func path(_ c: [CodingKey]) -> String { c.isEmpty ? "the line" : "field '" + c.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".") + "'" }
    switch error {
    case .keyNotFound(let key, let ctx): return "missing \(path(ctx.codingPath + [key]))"
    case .typeMismatch(let type, let ctx): return "\(path(ctx.codingPath)) is not \(type)"
    case .valueNotFound(let type, let ctx): return "\(path(ctx.codingPath)) is null, expected \(type)"
    case .dataCorrupted(let ctx): return "invalid JSON (\(ctx.debugDescription))"
    @unknown default: return "\(error)"
    }
}
