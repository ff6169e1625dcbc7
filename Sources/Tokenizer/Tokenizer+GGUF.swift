import GGUF

extension Tokenizer {
    /// The tokenizer a GGUF file describes (`tokenizer.ggml.*`, `tokenizer.chat_template`).
    /// Works on vocabulary-only files (no tensors). Missing keys take llama.cpp's per-model
    /// defaults: SentencePiece BOS 1, EOS 2, unknown 0, BOS added, space prefix on; byte-level
    /// BPE BOS = EOS = 11, BOS added only for the `llama3` and `tekken` pre-tokenizers;
    /// Gemma 4 always adds BOS.
    /// A chat template that does not parse leaves `chatTemplate` nil, with the parse error in
    /// `chatTemplateError`, rather than making the model unusable for plain completion.
    public convenience init(gguf: GGUFFile) throws {
        let name = try gguf.requireString("tokenizer.ggml.model")
        guard let model = TokenizerConfiguration.Model(rawValue: name) else {
            throw TokenizerError.unsupportedModel(name)
        }
        var configuration = TokenizerConfiguration(model: model, tokens: try gguf.stringArray("tokenizer.ggml.tokens"))
        let count = configuration.tokens.count
        if gguf.metadata["tokenizer.ggml.token_type"] != nil {
            configuration.tokenTypes = try gguf.intArray("tokenizer.ggml.token_type").map { Int32(truncatingIfNeeded: $0) }
        }
        if let scores = gguf.metadata["tokenizer.ggml.scores"] {
            guard let values = scores.arrayValue else {
                throw GGUFError.wrongValueType(key: "tokenizer.ggml.scores", expected: "an array")
            }
            configuration.scores = try values.map {
                guard let score = $0.doubleValue else {
                    throw GGUFError.wrongValueType(key: "tokenizer.ggml.scores", expected: "an array of numbers")
                }
                return Float(score)
            }
        }
        func id(_ key: String, default fallback: Int?) -> Int? {
            if let value = gguf.int("tokenizer.ggml.\(key)") { return value }
            return fallback.flatMap { $0 < count ? $0 : nil }
        }
        switch model {
        case .bytePair:
            configuration.merges = try gguf.stringArray("tokenizer.ggml.merges")
            configuration.preTokenizer = gguf.string("tokenizer.ggml.pre") ?? "default"
            configuration.bosID = id("bos_token_id", default: 11)
            configuration.eosID = id("eos_token_id", default: 11)
            configuration.unknownID = id("unknown_token_id", default: nil)
            let pre = try PreTokenizer(name: configuration.preTokenizer)
            configuration.addBOS = gguf.bool("tokenizer.ggml.add_bos_token") ?? pre.addsBOSByDefault
        case .gemma4:
            configuration.merges = try gguf.stringArray("tokenizer.ggml.merges")
            configuration.bosID = id("bos_token_id", default: nil)
            configuration.eosID = id("eos_token_id", default: nil)
            configuration.unknownID = id("unknown_token_id", default: nil)
            // llama.cpp adds BOS for Gemma 4 whatever the file says.
            configuration.addBOS = true
        case .sentencePiece:
            configuration.bosID = id("bos_token_id", default: 1)
            configuration.eosID = id("eos_token_id", default: 2)
            configuration.unknownID = id("unknown_token_id", default: 0)
            configuration.addBOS = gguf.bool("tokenizer.ggml.add_bos_token") ?? true
        }
        configuration.eotID = id("eot_token_id", default: nil)
        configuration.eomID = id("eom_token_id", default: nil)
        configuration.paddingID = id("padding_token_id", default: nil)
        configuration.addEOS = gguf.bool("tokenizer.ggml.add_eos_token") ?? false
        configuration.addSpacePrefix = gguf.bool("tokenizer.ggml.add_space_prefix") ?? (model == .sentencePiece)
        // Phi-3's added tokens strip the whitespace that follows them (llama.cpp keys this on
        // the model name): every special token except <unk>, <s> and <|endoftext|>, plus </s>.
        let modelName = (gguf.string("general.name") ?? "").lowercased()
        if modelName.contains("phi-3") || modelName.contains("phi3") {
            let types = configuration.tokenTypes
            let spellings = configuration.tokens
            let special = types.indices.filter { [2, 3, 4].contains(types[$0]) }
                + spellings.indices.filter { Tokenizer.endOfTurnSpellings.contains(spellings[$0]) || spellings[$0] == "</s>" }
            configuration.rightStripIDs = Set(special.filter { !["<unk>", "<s>", "<|endoftext|>"].contains(spellings[$0]) })
        }
        configuration.chatTemplate = gguf.string("tokenizer.chat_template")
        try self.init(configuration, keepInvalidTemplate: true)
    }
}
