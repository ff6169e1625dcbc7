import Training

/// Prompt-completion pairs: `{"prompt": "...", "completion": "..."}`; the loss is on the
/// completion.
public struct CompletionsFormat: DatasetFormat {
    public init() {}
    public var name: String { "completions" }
    public var fields: String { "prompt, completion" }

    public func detect(_ object: [String: JSON]) -> Bool { object["prompt"] != nil && object["completion"] != nil }

    public func render(_ object: [String: JSON], options: RenderOptions) throws(FieldError) -> [Piece] {
        let prompt = try FormatSupport.string(object, "prompt")
        let completion = try FormatSupport.string(object, "completion")
        return try FormatSupport.promptAndAnswer(prompt, completion, options: options)
    }
}
