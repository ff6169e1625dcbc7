import Testing
import Tokenizer

@Suite("Pre-tokenizer")
struct PreTokenizerTests {
    let smollm = try! PreTokenizer(name: "smollm")
    let gpt2 = try! PreTokenizer(name: "gpt2")

    @Test("a whitespace run leaves its last space to the following word")
    func whitespaceBeforeWords() {
        #expect(smollm.split("  leading two spaces") == [" ", " leading", " two", " spaces"])
        #expect(smollm.split("a  b") == ["a", " ", " b"])
        #expect(smollm.split("foo  \nbar") == ["foo", "  ", "\n", "bar"])
        #expect(smollm.split("\tA") == ["\t", "A"])
        #expect(smollm.split("a\u{A0}b") == ["a", "\u{A0}", "b"])
    }

    @Test("trailing whitespace stays one piece")
    func whitespaceAtEnd() {
        #expect(smollm.split("word   ") == ["word", "   "])
        #expect(smollm.split(" \t \t ") == [" \t \t "])
        #expect(smollm.split("   \n   \n") == ["   \n   \n"])
        #expect(smollm.split("") == [])
    }

    @Test("smollm isolates every numeral; gpt2 keeps digit runs")
    func digits() {
        #expect(smollm.split("x   123") == ["x", "   ", "1", "2", "3"])
        #expect(gpt2.split("x   123") == ["x", "  ", " 123"])
        #expect(smollm.split("a\n\n1") == ["a", "\n\n", "1"])
        #expect(gpt2.split("a\n\n1") == ["a", "\n", "\n", "1"])
        #expect(smollm.split("3.14") == ["3", ".", "1", "4"])
        #expect(gpt2.split("3.14") == ["3", ".", "14"])
    }

    @Test("non-ASCII numerals count as \\p{N} and letters as \\p{L}")
    func unicodeClasses() {
        #expect(smollm.split("½²٣Ⅷ") == ["½", "²", "٣", "Ⅷ"])
        #expect(gpt2.split("½²٣Ⅷ") == ["½²٣Ⅷ"])
        #expect(smollm.split("x½y") == ["x", "½", "y"])
        #expect(smollm.split("café naïve Жук 你好") == ["café", " naïve", " Жук", " 你好"])
        // A combining mark is neither letter nor number.
        #expect(smollm.split("e\u{301}") == ["e", "\u{301}"])
    }

    @Test("contractions split off, case-sensitively")
    func contractions() {
        #expect(smollm.split("I'm you're they've we'll she'd it's don't")
            == ["I", "'m", " you", "'re", " they", "'ve", " we", "'ll", " she", "'d", " it", "'s", " don", "'t"])
        #expect(smollm.split("IT'S 's") == ["IT", "'", "S", " '", "s"])
        #expect(smollm.split("hello!!! world") == ["hello", "!!!", " world"])
    }

    @Test("unknown names are rejected")
    func unknownName() {
        #expect(throws: TokenizerError.unknownPreTokenizer("kimi-k2")) { try PreTokenizer(name: "kimi-k2") }
        #expect(TokenizerError.unknownPreTokenizer("kimi-k2").description.contains("\"kimi-k2\""))
        #expect((try? PreTokenizer(name: "default"))?.kind == .legacy)
        for (name, kind) in [("llama-bpe", PreTokenizer.Kind.llama3), ("llama3", .llama3), ("llama-v3", .llama3),
                             ("falcon3", .llama3), ("pixtral", .llama3), ("qwen2", .qwen2),
                             ("deepseek-r1-qwen", .qwen2), ("stablelm2", .qwen2), ("smollm", .smollm),
                             ("starcoder", .smollm), ("refact", .smollm), ("command-r", .smollm),
                             ("gpt-2", .gpt2), ("phi-2", .gpt2), ("mellum", .gpt2), ("tekken", .tekken)] {
            #expect((try? PreTokenizer(name: name))?.kind == kind, "\(name)")
        }
    }

    @Test("llama3 keeps up to three digits, any-case contractions and a non-letter lead")
    func llama3() throws {
        let llama3 = try PreTokenizer(name: "llama-bpe")
        #expect(llama3.split("x 12345") == ["x", " ", "123", "45"])
        #expect(llama3.split("DON'T we'LL") == ["DON", "'T", " we", "'LL"])
        #expect(llama3.split("(hello) \n\n  world") == ["(hello", ")", " \n\n", " ", " world"])
        #expect(llama3.split("a !!\n\nb") == ["a", " !!\n\n", "b"])
        #expect(try PreTokenizer(name: "qwen2").split("x 123") == ["x", " ", "1", "2", "3"])
        // Qwen 3.5 keeps a combining mark with its letter; Qwen 2 does not.
        #expect(try PreTokenizer(name: "qwen35").split("e\u{301}x") == ["e\u{301}x"])
        #expect(try PreTokenizer(name: "qwen2").split("e\u{301}x") == ["e", "\u{301}x"])
    }

    @Test("tekken splits letter runs at a lower-to-upper change and isolates digits")
    func tekken() throws {
        let tekken = try PreTokenizer(name: "tekken")
        #expect(tekken.split("HelloWorld ABCdef") == ["Hello", "World", " ABCdef"])
        #expect(tekken.split("ALLCAPS 42") == ["ALLCAPS", " ", "4", "2"])
        #expect(tekken.split("a/b//\n") == ["a", "/b", "//\n"])
    }

    @Test("the legacy set and falcon cut punctuation runs and ASCII digit triples")
    func legacy() throws {
        let legacy = try PreTokenizer(name: "default")
        #expect(legacy.split("abc...def 1234567") == ["abc", "...", "def", " ", "123", "456", "7"])
        let falcon = try PreTokenizer(name: "falcon")
        #expect(falcon.split("a`b 12345") == ["a", "`", "b", " ", "123", "45"])
    }
}
