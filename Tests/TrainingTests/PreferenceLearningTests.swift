import DPOObjective
import Foundation
import LlamaModel
import TestSupport
import Testing
import Tokenizer
import Training

/// DPO with the default settings teaches the real model to prefer the right one of two
/// plausible answers (docs/examples/prefs: capitals against the better-known city), and the
/// preference carries over to paraphrased prompts it never saw and to its own greedy answers.
@Suite("Learning the preference example with DPO", .enabled(if: TestData.runRealModelTests), .serialized)
struct PreferenceLearningTests {
    struct HeldOut: Decodable {
        var prompt: String
        var must_contain: [String]
        var must_not_contain: [String]
    }

    /// (greedy answers containing the chosen key word, containing the rejected one).
    static func greedy(_ model: LlamaModel, _ questions: [HeldOut], adapters: AdapterMix) throws -> (Int, Int, [String]) {
        let template = try #require(model.tokenizer.chatTemplate)
        var right = 0, wrong = 0
        var answers: [String] = []
        for q in questions {
            let prompt = model.tokenizer.encode(try template.render([ChatMessage(role: "user", content: q.prompt)], addGenerationPrompt: true))
            let result = try model.generate(GenerationRequest(prompt: prompt, maxTokens: 32, sampling: .greedy, adapters: adapters))
            let a = model.tokenizer.decode(result.tokens).lowercased()
            answers.append(a)
            if q.must_contain.allSatisfy({ a.contains($0.lowercased()) }) { right += 1 }
            if q.must_not_contain.contains(where: { a.contains($0.lowercased()) }) { wrong += 1 }
        }
        return (right, wrong, answers)
    }

    @Test("held-out paraphrases: rewards/accuracies from 0 to at least 0.9; greedy answers name the chosen facts")
    func preferences() async throws {
        let path = try #require(TestData.realModelPath)
        let model = try LlamaModel(path: path)
        let dir = TestData.root.appendingPathComponent("docs/examples/prefs")
        let heldOutText = try Data(contentsOf: dir.appendingPathComponent("heldout.jsonl"))
        let heldOut = try String(decoding: heldOutText, as: UTF8.self).split(separator: "\n")
            .map { try JSONDecoder().decode(HeldOut.self, from: Data($0.utf8)) }
        var config = TrainingConfig()
        config.method = "dpo"
        config.preference = PreferenceSettings()
        config.lora.dropout = 0
        config.learningRate = TrainingConfig.dpoLearningRate
        config.epochs = TrainingConfig.dpoEpochs
        let render = RenderOptions(chatTemplate: model.tokenizer.chatTemplate, eosText: "<|im_end|>")
        let loader = PreferenceLoader(formats: preferenceFormats)
        let train = try loader.load(Data(contentsOf: dir.appendingPathComponent("train.jsonl")), name: "train.jsonl",
                                    tokenizer: model.tokenizer, options: render, maxSeqLen: config.maxSeqLen)
        let validation = try loader.load(heldOutText, name: "heldout.jsonl", tokenizer: model.tokenizer, options: render,
                                         maxSeqLen: config.maxSeqLen)
        let objective = DPOObjective(train: train.examples, validation: validation.examples, loss: DPOLoss())
        let started = Date()
        let trainer = try Trainer(model: model, config: config, objective: objective)
        let before = try #require(try trainer.evaluate())
        func accuracy(_ e: Evaluation) -> Double { e.metrics?.first { $0.name == "rewards/accuracies" }?.value ?? -1 }
        #expect(accuracy(before) == 0, "the policy starts equal to its reference: no reward wins")
        let base = try Self.greedy(model, heldOut, adapters: .none)
        try await onOwnThread { while !trainer.isFinished { _ = try trainer.step() } }
        let seconds = Date().timeIntervalSince(started)
        let after = try #require(try trainer.evaluate())
        let tuned = try Self.greedy(model, heldOut, adapters: AdapterMix(PreparedAdapter(trainer.lora.adapter(), config: model.config)))
        for (q, a) in zip(heldOut, tuned.2) where !a.contains(q.must_contain[0].lowercased()) { print("missed: \(q.prompt) -> \(a)") }
        let margins = after.metrics?.first { $0.name == "rewards/margins" }?.value ?? 0
        print(String(format: "prefs: held-out rewards/accuracies %.2f -> %.2f (margin %.2f); greedy chosen/rejected facts: base %d/%d, tuned %d/%d of %d; %d steps in %.0f s",
                     accuracy(before), accuracy(after), margins, base.0, base.1, tuned.0, tuned.1, heldOut.count, trainer.state.step, seconds))
        #expect(accuracy(after) >= 0.9)
        #expect(tuned.0 >= base.0 + 4 && tuned.0 >= 3 * tuned.1,
                "greedy answers: \(tuned.0) name the chosen capital (base \(base.0)), \(tuned.1) the rejected city (base \(base.1))")
    }
}
