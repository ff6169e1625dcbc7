import GGUF
import Testing
import Tokenizer

/// A small SentencePiece vocabulary: `<unk>`, `<s>`, `</s>`, the 256 byte tokens, then
/// `pieces` with their scores.
private func sentencePiece(_ pieces: [(String, Float)], addBOS: Bool = true,
                           configure: (inout TokenizerConfiguration) -> Void = { _ in }) throws -> Tokenizer {
    var tokens = ["<unk>", "<s>", "</s>"]
    var types: [Int32] = [2, 3, 3]
    var scores: [Float] = [0, 0, 0]
    for byte in 0..<256 {
        let hex = String(byte, radix: 16, uppercase: true)
        tokens.append("<0x" + (hex.count == 1 ? "0" + hex : hex) + ">")
        types.append(TokenType.byte.rawValue)
        scores.append(0)
    }
    for (text, score) in pieces {
        tokens.append(text)
        types.append(TokenType.normal.rawValue)
        scores.append(score)
    }
    var configuration = TokenizerConfiguration(model: .sentencePiece, tokens: tokens)
    configuration.tokenTypes = types
    configuration.scores = scores
    configuration.bosID = 1
    configuration.eosID = 2
    configuration.unknownID = 0
    configuration.addBOS = addBOS
    configure(&configuration)
    return try Tokenizer(configuration)
}

@Suite("SentencePiece BPE")
struct SentencePieceTests {
    @Test("the pair whose token scores highest merges first, whatever its position")
    func mergesByScore() throws {
        let abFirst = try sentencePiece([("▁", -1), ("a", -1), ("b", -1), ("c", -1), ("ab", -2), ("bc", -3)])
        let ab = try #require(abFirst.tokenID("ab")), c = try #require(abFirst.tokenID("c"))
        #expect(abFirst.encode("abc") == [abFirst.tokenID("▁")!, ab, c])

        let bcFirst = try sentencePiece([("▁", -1), ("a", -1), ("b", -1), ("c", -1), ("ab", -3), ("bc", -2)])
        #expect(bcFirst.encode("abc") == [bcFirst.tokenID("▁")!, bcFirst.tokenID("a")!, bcFirst.tokenID("bc")!])
        #expect(bcFirst.tokenScore(bcFirst.tokenID("bc")!) == -2)
    }

    @Test("equal scores merge the leftmost pair first")
    func leftmostOnTies() throws {
        let tokenizer = try sentencePiece([("a", -1), ("aa", -1)], addBOS: false)
        let a = try #require(tokenizer.tokenID("a")), aa = try #require(tokenizer.tokenID("aa"))
        // "▁" is no token here, so it falls back to its three bytes.
        let space = [0xE2, 0x96, 0x81].map { 3 + $0 }
        #expect(tokenizer.encode("aaa") == space + [aa, a])
    }

    @Test("characters with no token fall back to <0xNN> byte tokens and decode back")
    func byteFallback() throws {
        let tokenizer = try sentencePiece([("▁", -1), ("h", -1), ("i", -1), ("▁h", -2), ("▁hi", -3)])
        // é is C3 A9; byte token ids are 3 + byte.
        #expect(tokenizer.encode("hié") == [tokenizer.tokenID("▁hi")!, 3 + 0xC3, 3 + 0xA9])
        #expect(tokenizer.tokenBytes(3 + 0xC3) == [0xC3])
        #expect(tokenizer.decode(tokenizer.encode("hié")) == "hié")
    }

    @Test("a space prefix is added before text and removed again on decode")
    func spacePrefix() throws {
        let tokenizer = try sentencePiece([("▁", -1), ("h", -1), ("i", -1), ("▁h", -2), ("▁hi", -3)])
        let hi = try #require(tokenizer.tokenID("▁hi"))
        #expect(tokenizer.encode("hi hi") == [hi, hi])
        #expect(tokenizer.decode([hi, hi]) == "hi hi")
        #expect(tokenizer.tokenBytes(hi) == Array(" hi".utf8))
        #expect(tokenizer.encode("hi", addSpecial: true, parseSpecial: false) == [1, hi])
        // A control token parsed out of the text starts a new fragment, which gets its own prefix.
        #expect(tokenizer.encode("hi</s>hi") == [hi, 2, hi])
        #expect(tokenizer.encode("hi</s>hi", parseSpecial: false).contains(2) == false)
    }

    @Test("a right-stripping special token swallows the whitespace after it")
    func rightStrip() throws {
        let pieces: [(String, Float)] = [("▁", -1), ("h", -1), ("i", -1), ("▁h", -2), ("▁hi", -3)]
        let plain = try sentencePiece(pieces)
        let stripping = try sentencePiece(pieces) { $0.rightStripIDs = [2] }
        let hi = try #require(plain.tokenID("▁hi")), space = try #require(plain.tokenID("▁"))
        #expect(plain.encode("</s> \n hi") == [2, space, space, 3 + 0x0A, hi])
        #expect(stripping.encode("</s> \n hi") == [2, hi])
        #expect(stripping.encode("hi </s>") == [hi, space, 2])
    }
}

@Suite("Gemma 4 BPE")
struct Gemma4Tests {
    @Test("ranked merges over UTF-8 with ▁ spaces, whole newline runs and byte fallback")
    func encodeDecode() throws {
        var tokens = ["<pad>", "<eos>", "<bos>"]
        for byte in 0..<256 {
            let hex = String(byte, radix: 16, uppercase: true)
            tokens.append("<0x" + (hex.count == 1 ? "0" + hex : hex) + ">")
        }
        tokens += ["▁", "a", "b", "\n", "\n\n", "▁a", "ab"]
        var configuration = TokenizerConfiguration(model: .gemma4, tokens: tokens)
        configuration.tokenTypes = [3, 3, 3] + Array(repeating: TokenType.byte.rawValue, count: 256)
            + Array(repeating: TokenType.normal.rawValue, count: 7)
        configuration.merges = ["▁ a", "a b"]
        configuration.bosID = 2
        configuration.eosID = 1
        configuration.addBOS = true
        configuration.addSpacePrefix = false
        let tokenizer = try Tokenizer(configuration)
        let id = { (text: String) in tokenizer.tokenID(text)! }
        let text = "ab a\n\né"
        #expect(tokenizer.encode(text, addSpecial: true, parseSpecial: false)
            == [2, id("ab"), id("▁a"), id("\n\n"), 3 + 0xC3, 3 + 0xA9])
        #expect(tokenizer.decode(tokenizer.encode(text)) == text)
        // A newline run that is no token is merged like any other run.
        #expect(tokenizer.encode("\n\n\n") == [id("\n"), id("\n"), id("\n")])
        #expect(tokenizer.endOfGenerationIDs == [1])
    }
}
