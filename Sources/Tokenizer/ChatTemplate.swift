import Foundation
import Jinja

/// One chat turn.
public struct ChatMessage: Codable, Equatable, Sendable {
    /// The speaker, e.g. `system`, `user` or `assistant`.
    public var role: String
    /// The message text, inserted verbatim.
    public var content: String

    /// Creates a message.
    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }

    /// The message as the template sees it: `{"role": ..., "content": ...}`.
    public var jinjaValue: JinjaValue { .object([("role", .string(role)), ("content", .string(content))]) }
}

/// A model's chat template (`tokenizer.chat_template`), compiled with the Jinja engine and
/// rendered as Hugging Face transformers renders it: the variables are `messages`, `tools`,
/// `documents`, `add_generation_prompt`, `bos_token`, `eos_token`, plus any extra variables
/// (e.g. `enable_thinking`).
public struct ChatTemplate: Sendable {
    /// The template source.
    public let source: String
    /// The text of the model's BOS and EOS tokens, passed as `bos_token`/`eos_token`; nil leaves
    /// the variable undefined, as transformers does for a tokenizer without that token.
    public let bosToken: String?
    public let eosToken: String?
    /// The system prompt the template inserts when the conversation has no system message
    /// (found by rendering with and without one); nil when it inserts none.
    public private(set) var defaultSystemPrompt: String?
    private let template: Template

    /// Compiles `template`.
    /// - Throws: `TokenizerError.invalidTemplate` with the parse error's line and column.
    public init(template: String, bosToken: String? = nil, eosToken: String? = nil) throws(TokenizerError) {
        do {
            self.template = try Template(template)
        } catch {
            throw .invalidTemplate(error)
        }
        source = template
        self.bosToken = bosToken
        self.eosToken = eosToken
        defaultSystemPrompt = findDefaultSystemPrompt()
    }

    /// Renders `messages`; with `addGenerationPrompt`, appends the assistant turn opener.
    /// - Throws: `JinjaError`, e.g. `.raised` when the template rejects the conversation
    ///   (`raise_exception`, as Gemma's does for a system message).
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool) throws(JinjaError) -> String {
        try render(messages: messages.map(\.jinjaValue), addGenerationPrompt: addGenerationPrompt)
    }

    /// Renders JSON-like messages (with `tool_calls`, `name`, `reasoning_content`... as the
    /// caller received them), the `tools` list, and extra variables, which override the defaults.
    /// - Parameter now: the time `strftime_now` formats.
    public func render(messages: [JinjaValue], tools: [JinjaValue]? = nil, documents: [JinjaValue]? = nil,
                       addGenerationPrompt: Bool, variables: [String: JinjaValue] = [:],
                       now: Date = Date(), timeZone: TimeZone = .current) throws(JinjaError) -> String {
        var context: [String: JinjaValue] = [
            "messages": .array(messages),
            "tools": tools.map { .array($0) } ?? .null,
            "documents": documents.map { .array($0) } ?? .null,
            "add_generation_prompt": .bool(addGenerationPrompt),
        ]
        if let bosToken { context["bos_token"] = .string(bosToken) }
        if let eosToken { context["eos_token"] = .string(eosToken) }
        context.merge(variables) { _, new in new }
        return try template.render(context, now: now, timeZone: timeZone)
    }

    private func findDefaultSystemPrompt() -> String? {
        let user = ChatMessage(role: "user", content: "\u{2063}user\u{2063}")
        let marker = "\u{2063}system\u{2063}"
        guard let without = try? render([user], addGenerationPrompt: false),
              let with = try? render([ChatMessage(role: "system", content: marker), user], addGenerationPrompt: false),
              let range = with.range(of: marker) else { return nil }
        let before = String(with[..<range.lowerBound]), after = String(with[range.upperBound...])
        let w = Array(without.utf8), b = Array(before.utf8), a = Array(after.utf8)
        guard w.count > b.count + a.count, w.starts(with: b), w.reversed().starts(with: a.reversed()) else { return nil }
        return String(decoding: w[b.count..<(w.count - a.count)], as: UTF8.self)
    }
}

/// A rendered conversation cut into pieces: the text between assistant messages, and each
/// assistant message's own text (what the model is trained to produce).
public struct ChatSegment: Sendable, Equatable {
    public var text: String
    /// The index of the assistant message this text is, or nil for text around them.
    public var assistantMessage: Int?
    public init(text: String, assistantMessage: Int?) { self.text = text; self.assistantMessage = assistantMessage }
}

extension ChatTemplate {
    /// Splits the rendering of `messages` (without a generation prompt) into segments. An
    /// assistant message `i` spans from the end of the conversation before it rendered with the
    /// generation prompt to the end of the conversation through it; the renders must each extend
    /// the previous one.
    /// - Throws: `ChatTemplateError.notPrefixConsistent` naming the message where a render does not
    ///   extend the previous one (e.g. a template that rewrites earlier turns), or the render's error.
    public func segments(messages: [JinjaValue], tools: [JinjaValue]? = nil,
                         variables: [String: JinjaValue] = [:]) throws(ChatTemplateError) -> [ChatSegment] {
        func render(_ upTo: Int, _ generationPrompt: Bool) throws(ChatTemplateError) -> [UInt8] {
            do {
                return Array(try self.render(messages: Array(messages[..<upTo]), tools: tools,
                                             addGenerationPrompt: generationPrompt, variables: variables).utf8)
            } catch {
                throw .render(error)
            }
        }
        func text(_ bytes: ArraySlice<UInt8>) -> String { String(decoding: bytes, as: UTF8.self) }
        var segments: [ChatSegment] = []
        var covered: [UInt8] = []
        for (i, m) in messages.enumerated() where m["role"] == .string("assistant") {
            let prompt = try render(i, true)
            guard prompt.starts(with: covered) else {
                throw .notPrefixConsistent(message: i, detail: "the conversation before it, with the generation prompt, does not extend the render through the previous assistant message")
            }
            let through = try render(i + 1, false)
            guard through.starts(with: prompt) else {
                throw .notPrefixConsistent(message: i, detail: "the render through it does not start with the generation prompt render before it")
            }
            if prompt.count > covered.count { segments.append(ChatSegment(text: text(prompt[covered.count...]), assistantMessage: nil)) }
            segments.append(ChatSegment(text: text(through[prompt.count...]), assistantMessage: i))
            covered = through
        }
        let all = try render(messages.count, false)
        guard all.starts(with: covered) else {
            throw .notPrefixConsistent(message: messages.count - 1, detail: "the whole conversation's render does not extend the render through the last assistant message")
        }
        if all.count > covered.count { segments.append(ChatSegment(text: text(all[covered.count...]), assistantMessage: nil)) }
        return segments
    }
}

/// Why a chat template could not split a conversation for training.
public enum ChatTemplateError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The template failed while rendering.
    case render(JinjaError)
    /// Rendering more of the conversation changed text rendered before, at message `message`.
    case notPrefixConsistent(message: Int, detail: String)

    public var description: String {
        switch self {
        case .render(let e): "\(e)"
        case let .notPrefixConsistent(i, detail):
            "the chat template's renders are not prefix-consistent at message \(i): \(detail); it cannot be split into trained and untrained text"
        }
    }
}
