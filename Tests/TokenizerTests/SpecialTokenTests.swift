import GGUF
import Testing
import Tokenizer

@Suite("Special tokens and metadata")
struct SpecialTokenTests {
    @Test("a longer special token wins over a shorter one that starts earlier")
    func longestFirst() throws {
        let tokenizer = try TinyVocabulary.make(extra: [("ab", .userDefined), ("bcd", .userDefined)])
        let ab = try #require(tokenizer.tokenID("ab")), bcd = try #require(tokenizer.tokenID("bcd"))
        #expect(tokenizer.encode("abcd") == [TinyVocabulary.byteID(0x61), bcd])
        #expect(tokenizer.encode("abxbcd") == [ab, TinyVocabulary.byteID(0x78), bcd])
    }

    @Test("content encoding leaves control spellings as text; user-defined tokens still match")
    func contentEncoding() throws {
        let tokenizer = try TinyVocabulary.make(extra: [("<|im_start|>", .control), ("<tool>", .userDefined)])
        let start = try #require(tokenizer.tokenID("<|im_start|>")), tool = try #require(tokenizer.tokenID("<tool>"))
        #expect(tokenizer.encode("<|im_start|>x") == [start, TinyVocabulary.byteID(0x78)])
        let content = tokenizer.encode("<|im_start|>x", parseSpecial: false)
        #expect(content == TinyVocabulary.byteIDs("<|im_start|>x"))
        #expect(tokenizer.decode(content) == "<|im_start|>x")
        #expect(tokenizer.encode("<tool>", parseSpecial: false) == [tool])
    }

    @Test("end of generation: EOS plus tokens spelled like an end of turn, matched as control")
    func endOfGeneration() throws {
        let tokenizer = try TinyVocabulary.make(extra: [("<|im_end|>", .normal), ("<|eot_id|>", .control), ("<x>", .control)])
        let imEnd = try #require(tokenizer.tokenID("<|im_end|>")), eot = try #require(tokenizer.tokenID("<|eot_id|>"))
        #expect(tokenizer.endOfGenerationIDs == [TinyVocabulary.endID, imEnd, eot])
        #expect(tokenizer.eotID == TinyVocabulary.endID)   // `<|end|>` is spelled like an end of turn too
        #expect(tokenizer.encode("<|im_end|>") == [imEnd])
        #expect(tokenizer.encode("<|im_end|>", parseSpecial: false) == TinyVocabulary.byteIDs("<|im_end|>"))
    }

    @Test("a merge whose parts or result are missing names its index and text")
    func brokenMerge() throws {
        let tokens = TinyVocabulary.byteSpellings + ["ab"]
        do {
            _ = try Tokenizer(tokens: tokens, tokenTypes: [], merges: ["a b", "ab c"], preTokenizer: "gpt-2",
                              bosID: nil, eosID: nil, chatTemplate: nil)
            Issue.record("a merge producing a missing token was accepted")
        } catch let error as TokenizerError {
            #expect(error == .mergeTokenNotInVocabulary(index: 1, text: "ab c", token: "abc"))
            #expect(error.description == "merge 1 \"ab c\" uses \"abc\", which is not in the vocabulary")
        }
    }

    @Test("inconsistent configurations are rejected with their facts")
    func validation() throws {
        var configuration = TokenizerConfiguration(model: .sentencePiece, tokens: ["<unk>", "<s>", "</s>"])
        configuration.bosID = 1
        configuration.scores = [0, 0]
        #expect(throws: TokenizerError.scoreCountMismatch(tokens: 3, scores: 2)) { try Tokenizer(configuration) }
        configuration.scores = []
        configuration.eotID = 7
        #expect(throws: TokenizerError.specialIDOutOfRange(name: "EOT", id: 7, vocabularySize: 3)) { try Tokenizer(configuration) }
        configuration.eotID = nil
        configuration.bosID = nil
        #expect(throws: TokenizerError.missingSpecialToken("BOS")) { try Tokenizer(configuration) }
    }

    @Test("a vocabulary-only GGUF loads with llama.cpp's per-model defaults")
    func ggufDefaults() throws {
        func file(_ model: String, pre: String?, extra: [(String, GGUFValue)] = []) throws -> GGUFFile {
            var writer = GGUFWriter()
            writer.set("general.architecture", .string("llama"))
            writer.set("tokenizer.ggml.model", .string(model))
            if let pre { writer.set("tokenizer.ggml.pre", .string(pre)) }
            let spellings = ["<unk>", "<s>", "</s>"] + TinyVocabulary.byteSpellings + ["<|eot_id|>"]
            writer.set("tokenizer.ggml.tokens", .array(elementType: 8, spellings.map { .string($0) }))
            writer.set("tokenizer.ggml.merges", .array(elementType: 8, []))
            for (key, value) in extra { writer.set(key, value) }
            return try GGUFFile(data: writer.serialize())
        }
        let spm = try Tokenizer(gguf: file("llama", pre: nil))
        #expect(spm.model == .sentencePiece && spm.bosID == 1 && spm.eosID == 2 && spm.unknownID == 0)
        #expect(spm.addBOS && !spm.addEOS && spm.addSpacePrefix)
        let llama3 = try Tokenizer(gguf: file("gpt2", pre: "llama-bpe", extra: [("tokenizer.ggml.bos_token_id", .uint32(1))]))
        #expect(llama3.model == .bytePair && llama3.addBOS && !llama3.addSpacePrefix && llama3.bosID == 1)
        #expect(llama3.endOfGenerationIDs.contains(259) && llama3.eotID == 259)
        let off = try Tokenizer(gguf: file("gpt2", pre: "qwen2", extra: [("tokenizer.ggml.add_bos_token", .bool(false))]))
        #expect(!off.addBOS && off.eosID == 11)
        #expect(throws: TokenizerError.unknownPreTokenizer("kimi-k2")) { try Tokenizer(gguf: file("gpt2", pre: "kimi-k2")) }
        #expect(throws: TokenizerError.unsupportedModel("bert")) { try Tokenizer(gguf: file("bert", pre: nil)) }
        let outOfRange = try file("llama", pre: nil, extra: [("tokenizer.ggml.eos_token_id", .uint32(999))])
        #expect(throws: TokenizerError.specialIDOutOfRange(name: "EOS", id: 999, vocabularySize: 260)) {
            try Tokenizer(gguf: outOfRange)
        }
    }
}
