import Engine
import Foundation
import Hummingbird
import LlamaModel
import Tokenizer

/// A parsed completion or chat request, ready for the engine.
struct GenerationCall: Sendable {
    enum Kind: Sendable { case chat, completion }
    var kind: Kind
    var prompt: [Int]
    var maxTokens: Int?
    var sampling: SamplingParameters
    var stop: [String]
    var stream: Bool
    var includeUsage: Bool
    var ignoreEOS: Bool
    var selection: ModelSelection
    var modelField: String
}

extension GraftServer {
    /// Reads the fields both endpoints share.
    func parseCall(_ body: JSONBody, kind: GenerationCall.Kind, prompt: [Int], principal: Principal) throws -> GenerationCall {
        if let n = try body.int("n", in: 1...128), n != 1 {
            throw APIError.badRequest("only n=1 is supported", param: "n")
        }
        if kind == .chat, try body.bool("logprobs") == true {
            throw APIError.badRequest("logprobs are not supported", param: "logprobs")
        }
        if kind == .completion, body.has("logprobs") { throw APIError.badRequest("logprobs are not supported", param: "logprobs") }
        if kind == .completion, try body.bool("echo") == true { throw APIError.badRequest("echo is not supported", param: "echo") }
        let maxTokens = try body.int("max_completion_tokens", in: 1...1_000_000) ?? body.int("max_tokens", in: 1...1_000_000)
        let temperature = try body.number("temperature", in: 0...2) ?? 1
        let topP = try body.number("top_p", in: 0...1) ?? 1
        let topK = try body.int("top_k", in: -1...1_000_000) ?? 0  // an extension some servers share; 0 or -1: off
        if topP == 0 { throw APIError.badRequest("'top_p' must be greater than 0", param: "top_p") }
        let seed = try body.int("seed", in: Int(Int64.min)...Int(Int64.max)).map { UInt64(bitPattern: Int64($0)) }
            ?? UInt64.random(in: 0...UInt64.max)
        let stop = try body.strings("stop", max: 4)
        let model = try body.requiredString("model")
        let selection = try ModelSelection.parse(model: model, adapters: try body.array("adapters"), server: self,
                                                 principal: principal)
        let includeUsage = try body.object("stream_options")?.bool("include_usage") ?? false
        return GenerationCall(kind: kind, prompt: prompt, maxTokens: maxTokens,
                              sampling: SamplingParameters(temperature: Float(temperature), topK: max(0, topK),
                                                                   topP: Float(topP), seed: seed),
                              stop: stop, stream: try body.bool("stream") ?? false, includeUsage: includeUsage,
                              ignoreEOS: try body.bool("ignore_eos") ?? false,
                              selection: selection, modelField: model)
    }

    /// `messages` rendered with the model's chat template and tokenized.
    func chatPrompt(_ body: JSONBody) throws -> [Int] {
        guard let messages = try body.array("messages") else {
            throw APIError.badRequest("missing required field 'messages'", param: "messages")
        }
        guard !messages.isEmpty else { throw APIError.badRequest("'messages' must not be empty", param: "messages") }
        var rendered: [ChatMessage] = []
        for (i, item) in messages.enumerated() {
            let param = "messages[\(i)]"
            guard let m = item as? [String: Any] else { throw APIError.badRequest("'\(param)' must be an object", param: param) }
            guard let role = m["role"] as? String else {
                throw APIError.badRequest("'\(param).role' must be a string", param: "\(param).role")
            }
            guard ["system", "developer", "user", "assistant"].contains(role) else {
                throw APIError.badRequest("'\(param).role' is '\(role)'; supported roles are system, developer, user and assistant",
                                          param: "\(param).role")
            }
            rendered.append(ChatMessage(role: role == "developer" ? "system" : role,
                                        content: try Self.content(m["content"], param: "\(param).content")))
        }
        guard let template = model.tokenizer.chatTemplate else {
            throw APIError(.badRequest, "the base model has no chat template; use /v1/completions", shouldRetry: false)
        }
        let text: String
        do {
            text = try template.render(rendered, addGenerationPrompt: true)
        } catch {
            // The template's own checks (Gemma's "no system role", strict role alternation, ...).
            throw APIError.badRequest("the model's chat template rejects these messages: \(error)", param: "messages")
        }
        return model.tokenizer.encodePrompt(text)
    }

    /// Message content: a string, or an array of text parts.
    static func content(_ value: Any?, param: String) throws -> String {
        if value == nil || value is NSNull { return "" }
        if let s = value as? String { return s }
        if let parts = value as? [Any] {
            return try parts.enumerated().map { i, part -> String in
                guard let p = part as? [String: Any], p["type"] as? String == "text", let text = p["text"] as? String else {
                    throw APIError.badRequest(
                        "'\(param)[\(i)]' must be a text part ({\"type\": \"text\", \"text\": ...}); other parts are not supported",
                                              param: param)
                }
                return text
            }.joined()
        }
        throw APIError.badRequest("'\(param)' must be a string or an array of text parts", param: param)
    }

    /// `prompt`: a string, one string in an array, or token ids.
    func completionPrompt(_ body: JSONBody) throws -> [Int] {
        guard body.has("prompt") else { throw APIError.badRequest("missing required field 'prompt'", param: "prompt") }
        let value = body.values["prompt"]!
        if let s = value as? String { return model.tokenizer.encodePrompt(s) }
        if let a = value as? [String] {
            guard a.count == 1 else { throw APIError.badRequest("only one prompt per request is supported", param: "prompt") }
            return model.tokenizer.encodePrompt(a[0])
        }
        if let ids = value as? [Int] {
            let vocab = model.config.vocabularySize
            if let bad = ids.first(where: { $0 < 0 || $0 >= vocab }) {
                throw APIError.badRequest("token id \(bad) in 'prompt' is outside the vocabulary (0..<\(vocab))", param: "prompt")
            }
            return ids
        }
        throw APIError.badRequest("'prompt' must be a string, an array with one string, or an array of token ids", param: "prompt")
    }
}

func registerInferenceRoutes(_ routes: RouteBook, _ server: GraftServer) {
    routes.add(.post, "/v1/chat/completions") { request, context in
        let body = try JSONBody.parse(try await request.readBody(limit: server.configuration.maxBodyBytes))
        let call = try server.parseCall(body, kind: .chat, prompt: try server.chatPrompt(body), principal: context.principal)
        return try await server.generate(call, request: request, context: context)
    }
    routes.add(.post, "/v1/completions") { request, context in
        let body = try JSONBody.parse(try await request.readBody(limit: server.configuration.maxBodyBytes))
        let call = try server.parseCall(body, kind: .completion, prompt: try server.completionPrompt(body),
                                        principal: context.principal)
        return try await server.generate(call, request: request, context: context)
    }
}
