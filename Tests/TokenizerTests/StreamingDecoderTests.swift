import Testing
import Tokenizer

@Suite("Streaming decoder")
struct StreamingDecoderTests {
    /// Feeds `ids` one at a time, returning each step's output and the final flush.
    private func stream(_ tokenizer: Tokenizer, _ ids: [Int]) -> (steps: [String], finish: String) {
        var decoder = StreamingDecoder(tokenizer: tokenizer)
        let steps = ids.map { decoder.append($0) }
        return (steps, decoder.finish())
    }

    @Test("a multi-byte character split across tokens is released once complete")
    func splitCharacter() throws {
        let tokenizer = try TinyVocabulary.make(byteMerges: [([0xF0], [0x9F])])
        let e = TinyVocabulary.byteIDs("é")
        #expect(stream(tokenizer, e).steps == ["", "é"])

        // 😀 = F0 9F 98 80, here as one merged two-byte token then two single bytes.
        let ids = tokenizer.encode("a😀b")
        #expect(ids.count == 5)
        let result = stream(tokenizer, ids)
        #expect(result.steps == ["a", "", "", "😀", "b"])
        #expect(result.finish == "")
    }

    @Test("invalid bytes become U+FFFD as soon as they cannot complete")
    func invalidSequences() throws {
        let tokenizer = try TinyVocabulary.make()
        let byte = { TinyVocabulary.byteID($0) }
        #expect(stream(tokenizer, [byte(0xC3), byte(0x41)]).steps == ["", "\u{FFFD}A"])
        // E0 must be followed by A0...BF, so E0 80 is already hopeless.
        #expect(stream(tokenizer, [byte(0xE0), byte(0x80)]).steps.last?.isEmpty == false)
        #expect(stream(tokenizer, [byte(0x80)]).steps == ["\u{FFFD}"])
        let unfinished = stream(tokenizer, [byte(0xE2), byte(0x82)])
        #expect(unfinished.steps == ["", ""])
        #expect(unfinished.finish == "\u{FFFD}")
    }

    @Test("streamed text always equals batch decode")
    func matchesBatchDecode() throws {
        let tokenizer = try TinyVocabulary.make()
        let byte = { TinyVocabulary.byteID($0) }
        let sequences: [[Int]] = [
            TinyVocabulary.byteIDs("héllo wörld ✓ 😀"),
            [byte(0xE2), byte(0x82), byte(0xE2), byte(0x82), byte(0xAC)],
            [byte(0xF0), byte(0x9F), TinyVocabulary.endID, byte(0x98), byte(0x80)],
            [byte(0xED), byte(0xA0), byte(0x80), byte(0xF4), byte(0x90), byte(0xC0), byte(0xFF)],
        ]
        for ids in sequences {
            let result = stream(tokenizer, ids)
            #expect(result.steps.joined() + result.finish == tokenizer.decode(ids), "ids \(ids)")
        }
    }

    @Test("control tokens stream as their literal text")
    func controlTokens() throws {
        let tokenizer = try TinyVocabulary.make()
        #expect(stream(tokenizer, TinyVocabulary.byteIDs("hi") + [TinyVocabulary.endID]).steps == ["h", "i", "<|end|>"])
    }
}
