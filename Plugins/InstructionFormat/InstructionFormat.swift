import Training

/// Alpaca's `{"instruction", "input"?, "output"}`; the loss is on the output. Raw strings use
/// the two Alpaca prompt templates (with and without input); under a chat template the
/// instruction and input form the user turn.
public struct InstructionFormat: DatasetFormat {
    public init() {}
    public var name: String { "instruction" }
    public var fields: String { "instruction, input (optional), output" }

    public func detect(_ object: [String: JSON]) -> Bool { object["instruction"] != nil && object["output"] != nil }

    public func render(_ object: [String: JSON], options: RenderOptions) throws(FieldError) -> [Piece] {
        let instruction = try FormatSupport.string(object, "instruction")
        let output = try FormatSupport.string(object, "output")
        var input = ""
        if let value = object["input"], value != .null {
            guard let s = value.string else { throw FieldError("input", "expected a string, got \(value.typeName)") }
            input = s
        }
        let hasInput = !input.allSatisfy(\.isWhitespace)
        if options.chatTemplate != nil {
            return try FormatSupport.promptAndAnswer(hasInput ? "\(instruction)\n\n\(input)" : instruction, output, options: options)
        }
        let prompt = hasInput
            ? "Below is an instruction that describes a task, paired with an input that provides further context. "
                + "Write a response that appropriately completes the request.\n\n"
                + "### Instruction:\n\(instruction)\n\n### Input:\n\(input)\n\n### Response:\n"
            : "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
                + "### Instruction:\n\(instruction)\n\n### Response:\n"
        return [Piece(prompt, trained: false), Piece(output + options.eosText, trained: true)]
    }
}
