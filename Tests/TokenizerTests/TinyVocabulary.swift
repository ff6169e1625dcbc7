import Tokenizer

/// A small vocabulary for tests that need no model: id 0 is the control token `<|end|>`,
/// ids 1...256 are the single bytes 0...255 in GPT-2 byte-to-unicode spelling, then
/// `extra` tokens, then one token per merge result in merge order.
enum TinyVocabulary {
    static let endID = 0

    /// GPT-2 spelling of each byte: printable Latin-1 bytes stand for themselves, the other
    /// 68 bytes take U+0100 onwards in byte order.
    static let byteSpellings: [String] = {
        var next: UInt32 = 0x100
        return (0..<256).map { byte -> String in
            let printable = (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
            if printable { return String(Unicode.Scalar(UInt8(byte))) }
            defer { next += 1 }
            return String(Unicode.Scalar(next)!)
        }
    }()

    static func byteID(_ byte: UInt8) -> Int { Int(byte) + 1 }

    /// Token ids of raw bytes with no merges applied.
    static func byteIDs(_ text: String) -> [Int] { text.utf8.map(byteID) }

    /// GPT-2 spelling of a text's bytes, as merge strings and vocabulary entries use.
    static func spell(_ text: String) -> String { spell(bytes: Array(text.utf8)) }

    /// GPT-2 spelling of raw bytes.
    static func spell(bytes: [UInt8]) -> String { bytes.map { byteSpellings[Int($0)] }.joined() }

    /// Builds the tokenizer. `merges` are written in plain text as `"left|right"` and converted
    /// to GPT-2 spelling, so a merge such as `" |a"` never has to be typed as `"Ġ a"`;
    /// `byteMerges` (ranked after `merges`) join raw byte strings that need not be valid UTF-8.
    static func make(merges: [String] = [], byteMerges: [([UInt8], [UInt8])] = [], extra: [(String, TokenType)] = [],
                     preTokenizer: String = "smollm", chatTemplate: String? = nil,
                     keepInvalidTemplate: Bool = false) throws -> Tokenizer {
        var tokens = ["<|end|>"] + byteSpellings
        var types: [Int32] = [TokenType.control.rawValue] + Array(repeating: TokenType.normal.rawValue, count: 256)
        for (text, type) in extra {
            tokens.append(text)
            types.append(type.rawValue)
        }
        let pairs = merges.map { merge -> ([UInt8], [UInt8]) in
            let parts = merge.split(separator: "|", omittingEmptySubsequences: false)
            precondition(parts.count == 2, "test merges are written as left|right")
            return (Array(parts[0].utf8), Array(parts[1].utf8))
        } + byteMerges
        var spelledMerges: [String] = []
        for (left, right) in pairs {
            spelledMerges.append(spell(bytes: left) + " " + spell(bytes: right))
            tokens.append(spell(bytes: left + right))
            types.append(TokenType.normal.rawValue)
        }
        return try Tokenizer(tokens: tokens, tokenTypes: types, merges: spelledMerges, preTokenizer: preTokenizer,
                             bosID: nil, eosID: endID, chatTemplate: chatTemplate,
                             keepInvalidTemplate: keepInvalidTemplate)
    }
}

extension Tokenizer {
    /// The id of a token given by its plain text (test convenience).
    func id(plain text: String) -> Int? { tokenID(TinyVocabulary.spell(text)) }
}
