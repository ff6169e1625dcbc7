import Foundation
import Tokenizer

/// A piece of an example's text and whether the loss is taken on its tokens.
public struct Piece: Sendable, Hashable {
    public var text: String
    public var trained: Bool
    public init(_ text: String, trained: Bool) { self.text = text; self.trained = trained }
}

/// How formats turn their fields into text.
public struct RenderOptions: Sendable {
    /// The model's chat template: chat data always uses it, other formats are wrapped in a user
    /// turn and an assistant turn. Nil (`--template none`) trains on the raw strings.
    public var chatTemplate: ChatTemplate?
    /// Appended to raw completions so the model learns to stop (the tokenizer's EOS text).
    public var eosText: String

    public init(chatTemplate: ChatTemplate?, eosText: String) {
        self.chatTemplate = chatTemplate; self.eosText = eosText
    }
}

/// What is wrong with one field of an example.
public struct FieldError: Error, Sendable, Equatable {
    /// A path such as `messages[2].role`; nil for the line as a whole.
    public var field: String?
    public var message: String
    public init(_ field: String?, _ message: String) { self.field = field; self.message = message }
}

/// A data format (one JSON object per line), as a plugin: how its lines are recognised.
public protocol DataFormat: Sendable {
    /// Short name, e.g. "chat".
    var name: String { get }
    /// The fields a line of this format has, for messages: e.g. "messages: [{role, content}]".
    var fields: String { get }
    /// Whether a JSON object looks like this format (its identifying keys are present).
    func detect(_ object: [String: JSON]) -> Bool
}

/// A supervised fine-tuning data format: renders its lines into pieces of text with their
/// loss mask.
public protocol DatasetFormat: DataFormat {
    /// The example's pieces, or a `FieldError` saying which field is wrong and what was expected.
    func render(_ object: [String: JSON], options: RenderOptions) throws(FieldError) -> [Piece]
}

/// Shared helpers for format plugins.
public enum FormatSupport {
    /// The string value of `key`, non-empty unless `allowEmpty`.
    public static func string(_ object: [String: JSON], _ key: String, allowEmpty: Bool = false) throws(FieldError) -> String {
        guard let value = object[key] else { throw FieldError(key, "missing; expected a string") }
        guard case .string(let s) = value else { throw FieldError(key, "expected a string, got \(value.typeName)") }
        if !allowEmpty && s.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            throw FieldError(key, "is empty")
        }
        return s
    }

    /// A prompt and its answer: a user turn and an assistant turn under the chat template, or
    /// the raw strings (the answer followed by EOS) without one.
    public static func promptAndAnswer(_ prompt: String, _ answer: String, options: RenderOptions) throws(FieldError) -> [Piece] {
        if let template = options.chatTemplate {
            return try chat([("user", prompt, true), ("assistant", answer, true)], template: template)
        }
        return [Piece(prompt, trained: false), Piece(answer + options.eosText, trained: true)]
    }

    /// The pieces of a conversation under the chat template: each assistant message's span
    /// (its content and the template's end of turn, e.g. `A<|im_end|>\n` in ChatML) is trained when
    /// its `trained` is set; everything else (system and user turns, the generation prompts) is not.
    /// The spans come from rendering the conversation incrementally (`ChatTemplate.segments`).
    /// - Throws: `FieldError` on `messages` when the template fails or its renders are not
    ///   prefix-consistent, so assistant spans cannot be told apart.
    public static func chat(_ messages: [(role: String, content: String, trained: Bool)], template: ChatTemplate) throws(FieldError) -> [Piece] {
        let values = messages.map { ChatMessage(role: $0.role, content: $0.content).jinjaValue }
        do {
            return try template.segments(messages: values).map { segment in
                Piece(segment.text, trained: segment.assistantMessage.map { messages[$0].trained } ?? false)
            }
        } catch {
            throw FieldError("messages", "\(error)")
        }
    }
}

/// A JSON value as read from a dataset line.
public enum JSON: Sendable, Equatable, Decodable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSON])
    case object([String: JSON])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSON].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSON].self)) }
    }

    /// "a string", "an array"... for error messages.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    public var string: String? { if case .string(let s) = self { s } else { nil } }
    public var array: [JSON]? { if case .array(let a) = self { a } else { nil } }
    public var object: [String: JSON]? { if case .object(let o) = self { o } else { nil } }
    public var number: Double? { if case .number(let d) = self { d } else { nil } }
}
