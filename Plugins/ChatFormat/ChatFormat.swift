import Training

/// OpenAI's chat fine-tuning format: `{"messages": [{"role", "content", "weight"?}, ...]}`,
/// roles system, user and assistant; the loss is on assistant turns whose `weight` is not 0.
public struct ChatFormat: DatasetFormat {
    public init() {}
    public var name: String { "chat" }
    public var fields: String { "messages: [{role, content}]" }

    public func detect(_ object: [String: JSON]) -> Bool { object["messages"] != nil }

    public func render(_ object: [String: JSON], options: RenderOptions) throws(FieldError) -> [Piece] {
        guard let list = object["messages"]?.array else {
            throw FieldError("messages", "expected an array of {role, content} objects, got \(object["messages"]!.typeName)")
        }
        guard !list.isEmpty else { throw FieldError("messages", "is empty") }
        var messages: [(role: String, content: String, trained: Bool)] = []
        for (i, item) in list.enumerated() {
            let at = "messages[\(i)]"
            guard let m = item.object else { throw FieldError(at, "expected an object {role, content}, got \(item.typeName)") }
            guard let roleValue = m["role"] else { throw FieldError("\(at).role", "missing; expected system, user or assistant") }
            guard let role = roleValue.string else { throw FieldError("\(at).role", "expected a string, got \(roleValue.typeName)") }
            guard ["system", "user", "assistant"].contains(role) else {
                throw FieldError("\(at).role", "unknown role '\(role)'; expected system, user or assistant")
            }
            guard let contentValue = m["content"] else { throw FieldError("\(at).content", "missing; expected a string") }
            guard let content = contentValue.string else {
                throw FieldError("\(at).content", "expected a string, got \(contentValue.typeName)")
            }
            var trained = role == "assistant"
            if let w = m["weight"] {
                guard role == "assistant" else { throw FieldError("\(at).weight", "only assistant messages take a weight") }
                guard let n = w.number, n == 0 || n == 1 else { throw FieldError("\(at).weight", "expected 0 or 1") }
                trained = n == 1
            }
            if role == "assistant" && content.allSatisfy(\.isWhitespace) {
                throw FieldError("\(at).content", "empty assistant turn")
            }
            messages.append((role, content, trained))
        }
        guard messages.contains(where: { $0.role == "assistant" }) else {
            throw FieldError("messages", "has no assistant message to learn from")
        }
        guard let template = options.chatTemplate else {
            // Raw: turns joined by newlines, assistant turns trained and ended with EOS.
            return messages.map { m in
                m.role == "assistant" ? Piece(m.content + options.eosText, trained: m.trained) : Piece(m.content + "\n", trained: false)
            }
        }
        return try FormatSupport.chat(messages, template: template)
    }
}
