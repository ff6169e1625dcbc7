import Training

/// Preference pairs with an explicit prompt: `{"prompt", "chosen", "rejected"}`, where the
/// prompt is a string or a list of messages, and each completion a string or a list holding
/// one assistant message.
public struct PromptPreferenceFormat: PreferenceFormat {
    public init() {}
    public var name: String { "preference" }
    public var fields: String { "prompt, chosen, rejected (strings or message lists)" }

    public func detect(_ object: [String: JSON]) -> Bool {
        object["prompt"] != nil && object["chosen"] != nil && object["rejected"] != nil
    }

    public func render(_ object: [String: JSON], options: RenderOptions) throws(FieldError) -> PreferenceText {
        let prompt: String
        if object["prompt"]?.array != nil {
            let messages = try FormatSupport.messages(object["prompt"], field: "prompt")
            prompt = try FormatSupport.promptText(messages, options: options)
        } else {
            let text = try FormatSupport.string(object, "prompt")
            prompt = try FormatSupport.promptText([Message(role: "user", content: text)], options: options)
        }
        let chosen = try FormatSupport.completion(object["chosen"], field: "chosen")
        let rejected = try FormatSupport.completion(object["rejected"], field: "rejected")
        try FormatSupport.distinct(chosen, rejected)
        return PreferenceText(prompt: prompt, chosen: try FormatSupport.completionText(chosen, options: options),
                              rejected: try FormatSupport.completionText(rejected, options: options))
    }
}
