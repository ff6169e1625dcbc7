import Training

/// Question-answer pairs: `{"question": "...", "answer": "..."}`; the loss is on the answer.
public struct QAFormat: DatasetFormat {
    public init() {}
    public var name: String { "qa" }
    public var fields: String { "question, answer" }

    public func detect(_ object: [String: JSON]) -> Bool { object["question"] != nil && object["answer"] != nil }

    public func render(_ object: [String: JSON], options: RenderOptions) throws(FieldError) -> [Piece] {
        let question = try FormatSupport.string(object, "question")
        let answer = try FormatSupport.string(object, "answer")
        return try FormatSupport.promptAndAnswer(question, answer, options: options)
    }
}
