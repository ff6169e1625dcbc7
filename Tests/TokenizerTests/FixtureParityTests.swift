import Foundation
import Testing
import Tokenizer

/// The real tokenizer, loaded once for all parity tests.
private let sharedRealTokenizer = Result { try realTokenizer() }

/// Parity tests run when the vocabulary is available (or failed to load, which should be
/// reported); GRAFT_REQUIRE_MODEL=1 makes a missing vocabulary a failure instead of a skip.
private var parityEnabled: Bool {
    if ProcessInfo.processInfo.environment["GRAFT_REQUIRE_MODEL"] == "1" { return true }
    switch sharedRealTokenizer {
    case .success(let tokenizer): return tokenizer != nil
    case .failure: return true
    }
}

private func loadedTokenizer() throws -> Tokenizer {
    try #require(try sharedRealTokenizer.get(), "real vocabulary unavailable (GRAFT_REQUIRE_MODEL=1)")
}

private struct TokenizerLine: Decodable {
    let i: Int
    let category: String
    let text: String
    let ids: [Int]
    let decoded: String
}

private struct ChatLine: Decodable {
    let i: Int
    let messages: [ChatMessage]
    let add_generation_prompt: Bool
    let rendered: String
    let ids: [Int]
}

private func fixtureLines<Line: Decodable>(_ name: String, as type: Line.Type) throws -> [Line] {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/smollm2/\(name)")
    let text = try String(contentsOf: url, encoding: .utf8)
    let decoder = JSONDecoder()
    return try text.split(separator: "\n").map { try decoder.decode(Line.self, from: Data($0.utf8)) }
}

/// Describes where two sequences first differ, for failure messages.
func firstDifference<T: Equatable>(_ got: [T], _ expected: [T]) -> String {
    let index = zip(got, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        ?? min(got.count, expected.count)
    let gotItem = index < got.count ? "\(got[index])" : "<end>"
    let expectedItem = index < expected.count ? "\(expected[index])" : "<end>"
    return "first difference at \(index): got \(gotItem), expected \(expectedItem) (lengths \(got.count) vs \(expected.count))"
}

@Suite("SmolLM2 fixture parity")
struct FixtureParityTests {
    @Test("every tokenizer.jsonl line encodes to its ids and decodes to its text", .enabled(if: parityEnabled))
    func tokenizerFixture() throws {
        let tokenizer = try loadedTokenizer()
        let lines = try fixtureLines("tokenizer.jsonl", as: TokenizerLine.self)
        #expect(lines.count == 300)
        var passed = 0
        for line in lines {
            let ids = tokenizer.encode(line.text)
            let decoded = tokenizer.decode(line.ids)
            #expect(ids == line.ids, "line \(line.i) (\(line.category)) encode: \(firstDifference(ids, line.ids))")
            #expect(decoded == line.decoded,
                    "line \(line.i) decode: \(firstDifference(Array(decoded.unicodeScalars), Array(line.decoded.unicodeScalars)))")
            if ids == line.ids && decoded == line.decoded { passed += 1 }
        }
        print("tokenizer.jsonl: \(passed)/\(lines.count) lines match")
    }

    @Test("every chat_template.jsonl line renders and encodes exactly", .enabled(if: parityEnabled))
    func chatTemplateFixture() throws {
        let tokenizer = try loadedTokenizer()
        let template = try #require(tokenizer.chatTemplate)
        let lines = try fixtureLines("chat_template.jsonl", as: ChatLine.self)
        #expect(lines.count == 20)
        var passed = 0
        for line in lines {
            let rendered = try template.render(line.messages, addGenerationPrompt: line.add_generation_prompt)
            let ids = tokenizer.encode(rendered)
            #expect(rendered == line.rendered,
                    "line \(line.i) render: \(firstDifference(Array(rendered.unicodeScalars), Array(line.rendered.unicodeScalars)))")
            #expect(ids == line.ids, "line \(line.i) encode: \(firstDifference(ids, line.ids))")
            if rendered == line.rendered && ids == line.ids { passed += 1 }
        }
        print("chat_template.jsonl: \(passed)/\(lines.count) lines match")
    }

    @Test("streaming decode of every fixture line equals batch decode", .enabled(if: parityEnabled))
    func streamingFixture() throws {
        let tokenizer = try loadedTokenizer()
        for line in try fixtureLines("tokenizer.jsonl", as: TokenizerLine.self) {
            var decoder = StreamingDecoder(tokenizer: tokenizer)
            var text = line.ids.map { decoder.append($0) }.joined()
            text += decoder.finish()
            #expect(text == line.decoded, "line \(line.i) streaming decode differs")
        }
    }

    @Test("special ids and token types match the model facts", .enabled(if: parityEnabled))
    func modelFacts() throws {
        let tokenizer = try loadedTokenizer()
        #expect(tokenizer.vocabularySize == 49152)
        #expect(tokenizer.bosID == 1)
        #expect(tokenizer.eosID == 2)
        #expect((0..<tokenizer.vocabularySize).filter(tokenizer.isControl) == Array(0...16))
        #expect(tokenizer.tokenText(1) == "<|im_start|>")
        #expect(tokenizer.tokenID("<|im_end|>") == 2)
        #expect(tokenizer.encode("<|im_start|>", parseSpecial: false) != [1])
        #expect(tokenizer.chatTemplate?.defaultSystemPrompt == "You are a helpful AI assistant named SmolLM, trained by Hugging Face")
    }
}
