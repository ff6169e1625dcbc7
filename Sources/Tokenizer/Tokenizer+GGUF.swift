import GGUF

extension Tokenizer {
    /// The tokenizer a GGUF file describes (`tokenizer.ggml.*`, `tokenizer.chat_template`).
    /// A chat template that does not parse leaves `chatTemplate` nil, with the parse error in
    /// `chatTemplateError`, rather than making the model unusable for plain completion.
    public convenience init(gguf: GGUFFile) throws {
        let model = try gguf.requireString("tokenizer.ggml.model")
        guard model == "gpt2" else { throw TokenizerError.unsupportedModel(model) }
        let tokens = try gguf.stringArray("tokenizer.ggml.tokens")
        let types = gguf.metadata["tokenizer.ggml.token_type"] == nil
            ? [] : try gguf.intArray("tokenizer.ggml.token_type").map { Int32(truncatingIfNeeded: $0) }
        try self.init(tokens: tokens, tokenTypes: types,
                      merges: try gguf.stringArray("tokenizer.ggml.merges"),
                      preTokenizer: gguf.string("tokenizer.ggml.pre") ?? "default",
                      bosID: gguf.int("tokenizer.ggml.bos_token_id"),
                      eosID: gguf.int("tokenizer.ggml.eos_token_id"),
                      chatTemplate: gguf.string("tokenizer.chat_template"), keepInvalidTemplate: true)
    }
}
