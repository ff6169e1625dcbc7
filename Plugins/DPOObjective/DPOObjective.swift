import LlamaModel
import Training

/// Direct preference optimization (TRL's DPOTrainer with a LoRA policy): each pair's chosen and
/// rejected sequences run in one pass; the reference log-probabilities are computed once, in
/// `prepare`, with the factors the run starts from frozen (or none: the base model), so no
/// second model is held. The step's loss is the mean over its pairs.
public final class DPOObjective: Objective, @unchecked Sendable {  // `reference` is written only by prepare(), before any step or evaluation
    public let train: [PreferenceExample]
    public let validation: [PreferenceExample]
    public let loss: DPOLoss
    /// Reference log-probabilities (chosen, rejected) per example, per set; set by `prepare`.
    public private(set) var reference: [ExampleSet: [(chosen: Double, rejected: Double)]] = [:]
    /// Called during `prepare` with (pairs done, pairs in all).
    private let progress: @Sendable (Int, Int) -> Void

    public init(train: [PreferenceExample], validation: [PreferenceExample], loss: DPOLoss,
                progress: @escaping @Sendable (Int, Int) -> Void = { _, _ in }) {
        self.train = train; self.validation = validation; self.loss = loss; self.progress = progress
    }

    public var name: String { "dpo" }

    public func count(_ set: ExampleSet) -> Int { examples(set).count }

    private func examples(_ set: ExampleSet) -> [PreferenceExample] { set == .train ? train : validation }

    /// The log-probabilities the loss uses (summed, or averaged for IPO) from a pass's losses.
    private func logps(_ l: SequenceLoss) -> Double {
        loss.averagesLogProbabilities ? -l.nll / Double(max(l.tokens, 1)) : -l.nll
    }

    private func sequences(_ pairs: [PreferenceExample]) -> [TrainingSequence] {
        pairs.flatMap { [$0.chosenSequence, $0.rejectedSequence] }
    }

    public func prepare(_ context: ObjectiveContext, reference factors: TrainableLoRA?) throws {
        let total = train.count + validation.count
        var done = 0
        for set in [ExampleSet.train, .validation] {
            let all = examples(set)
            var out: [(chosen: Double, rejected: Double)] = []
            out.reserveCapacity(all.count)
            var start = 0
            while start < all.count {
                let pairs = Array(all[start..<min(all.count, start + context.config.batchSize)])
                let losses = try context.model.trainingPass(sequences(pairs), lora: factors, backward: false,
                                                            pause: context.pause)
                for i in pairs.indices { out.append((logps(losses[2 * i]), logps(losses[2 * i + 1]))) }
                start += pairs.count
                done += pairs.count
                progress(done, total)
            }
            reference[set] = out
        }
    }

    public func accumulate(_ microBatches: [[Int]], context: ObjectiveContext,
                           dropoutKey: (Int) -> UInt64) throws -> ObjectiveStep {
        guard let ref = reference[.train] else { preconditionFailure("prepare() computes the reference first") }
        let pairs = Float(microBatches.reduce(0) { $0 + $1.count })
        var metrics = PreferenceMetrics()
        var tokens = 0, labels = 0, correct = 0, chosenLabels = 0
        for (b, indices) in microBatches.enumerated() {
            let batch = sequences(indices.map { train[$0] })
            let losses = try context.model.trainingPass(batch, lora: context.lora, backward: true, dropoutKey: dropoutKey(b),
                                                          pause: context.pause) {
                losses in
                var weights = [Float](repeating: 0, count: losses.count)
                for (i, index) in indices.enumerated() {
                    let c = losses[2 * i], r = losses[2 * i + 1]
                    let g = metrics.add(policy: (self.logps(c), self.logps(r)), reference: ref[index], loss: self.loss)
                    // weight multiplies the summed NLL = −Σ log p: ∂ℓ/∂NLL_w = −∂ℓ/∂δ, ∂ℓ/∂NLL_l = +∂ℓ/∂δ.
                    let avg = self.loss.averagesLogProbabilities
                    weights[2 * i] = Float(-g / (avg ? Double(max(c.tokens, 1)) : 1)) / pairs
                    weights[2 * i + 1] = Float(g / (avg ? Double(max(r.tokens, 1)) : 1)) / pairs
                }
                return weights
            }
            for (i, l) in losses.enumerated() {
                labels += l.tokens
                if i % 2 == 0 { correct += l.correct; chosenLabels += l.tokens }
            }
            tokens += batch.reduce(0) { $0 + $1.tokens.count }
        }
        return ObjectiveStep(loss: metrics.meanLoss, meanTokenAccuracy: Double(correct) / Double(max(chosenLabels, 1)),
                             metrics: metrics.metrics, tokens: tokens, labels: labels)
    }

    public func evaluate(_ set: ExampleSet, limit: Int?, context: ObjectiveContext) throws -> Evaluation? {
        try evaluatePairs(set, limit: limit, context: context)?.evaluation
    }

    /// The evaluation and each pair's rewards (chosen, rejected) under the current factors.
    public func evaluatePairs(_ set: ExampleSet, limit: Int?, context: ObjectiveContext) throws
        -> (evaluation: Evaluation, rewards: [(chosen: Double, rejected: Double)])? {
        guard let ref = reference[set] else { preconditionFailure("prepare() computes the reference first") }
        let all = examples(set)
        let n = limit.map { min($0, all.count) } ?? all.count
        if n == 0 { return nil }
        var metrics = PreferenceMetrics()
        var rewards: [(chosen: Double, rejected: Double)] = []
        var correct = 0, chosenLabels = 0
        var start = 0
        while start < n {
            let end = min(n, start + context.config.batchSize)
            let losses = try context.model.trainingPass(sequences(Array(all[start..<end])), lora: context.lora,
                                                        backward: false, pause: context.pause)
            for i in 0..<(end - start) {
                let policy = (logps(losses[2 * i]), logps(losses[2 * i + 1])), r = ref[start + i]
                _ = metrics.add(policy: policy, reference: r, loss: loss)
                rewards.append((loss.beta * (policy.0 - r.chosen), loss.beta * (policy.1 - r.rejected)))
                correct += losses[2 * i].correct
                chosenLabels += losses[2 * i].tokens
            }
            start = end
        }
        return (Evaluation(loss: metrics.meanLoss, meanTokenAccuracy: Double(correct) / Double(max(chosenLabels, 1)),
                           tokens: chosenLabels, metrics: metrics.metrics), rewards)
    }
}
