import Jinja

/// The role of a vocabulary entry, as stored in GGUF `tokenizer.ggml.token_type`.
public enum TokenType: Int32, Sendable {
    /// An ordinary byte-level BPE token.
    case normal = 1
    /// The unknown token.
    case unknown = 2
    /// A control token such as `<|im_start|>`; matched whole in text when special parsing is on.
    case control = 3
    /// A user-defined token; always matched whole in text and decoded verbatim.
    case userDefined = 4
    /// A reserved, unused slot.
    case unused = 5
    /// A raw byte token spelled `<0xNN>`.
    case byte = 6
}

/// Errors raised while building a tokenizer or a chat template.
public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    /// The vocabulary has no tokens.
    case emptyVocabulary
    /// `tokenTypes` is neither empty nor the same length as `tokens`.
    case tokenTypeCountMismatch(tokens: Int, types: Int)
    /// A token type value outside the GGUF range 0...6.
    case invalidTokenType(index: Int, value: Int32)
    /// A merge is not two non-empty parts separated by exactly one space.
    case badMerge(index: Int, text: String)
    /// A merge part, or the concatenation the merge produces, is not in the vocabulary.
    case mergeTokenNotInVocabulary(index: Int, text: String, token: String)
    /// `scores` is neither empty nor the same length as `tokens`.
    case scoreCountMismatch(tokens: Int, scores: Int)
    /// BOS/EOS is to be added but the model names no such token.
    case missingSpecialToken(String)
    /// The pre-tokenizer name is not one this tokenizer implements.
    case unknownPreTokenizer(String)
    /// A special-token id (BOS, EOS, EOT, EOM, unknown, padding) does not index the vocabulary.
    case specialIDOutOfRange(name: String, id: Int, vocabularySize: Int)
    /// The chat template does not parse (the error names the line and column).
    case invalidTemplate(JinjaError)
    /// The GGUF `tokenizer.ggml.model` is neither `gpt2` nor `llama`.
    case unsupportedModel(String)

    public var description: String {
        switch self {
        case .emptyVocabulary:
            return "tokenizer vocabulary is empty"
        case let .tokenTypeCountMismatch(tokens, types):
            return "tokenizer has \(tokens) tokens but \(types) token types"
        case let .invalidTokenType(index, value):
            return "token \(index) has invalid token type \(value) (expected 0...6)"
        case let .badMerge(index, text):
            return "merge \(index) \"\(text)\" is not two tokens separated by one space"
        case let .mergeTokenNotInVocabulary(index, text, token):
            return "merge \(index) \"\(text)\" uses \"\(token)\", which is not in the vocabulary"
        case let .scoreCountMismatch(tokens, scores):
            return "tokenizer has \(tokens) tokens but \(scores) scores"
        case let .missingSpecialToken(name):
            return "the tokenizer adds a \(name) token but defines no \(name) id"
        case let .unknownPreTokenizer(name):
            return "unknown pre-tokenizer \"\(name)\" (tokenizer.ggml.pre; supported: "
                + PreTokenizer.names.keys.sorted().joined(separator: ", ") + ")"
        case let .specialIDOutOfRange(name, id, size):
            return "\(name) token id \(id) is outside the vocabulary (size \(size))"
        case let .invalidTemplate(error):
            return "the chat template does not parse: \(error)"
        case let .unsupportedModel(name):
            return "tokenizer model \"\(name)\" is not supported (tokenizer.ggml.model; supported: gpt2, llama)"
        }
    }
}
