import Training

/// Plain text, `{"text": "..."}`: language modelling with the loss on every token (no chat
/// template; EOS appended).
public struct TextFormat: DatasetFormat {
    public init() {}
    public var name: String { "text" }
    public var fields: String { "text" }

    public func detect(_ object: [String: JSON]) -> Bool { object["text"] != nil }

    public func render(_ object: [String: JSON], options: RenderOptions) throws(FieldError) -> [Piece] {
        [Piece(try FormatSupport.string(object, "text") + options.eosText, trained: true)]
    }
}
