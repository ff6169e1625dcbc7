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
        #expect(throws: TokenizerError.unknownPreTokenizer("llama-bpe")) { try PreTokenizer(name: "llama-bpe") }
        #expect((try? PreTokenizer(name: "default"))?.kind == .gpt2)
    }
}
