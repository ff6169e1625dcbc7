import LlamaModel
import Training

/// Supervised fine-tuning: the mean negative log-likelihood of the labelled tokens of a step
/// (all micro-batches of the accumulation window pooled, as transformers counts
/// `num_items_in_batch`), with mean token accuracy.
public final class SFTObjective: Objective {
    public let train: [TokenizedExample]
    public let validation: [TokenizedExample]

    public init(train: [TokenizedExample], validation: [TokenizedExample]) {
        self.train = train; self.validation = validation
    }

    public var name: String { "sft" }

    public func count(_ set: ExampleSet) -> Int { examples(set).count }

    private func examples(_ set: ExampleSet) -> [TokenizedExample] { set == .train ? train : validation }

    public func prepare(_ context: ObjectiveContext, reference: TrainableLoRA?) throws {}

    public func accumulate(_ microBatches: [[Int]], context: ObjectiveContext,
                           dropoutKey: (Int) -> UInt64) throws -> ObjectiveStep {
        let batches = microBatches.map { $0.map { train[$0].sequence } }
        let labels = batches.joined().reduce(0) { $0 + $1.labelCount }
        var nll = 0.0, correct = 0, tokens = 0
        for (i, var batch) in batches.enumerated() {
            for j in batch.indices { batch[j].weight = 1 / Float(labels) }
            let losses = try context.model.trainingPass(batch, lora: context.lora, backward: true, dropoutKey: dropoutKey(i),
                                                          pause: context.pause)
            for l in losses { nll += l.nll; correct += l.correct }
            tokens += batch.reduce(0) { $0 + $1.tokens.count }
        }
        return ObjectiveStep(loss: nll / Double(labels), meanTokenAccuracy: Double(correct) / Double(labels),
                             tokens: tokens, labels: labels)
    }

    public func evaluate(_ set: ExampleSet, limit: Int?, context: ObjectiveContext) throws -> Evaluation? {
        let all = examples(set)
        let examples = limit.map { Array(all.prefix($0)) } ?? all
        if examples.isEmpty { return nil }
        var nll = 0.0, correct = 0, tokens = 0
        var start = 0
        while start < examples.count {
            let batch = examples[start..<min(examples.count, start + context.config.batchSize)].map(\.sequence)
            for l in try context.model.trainingPass(batch, lora: context.lora, backward: false, pause: context.pause) {
                nll += l.nll; correct += l.correct; tokens += l.tokens
            }
            start += context.config.batchSize
        }
        return Evaluation(loss: nll / Double(max(tokens, 1)), meanTokenAccuracy: Double(correct) / Double(max(tokens, 1)),
                          tokens: tokens)
    }
}
