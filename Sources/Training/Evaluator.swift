import Foundation
import LlamaModel
import Tokenizer

/// Scores an adapter (and optionally the base) on SFT rows: the target's loss, perplexity and
/// token accuracy, and the greedy answer against the target (exact match, key words).
public struct Evaluator: Sendable {
    /// One row to evaluate: its rendered pieces and optional key words.
    public struct Item: Sendable {
        public var line: Int
        public var pieces: [Piece]
        public var mustContain: [String]
        public init(line: Int, pieces: [Piece], mustContain: [String]) {
            self.line = line; self.pieces = pieces; self.mustContain = mustContain
        }
    }

    public let model: LlamaModel
    /// Longest greedy answer, in tokens.
    public var maxNewTokens = 64
    /// Sequences per scoring pass.
    public var batchSize = 4
    /// Text that ends an answer turn (removed from targets and answers).
    public var endOfTurn: [String] = ["<|im_end|>\n", "<|im_end|>"]

    public init(model: LlamaModel) { self.model = model }

    /// The prompt (everything before the last trained piece) and the target (that piece).
    public func split(_ item: Item) -> (prompt: String, target: String)? {
        guard let k = item.pieces.lastIndex(where: \.trained) else { return nil }
        return (item.pieces[..<k].map(\.text).joined(), item.pieces[k].text)
    }

    /// `s` without a trailing end-of-turn marker.
    public func strip(_ s: String) -> String {
        for e in endOfTurn where s.hasSuffix(e) { return String(s.dropLast(e.count)) }
        return s
    }

    /// Answers and losses of one model (`adapter` nil: the base) for every item.
    public func answers(_ items: [Item], adapter: LoRAAdapter?, progress: (Int) -> Void = { _ in }) throws
        -> (answers: [EvalReport.Answer], summary: EvalReport.Summary) {
        let tokenizer = model.tokenizer
        let lora = try adapter.map { try TrainableLoRA(adapter: $0, config: model.config) }
        let mix = try adapter.map { AdapterMix(try PreparedAdapter($0, config: model.config)) } ?? .none
        var sequences: [TrainingSequence] = []
        var prompts: [[Int]] = []
        for item in items {
            guard let (prompt, target) = split(item) else { throw DatasetError(file: "", line: item.line, "has no target to evaluate") }
            let p = tokenizer.encodePrompt(prompt), t = tokenizer.encode(target)
            prompts.append(p)
            sequences.append(PreferenceExample.sequence(prompt: p, completion: t))
        }
        var losses: [SequenceLoss] = []
        var start = 0
        while start < sequences.count {
            let batch = Array(sequences[start..<min(sequences.count, start + batchSize)])
            losses += try model.trainingPass(batch, lora: lora, backward: false)
            start += batch.count
        }
        var answers: [EvalReport.Answer] = []
        var nll = 0.0, tokens = 0, correct = 0, exact = 0, contained = 0, keyed = 0
        for (i, item) in items.enumerated() {
            let result = try model.generate(GenerationRequest(prompt: prompts[i], maxTokens: maxNewTokens, sampling: .greedy,
                                                              stop: endOfTurn, adapters: mix))
            let text = strip(result.text).trimmingCharacters(in: .whitespacesAndNewlines)
            let target = strip(split(item)!.target)
            let isExact = AnswerMatch.exact(text, target)
            let has: Bool? = item.mustContain.isEmpty ? nil : AnswerMatch.contains(text, all: item.mustContain)
            let l = losses[i]
            answers.append(EvalReport.Answer(text: text, loss: l.nll / Double(max(l.tokens, 1)), exact: isExact, contains: has))
            nll += l.nll; tokens += l.tokens; correct += l.correct
            if isExact { exact += 1 }
            if let has { keyed += 1; if has { contained += 1 } }
            progress(i + 1)
        }
        let summary = EvalReport.Summary(loss: nll / Double(max(tokens, 1)), meanTokenAccuracy: Double(correct) / Double(max(tokens, 1)),
                                         exactMatch: Double(exact) / Double(max(items.count, 1)),
                                         mustContain: keyed > 0 ? Double(contained) / Double(keyed) : nil)
        return (answers, summary)
    }
}
