import Foundation
#if canImport(Glibc)
import Glibc

/// glibc's `mallopt` (malloc.h is not part of the Glibc module).
@_silgen_name("mallopt") private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
#endif
import LlamaModel

/// Where a run stands: everything besides the factors and moments needed to continue it
/// exactly (the data order follows from the seed and the epoch).
public struct TrainerState: Codable, Sendable, Equatable {
    /// Optimizer steps taken.
    public var step = 0
    /// Micro-batches consumed so far, over all epochs.
    public var microBatches = 0
    public var adam = AdamW()
    /// Label tokens trained on so far.
    public var trainedTokens = 0
    /// Seconds spent training, over all sessions of the run.
    public var seconds = 0.0
    public var lastValidation: Evaluation?
}

/// Loss and token accuracy over some labelled positions, and the objective's own metrics.
public struct Evaluation: Codable, Sendable, Equatable {
    public var loss: Double
    public var meanTokenAccuracy: Double
    public var tokens: Int
    /// Further metrics named by the objective (DPO: rewards/accuracies...); nil for none.
    public var metrics: [Metric]?

    public init(loss: Double, meanTokenAccuracy: Double, tokens: Int, metrics: [Metric]? = nil) {
        self.loss = loss; self.meanTokenAccuracy = meanTokenAccuracy; self.tokens = tokens; self.metrics = metrics
    }
}

/// What one optimizer step did.
public struct StepReport: Sendable {
    public var step: Int
    public var totalSteps: Int
    /// Fractional epoch reached.
    public var epoch: Double
    public var trainLoss: Double
    public var trainAccuracy: Double
    /// The objective's further metrics for this step.
    public var metrics: [Metric]
    public var learningRate: Double
    /// Total gradient norm before clipping.
    public var gradNorm: Double
    /// Tokens (all positions) processed per second in this step.
    public var tokensPerSecond: Double
    public var tokens: Int
    public var seconds: Double

    public init(step: Int, totalSteps: Int, epoch: Double, trainLoss: Double, trainAccuracy: Double, metrics: [Metric],
                learningRate: Double, gradNorm: Double, tokensPerSecond: Double, tokens: Int, seconds: Double) {
        self.step = step; self.totalSteps = totalSteps; self.epoch = epoch; self.trainLoss = trainLoss
        self.trainAccuracy = trainAccuracy; self.metrics = metrics; self.learningRate = learningRate
        self.gradNorm = gradNorm; self.tokensPerSecond = tokensPerSecond; self.tokens = tokens; self.seconds = seconds
    }
}

/// Fine-tuning of LoRA factors on a frozen model with a pluggable objective: one optimizer
/// step per `step()` call, so a caller can pause between steps (checkpoint, serve inference,
/// stop). Holds no files; checkpoints are values.
public final class Trainer: @unchecked Sendable {  // driven by one caller at a time; it owns the factors and moments
    public let model: LlamaModel
    public let config: TrainingConfig
    public let lora: TrainableLoRA
    public let objective: any Objective
    public private(set) var state = TrainerState()
    private var m: [Float]
    private var v: [Float]

    /// A run of `objective` (which holds the data). With `initial`, training continues that
    /// adapter and the objective's reference is that adapter, frozen; without, the factors
    /// start from the seed and the reference is the base model.
    /// `pause` is handed to the objective's passes (see `ObjectiveContext`).
    public init(model: LlamaModel, config: TrainingConfig, objective: any Objective, initial: LoRAAdapter? = nil,
                pause: (() -> Void)? = nil) throws {
        try config.validate()
        precondition(objective.count(.train) > 0, "no training examples")
        #if canImport(Glibc)
        // Each pass allocates and frees a few hundred MB of activations. Served from the heap
        // and never trimmed, that memory is reused by the next pass instead of being mapped and
        // zeroed by the kernel again (which otherwise costs about a tenth of a step).
        _ = glibcMallopt(-3 /* M_MMAP_THRESHOLD */, 1 << 30)
        _ = glibcMallopt(-1 /* M_TRIM_THRESHOLD */, Int32.max)
        #endif
        self.model = model
        self.config = config
        self.objective = objective
        if let initial {
            lora = try TrainableLoRA(adapter: initial, config: model.config, dropout: config.lora.dropout)
        } else {
            lora = TrainableLoRA(shape: config.lora, config: model.config, seed: config.seed)
        }
        m = [Float](repeating: 0, count: lora.count)
        v = [Float](repeating: 0, count: lora.count)
        state.adam = AdamW(weightDecay: config.weightDecay)
        try objective.prepare(context(pause), reference: initial == nil ? nil : lora)
    }

    func context(_ pause: (() -> Void)?) -> ObjectiveContext {
        ObjectiveContext(model: model, lora: lora, config: config, pause: pause)
    }

    public var microBatchesPerEpoch: Int { (objective.count(.train) + config.batchSize - 1) / config.batchSize }
    public var stepsPerEpoch: Int { (microBatchesPerEpoch + config.gradAccum - 1) / config.gradAccum }
    public var totalSteps: Int { stepsPerEpoch * config.epochs }
    public var isFinished: Bool { state.step >= totalSteps }

    /// The examples of epoch `e` in their seeded order (drawn once per epoch).
    func order(epoch e: Int) -> [Int] {
        if let cached = epochOrder, cached.epoch == e { return cached.order }
        var idx = Array(0..<objective.count(.train))
        var rng = SeededGenerator(seed: SeedMix.mix(config.seed &+ 0x5EED &+ UInt64(e)))
        idx.shuffle(using: &rng)
        epochOrder = (e, idx)
        return idx
    }
    private var epochOrder: (epoch: Int, order: [Int])?

    /// Whether the last step ended an epoch (or the run).
    public var atEpochEnd: Bool { state.step > 0 && state.step % stepsPerEpoch == 0 }

    /// Takes one optimizer step over the next `gradAccum` micro-batches of the epoch.
    public func step(pause: (() -> Void)? = nil) throws -> StepReport {
        precondition(!isFinished, "the run is finished")
        let started = Date()
        let epoch = state.microBatches / microBatchesPerEpoch
        let first = state.microBatches % microBatchesPerEpoch
        let micro = min(config.gradAccum, microBatchesPerEpoch - first)
        let order = self.order(epoch: epoch)
        var batches: [[Int]] = []
        for b in first..<first + micro {
            batches.append(Array(order[b * config.batchSize..<min(order.count, (b + 1) * config.batchSize)]))
        }
        lora.zeroGradients()
        let step = state.step, seed = config.seed
        let result = try objective.accumulate(batches, context: context(pause)) { i in
            SeedMix.mix(seed ^ (UInt64(step) << 20) ^ UInt64(i))
        }
        let gradNorm = clipGradients(lora, maxNorm: config.maxGradNorm)
        let lr = config.learningRate * config.schedule.multiplier(step: state.step, total: totalSteps,
                                                                  warmup: config.warmupSteps(total: totalSteps))
        m.withUnsafeMutableBufferPointer { m in
            v.withUnsafeMutableBufferPointer { v in
                state.adam.update(lora.values, gradients: lora.gradients, m: m.baseAddress!, v: v.baseAddress!,
                                  count: lora.count, lr: lr)
            }
        }
        state.step += 1
        state.microBatches += micro
        state.trainedTokens += result.labels
        let seconds = Date().timeIntervalSince(started)
        state.seconds += seconds
        return StepReport(step: state.step, totalSteps: totalSteps,
                          epoch: Double(state.microBatches) / Double(microBatchesPerEpoch),
                          trainLoss: result.loss, trainAccuracy: result.meanTokenAccuracy, metrics: result.metrics,
                          learningRate: lr, gradNorm: gradNorm, tokensPerSecond: Double(result.tokens) / max(seconds, 1e-9),
                          tokens: result.tokens, seconds: seconds)
    }

    /// Loss and metrics of the current factors on the validation set (recorded as the last
    /// validation), or on the first `limit` training examples.
    public func evaluate(_ set: ExampleSet = .validation, limit: Int? = nil,
                         pause: (() -> Void)? = nil) throws -> Evaluation? {
        let e = try objective.evaluate(set, limit: limit, context: context(pause))
        if set == .validation, limit == nil, e != nil { state.lastValidation = e }
        return e
    }

    /// Whether evaluation and a checkpoint are due after the step just taken.
    public var evaluationDue: Bool {
        config.evalEvery > 0 ? state.step % config.evalEvery == 0 || isFinished : atEpochEnd
    }
    public var checkpointDue: Bool {
        config.saveEvery > 0 ? state.step % config.saveEvery == 0 : atEpochEnd
    }

    // MARK: Checkpoints

    /// The optimizer state as bytes: a JSON line with the `TrainerState`, then the first and
    /// second moments as little-endian float32.
    public func optimizerState() throws -> [UInt8] {
        var out = [UInt8](try JSONEncoder().encode(state))
        out.append(0x0A)
        for buffer in [m, v] {
            buffer.withUnsafeBufferPointer { b in
                for x in b { withUnsafeBytes(of: x.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
            }
        }
        return out
    }

    /// Continues from a checkpoint: its factors (an adapter with the same shape) and optimizer state.
    public func restore(adapter: LoRAAdapter, optimizerState bytes: [UInt8]) throws {
        guard let nl = bytes.firstIndex(of: 0x0A) else { throw TrainingError.checkpoint("optimizer state has no header") }
        let restored = try JSONDecoder().decode(TrainerState.self, from: Data(bytes[..<nl]))
        let floats = bytes.count - nl - 1
        guard floats == 8 * lora.count else {
            throw TrainingError.checkpoint("optimizer state holds \(floats / 4) moments, the run needs \(2 * lora.count)")
        }
        let restoredLoRA = try TrainableLoRA(adapter: adapter, config: model.config)
        guard restoredLoRA.count == lora.count, restoredLoRA.tensors.map(\.name) == lora.tensors.map(\.name) else {
            throw TrainingError.checkpoint("the checkpoint's adapter has another shape than the run")
        }
        lora.values.update(from: restoredLoRA.values, count: lora.count)
        bytes.withUnsafeBytes { raw in
            for i in 0..<lora.count {
                m[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: nl + 1 + 4 * i, as: UInt32.self)))
                v[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: nl + 1 + 4 * (lora.count + i), as: UInt32.self)))
            }
        }
        state = restored
    }
}
