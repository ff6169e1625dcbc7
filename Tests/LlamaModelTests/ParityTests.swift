import Foundation
import LlamaModel
import TestSupport
import Testing

/// Parity with the PyTorch reference fixtures on the real SmolLM2 model.
@Suite("SmolLM2 parity with the reference fixtures", .enabled(if: TestData.runRealModelTests), .serialized)
struct ParityTests {
    struct Fixtures: Decodable {
        struct Prompt: Decodable {
            var name: String
            var file: String
            var prompt_ids: [Int]
            var greedy_ids: [Int]
            var top1_top2_margins: [Double]
        }
        var logits: [Prompt]
    }

    static let model = Result { () throws -> LlamaModel in
        let path = try #require(TestData.realModelPath, "model not pulled (run `graft pull`)")
        return try LlamaModel(path: path)
    }

    static func fixtures() throws -> Fixtures {
        try JSONDecoder().decode(Fixtures.self, from: Data(contentsOf: TestData.fixture("smollm2/fixtures.json")))
    }

    @Test("logits of the last 4 positions are within 2e-3 of the reference with the same argmax")
    func logits() throws {
        let model = try Self.model.get()
        let vocab = model.config.vocabularySize
        var worst: Float = 0
        for p in try Self.fixtures().logits {
            let expected = try TestData.floats("smollm2/\(p.file)")
            let got = try model.forward(p.prompt_ids, cache: model.makeCache(), logits: .last(4))
            let diff = maxAbsDifference(got, expected)
            worst = max(worst, diff)
            #expect(diff <= 2e-3, "\(p.name): max abs difference \(diff)")
            for r in 0..<4 {
                let row = Array(got[r * vocab..<(r + 1) * vocab]), ref = Array(expected[r * vocab..<(r + 1) * vocab])
                let sorted = ref.sorted(by: >)
                if sorted[0] - sorted[1] >= 1e-3 {
                    #expect(row.firstIndex(of: row.max()!) == ref.firstIndex(of: sorted[0]), "\(p.name) row \(r): argmax differs")
                }
            }
        }
        print("base logits: max abs difference \(worst) over \(try Self.fixtures().logits.count) prompts")
    }

    @Test("greedy continuations equal the reference up to the first near-tie")
    func greedy() throws {
        let model = try Self.model.get()
        for p in try Self.fixtures().logits {
            let steps = p.top1_top2_margins.firstIndex { $0 < 1e-3 } ?? p.greedy_ids.count
            let result = try model.generate(GenerationRequest(prompt: p.prompt_ids, maxTokens: steps,
                                                              sampling: .greedy, stopAtEOS: false))
            #expect(result.tokens == Array(p.greedy_ids.prefix(steps)), "\(p.name): first \(steps) greedy tokens differ")
        }
    }
}
