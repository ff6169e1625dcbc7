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
}

/// A ChatML chat template, recognised from a model's Jinja template source.
///
/// Only the ChatML shape is supported: each message renders as
/// `<|im_start|>{role}\n{content}<|im_end|>\n`, an optional default system turn is
/// prepended when the first message is not `system`, and the generation prompt is
/// `<|im_start|>assistant\n`. Templates of any other shape are rejected rather than
/// rendered approximately.
public struct ChatTemplate: Sendable {
    /// The template source this was recognised from.
    public let source: String
    /// System prompt inserted when the conversation does not start with a system message.
    public let defaultSystemPrompt: String?

    private static let start = "<|im_start|>"
    private static let end = "<|im_end|>"

    /// Recognises a ChatML template.
    /// - Throws: `TokenizerError.unsupportedTemplate` naming what is missing or unsupported.
    public init(template: String) throws {
        func reject(_ reason: String) -> TokenizerError { .unsupportedTemplate(reason) }
        guard template.contains(Self.start), template.contains(Self.end) else {
            throw reject("not ChatML (no \(Self.start) / \(Self.end) markers)")
        }
        guard template.contains("in messages") else {
            throw reject("no loop over messages")
        }
        let fields = ["role", "content"]
        for field in fields where !["message['\(field)']", "message[\"\(field)\"]", "message.\(field)"]
            .contains(where: template.contains) {
            throw reject("message \(field) is never rendered")
        }
        // Features this renderer cannot reproduce.
        for feature in ["tools", "tool_call", "macro", "namespace("] where template.contains(feature) {
            throw reject("uses '\(feature)', which only a full Jinja engine could render")
        }
        source = template
        defaultSystemPrompt = try Self.defaultSystemPrompt(in: template)
    }

    /// Renders `messages`; with `addGenerationPrompt`, appends the assistant turn opener.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool) -> String {
        var text = ""
        // The template emits the default inside its message loop, so an empty list gets none.
        if let defaultSystemPrompt, let first = messages.first, first.role != "system" {
            text += "\(Self.start)system\n\(defaultSystemPrompt)\(Self.end)\n"
        }
        for message in messages {
            text += "\(Self.start)\(message.role)\n\(message.content)\(Self.end)\n"
        }
        if addGenerationPrompt {
            text += "\(Self.start)assistant\n"
        }
        return text
    }

    /// The literal default system turn, `'<|im_start|>system\n...<|im_end|>`, in the branch taken
    /// when the first message is not a system message; nil if the template has no such branch.
    private static func defaultSystemPrompt(in template: String) throws -> String? {
        let conditions = ["!= 'system'", "!= \"system\""]
        guard let condition = conditions.compactMap({ template.firstRange(of: $0) }).first else {
            return nil
        }
        let branch = template[condition.upperBound...]
        // The newline after "system" may be literal or a `\n` escape; take whichever comes first.
        let openers = ["\n", "\\n"].compactMap { branch.firstRange(of: "\(start)system\($0)") }
        if let open = openers.min(by: { $0.lowerBound < $1.lowerBound }),
           let close = branch[open.upperBound...].firstRange(of: end) {
            // An unescaped quote or a Jinja delimiter means the prompt is computed, not a literal.
            let literal = branch[open.upperBound..<close.lowerBound]
            guard !literal.contains("{{"), !literal.contains("{%"), let prompt = unescape(literal) else {
                throw TokenizerError.unsupportedTemplate("default system prompt is not a plain string literal")
            }
            return prompt
        }
        throw TokenizerError.unsupportedTemplate("no default system turn after the first-message role check")
    }

    /// Resolves the backslash escapes a Jinja string literal may contain; nil if the text
    /// has an unescaped quote (so it is not the inside of one literal).
    private static func unescape(_ literal: Substring) -> String? {
        // Scalars, not Characters, so a backslash is never fused with what follows it.
        var out = String.UnicodeScalarView()
        var escaped = false
        for scalar in literal.unicodeScalars {
            if escaped {
                switch scalar {
                case "n": out.append("\n")
                case "t": out.append("\t")
                case "r": out.append("\r")
                default: out.append(scalar)
                }
                escaped = false
            } else if scalar == "\\" {
                escaped = true
            } else if scalar == "'" || scalar == "\"" {
                return nil
            } else {
                out.append(scalar)
            }
        }
        if escaped { out.append("\\") }
        return String(out)
    }
}
