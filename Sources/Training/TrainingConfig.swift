import LlamaModel

/// The settings of a preference-optimization run (DPO).
public struct PreferenceSettings: Codable, Sendable, Equatable {
    /// Strength of the tie to the reference (TRL's `beta`).
    public var beta = 0.1
    /// Loss type: sigmoid, ipo or hinge.
    public var lossType = "sigmoid"
    /// Conservative-DPO label smoothing for the sigmoid loss, in [0, 0.5).
    public var labelSmoothing = 0.0
    public init() {}
}

/// Every setting of a fine-tuning run. Codable: a job's `config.json`, and the
/// training config recorded in the published adapter's metadata.
public struct TrainingConfig: Codable, Sendable, Equatable {
    /// The objective: sft or dpo.
    public var method = "sft"
    /// DPO's settings (nil for SFT).
    public var preference: PreferenceSettings?
    public var epochs = 4
    /// Sequences per micro-batch.
    public var batchSize = 4
    /// Micro-batches per optimizer step.
    public var gradAccum = 1
    public var learningRate = 2e-3
    public var schedule = LRSchedule.linear
    /// Warm-up: a number of steps when ≥ 1, else a fraction of all steps (rounded up).
    public var warmup = 0.1
    public var weightDecay = 0.0
    /// Clip the total gradient norm to this (0: no clipping).
    public var maxGradNorm = 1.0
    public var lora = LoRAShape(rank: 16, alpha: 32, dropout: 0.1)
    public var maxSeqLen = 1024
    public var truncate = TruncationSide.right
    public var lossOn = LossOn.completion
    /// Wrap data in the model's chat template (false: `--template none`).
    public var chatTemplate = true
    public var seed: UInt64 = 42
    /// Evaluate on the validation set every this many steps (0: at the end of each epoch).
    public var evalEvery = 0
    /// Write a checkpoint every this many steps (0: at the end of each epoch).
    public var saveEvery = 0
    /// Checkpoints kept.
    public var keepCheckpoints = 2
    /// Share of rows held out for validation when no validation file is given (none below 20 rows).
    public var validationSplit = 0.1
    /// Adapter the run starts from, as given.
    public var initAdapter: String?

    public init() {}

    /// DPO's default learning rate and epochs (see docs/TRAINING.md: on the preference example
    /// held-out reward accuracy reaches 1.0 within the first epoch; 5e-4 names the right answer
    /// slightly more often but degrades fluency).
    public static let dpoLearningRate = 2e-4
    public static let dpoEpochs = 2

    /// The defaults for a method. DPO's: no dropout (the policy's log-probabilities are
    /// compared with the reference's), a lower learning rate, fewer epochs, beta 0.1.
    public static func defaults(method: String) -> TrainingConfig {
        var c = TrainingConfig()
        c.method = method
        if method == "dpo" {
            c.lora.dropout = 0
            c.learningRate = dpoLearningRate
            c.epochs = dpoEpochs
            c.preference = PreferenceSettings()
        }
        return c
    }

    /// Warm-up steps for a run of `total` steps.
    public func warmupSteps(total: Int) -> Int {
        warmup >= 1 ? Int(warmup) : Int((Double(total) * warmup).rounded(.up))
    }

    /// Checks ranges, naming the option at fault.
    public func validate() throws {
        func bad(_ option: String, _ why: String) -> TrainingError { .invalidOption("--\(option): \(why)") }
        if epochs < 1 { throw bad("epochs", "must be at least 1") }
        if batchSize < 1 { throw bad("batch-size", "must be at least 1") }
        if gradAccum < 1 { throw bad("grad-accum", "must be at least 1") }
        if !(learningRate > 0) || !learningRate.isFinite { throw bad("lr", "must be a positive number") }
        if warmup < 0 || !warmup.isFinite { throw bad("warmup", "must be ≥ 0 (steps, or a ratio below 1)") }
        if weightDecay < 0 { throw bad("weight-decay", "must be ≥ 0") }
        if maxGradNorm < 0 { throw bad("max-grad-norm", "must be ≥ 0") }
        if lora.rank < 1 || lora.rank > 512 { throw bad("rank", "must be between 1 and 512") }
        if !(lora.alpha > 0) { throw bad("alpha", "must be positive") }
        if lora.dropout < 0 || lora.dropout >= 1 { throw bad("dropout", "must be in [0, 1)") }
        if lora.targets.isEmpty { throw bad("targets", "name at least one of q,k,v,o,gate,up,down") }
        if maxSeqLen < 2 { throw bad("max-seq-len", "must be at least 2") }
        if evalEvery < 0 { throw bad("eval-every", "must be ≥ 0") }
        if saveEvery < 0 { throw bad("save-every", "must be ≥ 0") }
        if keepCheckpoints < 1 { throw bad("keep-checkpoints", "must be at least 1") }
        if validationSplit < 0 || validationSplit >= 1 { throw bad("validation-split", "must be in [0, 1)") }
        if let p = preference {
            if !(p.beta > 0) || !p.beta.isFinite { throw bad("beta", "must be a positive number") }
            if !(p.labelSmoothing >= 0 && p.labelSmoothing < 0.5) { throw bad("label-smoothing", "must be in [0, 0.5)") }
        }
    }
}

public enum TrainingError: Error, CustomStringConvertible, Equatable {
    case invalidOption(String)
    case checkpoint(String)

    public var description: String {
        switch self {
        case .invalidOption(let s): return "invalid option \(s)"
        case .checkpoint(let s): return "checkpoint: \(s)"
        }
    }
}

extension Projection {
    /// Short names used on the command line: q, k, v, o, gate, up, down.
    public static func parseList(_ text: String) throws -> [Projection] {
        var out: [Projection] = []
        for part in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !part.isEmpty {
            let p: Projection? = switch part {
            case "q", "q_proj": .query
            case "k", "k_proj": .key
            case "v", "v_proj": .value
            case "o", "o_proj": .output
            case "gate", "gate_proj": .gate
            case "up", "up_proj": .up
            case "down", "down_proj": .down
            case "all", "all-linear": nil
            default: throw TrainingError.invalidOption("--targets: unknown projection '\(part)'; expected q,k,v,o,gate,up,down or all")
            }
            if let p { if !out.contains(p) { out.append(p) } } else { out = Projection.allCases }
        }
        return Projection.allCases.filter(out.contains)
    }
}
