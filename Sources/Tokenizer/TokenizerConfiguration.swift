/// Everything a `Tokenizer` is built from: the GGUF `tokenizer.ggml.*` facts, in Swift names.
public struct TokenizerConfiguration: Sendable {
    /// The tokenizer algorithm (GGUF `tokenizer.ggml.model`).
    public enum Model: String, Sendable {
        /// Byte-level BPE with a pre-tokenizer and ranked merges (`gpt2`).
        case bytePair = "gpt2"
        /// SentencePiece BPE with scores and byte fallback (`llama`).
        case sentencePiece = "llama"
        /// Ranked BPE over UTF-8 with `▁` spaces and byte fallback (`gemma4`).
        case gemma4
    }

    public var model: Model
    /// Token spellings by id (byte-to-unicode spelling for `bytePair`, `▁` for spaces for `sentencePiece`).
    public var tokens: [String]
    /// `TokenType` raw values per token (0 reads as normal), or empty for all normal.
    public var tokenTypes: [Int32] = []
    /// Token scores (SentencePiece merge priority), or empty for all zero.
    public var scores: [Float] = []
    /// BPE merges `"left right"` in rank order; unused by SentencePiece.
    public var merges: [String] = []
    /// GGUF `tokenizer.ggml.pre`; unused by SentencePiece.
    public var preTokenizer = "default"
    public var bosID: Int?
    public var eosID: Int?
    /// End-of-turn id; when nil, a token spelled like one (`<|eot_id|>`, `<|im_end|>`, ...) is used.
    public var eotID: Int?
    /// End-of-message id; when nil, a token spelled `<|eom_id|>` is used.
    public var eomID: Int?
    public var unknownID: Int?
    public var paddingID: Int?
    /// Whether `encode(_:addSpecial:parseSpecial:)` puts BOS first / EOS last.
    public var addBOS: Bool
    public var addEOS = false
    /// SentencePiece: a space goes before the first text and before text after a special token,
    /// and decoding drops one leading space.
    public var addSpacePrefix: Bool
    /// Special tokens that swallow the whitespace after them when cut out of text (Phi-3's
    /// added tokens), and ones that swallow the whitespace before them.
    public var rightStripIDs: Set<Int> = []
    public var leftStripIDs: Set<Int> = []
    /// The Jinja chat template source, if any.
    public var chatTemplate: String?

    /// A configuration with the per-model defaults (SentencePiece: BOS added, space prefix on).
    public init(model: Model, tokens: [String]) {
        self.model = model
        self.tokens = tokens
        addBOS = model == .sentencePiece
        addSpacePrefix = model == .sentencePiece
    }
}
