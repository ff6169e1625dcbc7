import Testing
import Tokenizer

@Suite("Byte-level BPE")
struct BytePairEncodingTests {
    @Test("merges apply in rank order, not left to right")
    func rankOrder() throws {
        let leftFirst = try TinyVocabulary.make(merges: ["a|b", "b|c"])
        #expect(leftFirst.encode("abc") == [leftFirst.id(plain: "ab")!, TinyVocabulary.byteID(0x63)])

        let rightFirst = try TinyVocabulary.make(merges: ["b|c", "a|b"])
        #expect(rightFirst.encode("abc") == [TinyVocabulary.byteID(0x61), rightFirst.id(plain: "bc")!])

        let chained = try TinyVocabulary.make(merges: ["b|c", "a|b", "a|bc", "ab|c"])
        #expect(chained.encode("abc") == [chained.id(plain: "abc")!])
        #expect(chained.tokenText(chained.encode("abc")[0]) == "abc")
    }

    @Test("equal ranks merge leftmost first")
    func leftmostOnTies() throws {
        let tokenizer = try TinyVocabulary.make(merges: ["a|a", "aa|aa"])
        let aa = try #require(tokenizer.id(plain: "aa"))
        #expect(tokenizer.encode("aaa") == [aa, TinyVocabulary.byteID(0x61)])
        #expect(tokenizer.encode("aaaa") == [tokenizer.id(plain: "aaaa")!])
        #expect(tokenizer.encode("aaaaa") == [tokenizer.id(plain: "aaaa")!, TinyVocabulary.byteID(0x61)])
    }

    @Test("merges never cross pre-tokenizer pieces")
    func piecesAreIndependent() throws {
        let tokenizer = try TinyVocabulary.make(merges: ["a| ", " |b", "a|1"])
        #expect(tokenizer.encode("a b") == [TinyVocabulary.byteID(0x61), tokenizer.id(plain: " b")!])
        #expect(tokenizer.encode("a1") == TinyVocabulary.byteIDs("a1"))
    }

    @Test("every byte 0...255 round-trips through encode, decode and tokenBytes")
    func byteFallback() throws {
        let tokenizer = try TinyVocabulary.make()
        for byte in 0...255 {
            #expect(tokenizer.tokenBytes(TinyVocabulary.byteID(UInt8(byte))) == [UInt8(byte)], "byte \(byte)")
            let text = String(Unicode.Scalar(UInt8(byte)))
            let ids = tokenizer.encode(text)
            #expect(ids == TinyVocabulary.byteIDs(text), "scalar U+\(String(byte, radix: 16))")
            #expect(tokenizer.decode(ids) == text, "scalar U+\(String(byte, radix: 16))")
        }
        let mixed = "\0\u{7F} é€😀 \r\n\t\u{FFFD}"
        #expect(tokenizer.decode(tokenizer.encode(mixed)) == mixed)
        #expect(tokenizer.decode([TinyVocabulary.byteID(0xFF)]) == "\u{FFFD}")
    }

    @Test("control tokens in text are matched whole; partial spellings are text")
    func specialTokens() throws {
        let tokenizer = try TinyVocabulary.make(extra: [("<|e", .control), ("<user>", .userDefined)])
        let endID = TinyVocabulary.endID
        let shortID = try #require(tokenizer.tokenID("<|e"))
        let userID = try #require(tokenizer.tokenID("<user>"))
        #expect(tokenizer.encode("x<|end|>y") == [TinyVocabulary.byteID(0x78), endID, TinyVocabulary.byteID(0x79)])
        #expect(tokenizer.encode("<|end|><|end|>") == [endID, endID])
        // Longest spelling wins where both start.
        #expect(tokenizer.encode("<|ex") == [shortID, TinyVocabulary.byteID(0x78)])
        #expect(tokenizer.encode("<|END|>") == TinyVocabulary.byteIDs("<|END|>"))
        #expect(tokenizer.encode("<|end|", parseSpecial: true) == [shortID] + TinyVocabulary.byteIDs("nd|"))
        #expect(tokenizer.encode("<|end|>", parseSpecial: false) == TinyVocabulary.byteIDs("<|end|>"))
        // User-defined tokens are matched even without special parsing.
        #expect(tokenizer.encode("a<user>", parseSpecial: false) == [TinyVocabulary.byteID(0x61), userID])
        #expect(tokenizer.decode([endID, userID]) == "<|end|><user>")
        #expect(tokenizer.isControl(endID) && !tokenizer.isControl(userID) && !tokenizer.isControl(1))
    }

    @Test("text around a control token is pre-tokenized separately")
    func fragmentsAroundSpecials() throws {
        let tokenizer = try TinyVocabulary.make(merges: [" | "])
        // Without the split, "  " would become one merged token spanning the control token.
        #expect(tokenizer.encode(" <|end|> ") == [TinyVocabulary.byteID(0x20), TinyVocabulary.endID, TinyVocabulary.byteID(0x20)])
        #expect(tokenizer.encode("  ") == [tokenizer.id(plain: "  ")!])
    }

    @Test("malformed merges are rejected with their index")
    func badMerges() throws {
        for (merge, index) in [("ab", 1), ("a  b", 1), (" a", 1), ("a ", 1), ("a b c", 1)] {
            #expect(throws: TokenizerError.badMerge(index: index, text: merge)) {
                try Tokenizer(tokens: ["a", "b", "ab"], tokenTypes: [], merges: ["a b", merge], preTokenizer: "gpt2",
                              bosID: nil, eosID: nil, chatTemplate: nil)
            }
        }
        #expect(throws: TokenizerError.mergeTokenNotInVocabulary(index: 1, text: "a zz", token: "zz")) {
            try Tokenizer(tokens: ["a", "b", "ab"], tokenTypes: [], merges: ["a b", "a zz"], preTokenizer: "gpt2",
                          bosID: nil, eosID: nil, chatTemplate: nil)
        }
        #expect(throws: TokenizerError.mergeTokenNotInVocabulary(index: 0, text: "a b", token: "ab")) {
            try Tokenizer(tokens: ["a", "b"], tokenTypes: [], merges: ["a b"], preTokenizer: "gpt2",
                          bosID: nil, eosID: nil, chatTemplate: nil)
        }
    }

    @Test("inconsistent vocabularies are rejected")
    func badVocabularies() throws {
        func make(tokens: [String] = ["a"], types: [Int32] = [], pre: String = "smollm", bos: Int? = nil) throws {
            _ = try Tokenizer(tokens: tokens, tokenTypes: types, merges: [], preTokenizer: pre,
                              bosID: bos, eosID: nil, chatTemplate: nil)
        }
        #expect(throws: TokenizerError.emptyVocabulary) { try make(tokens: []) }
        #expect(throws: TokenizerError.tokenTypeCountMismatch(tokens: 1, types: 2)) { try make(types: [1, 1]) }
        #expect(throws: TokenizerError.invalidTokenType(index: 0, value: 9)) { try make(types: [9]) }
        #expect(throws: TokenizerError.unknownPreTokenizer("bert-bge")) { try make(pre: "bert-bge") }
        #expect(throws: TokenizerError.specialIDOutOfRange(name: "BOS", id: 5, vocabularySize: 1)) { try make(bos: 5) }
        try make(types: [0])
        try make(pre: "default")
    }

    @Test("errors describe themselves with their facts")
    func errorDescriptions() {
        #expect(TokenizerError.badMerge(index: 7, text: "ab").description.contains("merge 7"))
        #expect(TokenizerError.unknownPreTokenizer("qwen2").description.contains("qwen2"))
    }
}
