import Training

/// OpenAI's preference fine-tuning format: `{"input": {"messages": [...]}, "preferred_output":
/// [{role: assistant, content}], "non_preferred_output": [...]}`, and its older spelling with
/// `preferred_completion` / `non_preferred_completion`. Tools and other input keys are not
/// supported by this trainer and are rejected.
public struct OpenAIPreferenceFormat: PreferenceFormat {
    public init() {}
    public var name: String { "openai-preference" }
    public var fields: String { "input: {messages}, preferred_output, non_preferred_output" }

    public func detect(_ object: [String: JSON]) -> Bool {
        object["input"] != nil && (object["preferred_output"] != nil || object["preferred_completion"] != nil)
    }

    public func render(_ object: [String: JSON], options: RenderOptions) throws(FieldError) -> PreferenceText {
        guard let input = object["input"]?.object else {
            throw FieldError("input", "expected an object {messages: [...]}, got \(object["input"]!.typeName)")
        }
        for key in input.keys.sorted() where key != "messages" {
            if key == "parallel_tool_calls" { continue }
            throw FieldError("input.\(key)", "is not supported (only messages are)")
        }
        let messages = try FormatSupport.messages(input["messages"], field: "input.messages")
        let legacy = object["preferred_output"] == nil
        let (good, bad) = legacy ? ("preferred_completion", "non_preferred_completion") : ("preferred_output", "non_preferred_output")
        let chosen = try FormatSupport.completion(object[good], field: good)
        let rejected = try FormatSupport.completion(object[bad], field: bad)
        try FormatSupport.distinct(chosen, rejected, field: bad)
        return PreferenceText(prompt: try FormatSupport.promptText(messages, options: options),
                              chosen: try FormatSupport.completionText(chosen, options: options),
                              rejected: try FormatSupport.completionText(rejected, options: options))
    }
}
