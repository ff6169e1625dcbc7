import Foundation
import LlamaModel
import TestSupport
import SFTObjective
import Testing
import Tokenizer
import Training

/// Training with the default settings teaches the real model facts it cannot know, and it
/// answers paraphrased questions it never saw (docs/examples/facts).
@Suite("Learning the facts example with default settings", .enabled(if: TestData.runRealModelTests), .serialized)
struct LearningTests {
    struct HeldOut: Decodable {
        var question: String
        var must_contain: [String]
    }

    static func answers(_ model: LlamaModel, _ questions: [HeldOut], adapters: AdapterMix) throws -> [(HeldOut, String)] {
        let template = try #require(model.tokenizer.chatTemplate)
        return try questions.map { q in
            let prompt = model.tokenizer.encode(try template.render([ChatMessage(role: "user", content: q.question)], addGenerationPrompt: true))
            let result = try model.generate(GenerationRequest(prompt: prompt, maxTokens: 40, sampling: .greedy, adapters: adapters))
            return (q, model.tokenizer.decode(result.tokens))
        }
    }

    static func score(_ answers: [(HeldOut, String)]) -> Int {
        answers.filter { q, a in q.must_contain.allSatisfy { a.lowercased().contains($0.lowercased()) } }.count
    }

    @Test("held-out paraphrases: from about none right to at least 85%")
    func facts() async throws {
        let path = try #require(TestData.realModelPath)
        let model = try LlamaModel(path: path)
        let examples = TestData.root.appendingPathComponent("docs/examples/facts")
        let heldOut = try String(contentsOf: examples.appendingPathComponent("heldout.jsonl"), encoding: .utf8)
            .split(separator: "\n").map { try JSONDecoder().decode(HeldOut.self, from: Data($0.utf8)) }
        let base = Self.score(try Self.answers(model, heldOut, adapters: .none))
        #expect(base <= 2, "the base model already knows \(base) of the made-up facts")

        let config = TrainingConfig()
        let settings = DatasetLoader.Settings(render: RenderOptions(chatTemplate: model.tokenizer.chatTemplate, eosText: "<|im_end|>"),
                                              maxSeqLen: config.maxSeqLen)
        let data = try DatasetLoader(formats: formats).load(examples.appendingPathComponent("train.jsonl"),
                                                            tokenizer: model.tokenizer, settings: settings)
        let (train, validation) = data.split(fraction: config.validationSplit, seed: config.seed)
        let trainer = try Trainer(model: model, config: config, objective: SFTObjective(train: train, validation: validation))
        let started = Date()
        try await onOwnThread { while !trainer.isFinished { _ = try trainer.step() } }
        let seconds = Date().timeIntervalSince(started)
        let tuned = try Self.answers(model, heldOut, adapters: AdapterMix(PreparedAdapter(trainer.lora.adapter(), config: model.config)))
        let right = Self.score(tuned)
        for (q, a) in tuned where !q.must_contain.allSatisfy({ a.lowercased().contains($0.lowercased()) }) {
            print("missed: \(q.question) -> \(a)")
        }
        print(String(format: "facts: base %d/%d, tuned %d/%d after %d steps in %.0f s", base, heldOut.count, right, heldOut.count,
                     trainer.state.step, seconds))
        #expect(Double(right) >= 0.85 * Double(heldOut.count), "\(right)/\(heldOut.count) held-out answers right")
    }
}
