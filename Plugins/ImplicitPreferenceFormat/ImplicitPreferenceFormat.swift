import Training

/// Preference pairs with an implicit prompt: `{"chosen": [messages], "rejected": [messages]}`,
/// two whole conversations that share every message but the last, an assistant turn each;
/// the shared messages are the prompt.
public struct ImplicitPreferenceFormat: PreferenceFormat {
    public init() {}
    public var name: String { "implicit-preference" }
    public var fields: String { "chosen, rejected (conversations sharing all but the last, assistant, message)" }

    public func detect(_ object: [String: JSON]) -> Bool {
        object["prompt"] == nil && object["chosen"] != nil && object["rejected"] != nil
    }

    public func render(_ object: [String: JSON], options: RenderOptions) throws(FieldError) -> PreferenceText {
        let chosen = try FormatSupport.messages(object["chosen"], field: "chosen")
        let rejected = try FormatSupport.messages(object["rejected"], field: "rejected")
        for (key, list) in [("chosen", chosen), ("rejected", rejected)] {
            guard list.count >= 2 else { throw FieldError(key, "needs the shared prompt messages and a final assistant message") }
            guard list.last!.role == "assistant" else {
                throw FieldError("\(key)[\(list.count - 1)].role", "the last message must be the assistant's answer, got '\(list.last!.role)'")
            }
            if list.last!.content.allSatisfy(\.isWhitespace) { throw FieldError("\(key)[\(list.count - 1)].content", "is empty") }
        }
        let prompt = Array(chosen.dropLast())
        guard Array(rejected.dropLast()) == prompt else {
            let at = zip(prompt, rejected.dropLast()).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                ?? min(prompt.count, rejected.count - 1)
            throw FieldError("rejected[\(at)]", "differs from chosen[\(at)]: the two conversations must share every message but the last")
        }
        try FormatSupport.distinct(chosen.last!.content, rejected.last!.content)
        return PreferenceText(prompt: try FormatSupport.promptText(prompt, options: options),
                              chosen: try FormatSupport.completionText(chosen.last!.content, options: options),
                              rejected: try FormatSupport.completionText(rejected.last!.content, options: options))
    }
}
