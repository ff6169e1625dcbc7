import AdapterFormat
import Foundation
import Hub
import LlamaModel
import Training

/// A job being trained: its trainer, its directory and the records kept there
/// (`events.jsonl`, `checkpoints/`, `loss.svg`, `state.json`). The compute calls (`init`,
/// `step`, `finalMetrics`) take a `pause` (see `trainingPass`); the file writing (`record`,
/// `checkpoint`, `publish`) is separate, so a caller sharing the model can do it elsewhere.
public final class JobRunner: @unchecked Sendable {  // used by one job loop at a time, never concurrently
    public let spec: JobSpec
    public let job: JobDirectory
    public let hub: Hub
    public let trainer: Trainer
    public private(set) var curve: LossCurve
    /// The step the run continued from (0 for a fresh start).
    public let resumedFrom: Int

    /// Sets up the trainer for `job`, continuing from its last complete checkpoint if it has
    /// one (events recorded past that checkpoint are dropped: those steps run again).
    public init(job: JobDirectory, spec: JobSpec, hub: Hub, model: LlamaModel, objective: PreparedObjective,
                pause: (() -> Void)? = nil) throws {
        self.job = job; self.spec = spec; self.hub = hub
        var initial: LoRAAdapter?
        if let id = spec.config.initAdapter {
            let stored = try hub.resolveAdapter(AdapterID(parsing: id))
            initial = try GraftFile.decode([UInt8](Data(contentsOf: stored.url))).0
        }
        trainer = try Trainer(model: model, config: spec.config, objective: objective.objective, initial: initial,
                              pause: pause)
        job.removeIncompleteCheckpoints()
        var from = 0
        if let last = job.checkpoints().last {
            let adapterBytes = try [UInt8](Data(contentsOf: last.url.appendingPathComponent("adapter.graft")))
            let (adapter, _) = try GraftFile.decode(adapterBytes)
            try trainer.restore(adapter: adapter,
                                optimizerState: [UInt8](Data(contentsOf: last.url.appendingPathComponent("optimizer.bin"))))
            from = trainer.state.step
            let kept = job.events().filter { line in
                ((try? JSONSerialization.jsonObject(with: line)) as? [String: Any])?["step"] as? Int ?? 0 <= from
            }
            try job.write("events.jsonl", Data(kept.map { $0 + Data([0x0A]) }.joined()))
        }
        resumedFrom = from
        curve = LossCurve(events: job.events())
    }

    /// What one step did, and the validation when one was due after it.
    public struct Outcome: Sendable {
        public var report: StepReport
        public var validation: Evaluation?
    }

    /// One optimizer step, and the validation pass when due.
    public func step(pause: (() -> Void)? = nil) throws -> Outcome {
        let report = try trainer.step(pause: pause)
        let validation = trainer.evaluationDue ? try trainer.evaluate(pause: pause) : nil
        return Outcome(report: report, validation: validation)
    }

    /// Writes a step's event, and the checkpoint, loss curve and state when due.
    public func record(_ outcome: Outcome) throws {
        let r = outcome.report, t = trainer
        var fields: [String: Any] = [
            "type": "step", "step": r.step, "total_steps": r.totalSteps, "epoch": r.epoch, "train_loss": r.trainLoss,
            "train_mean_token_accuracy": r.trainAccuracy, "lr": r.learningRate, "grad_norm": r.gradNorm,
            "tokens_per_second": r.tokensPerSecond, "trained_tokens": t.state.trainedTokens, "tokens": r.tokens,
            "seconds": r.seconds,
        ]
        for m in r.metrics { fields[m.name] = m.value }
        curve.train.append((r.step, r.trainLoss))
        if let e = outcome.validation {
            fields["valid_loss"] = e.loss
            fields["valid_mean_token_accuracy"] = e.meanTokenAccuracy
            fields["full_valid_loss"] = e.loss
            fields["full_valid_mean_token_accuracy"] = e.meanTokenAccuracy
            for m in e.metrics ?? [] { fields["valid_" + m.name] = m.value }
            curve.validation.append((r.step, e.loss))
        }
        try event(fields)
        if t.checkpointDue && !t.isFinished { try checkpoint() }
        if outcome.validation != nil || r.step % 10 == 0 || t.isFinished {
            try job.write("loss.svg", Data(curve.svg(title: "\(spec.tenant)/\(spec.name) — \(job.id)").utf8))
            try writeState(.running)
        }
    }

    /// Appends one event (`time` in unix seconds and a unique `id` are added).
    public func event(_ fields: [String: Any]) throws {
        try Self.appendEvent(to: job, fields)
    }

    public static func appendEvent(to job: JobDirectory, _ fields: [String: Any]) throws {
        var fields = fields
        fields["time"] = Date().timeIntervalSince1970
        if fields["id"] == nil { fields["id"] = "ftevent-" + randomHex(bytes: 12) }
        try job.appendEvent(try JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys]))
    }

    /// A plain message event (OpenAI's `type: message`).
    public func message(_ text: String, level: String = "info") throws {
        try event(["type": "message", "message": text, "level": level])
    }

    public func checkpoint() throws {
        let bytes = try GraftFile.encode(trainer.lora.adapter(), info: adapterInfo(extra: [:]))
        try job.writeCheckpoint(step: trainer.state.step,
                                files: ["adapter.graft": bytes, "optimizer.bin": try trainer.optimizerState()],
                                keep: spec.config.keepCheckpoints)
    }

    public func writeState(_ status: JobStatus, adapter: String? = nil, estimatedFinish: Date? = nil) throws {
        var s = JobState(status: status, step: trainer.state.step, totalSteps: trainer.totalSteps)
        s.adapter = adapter
        s.trainedTokens = trainer.state.trainedTokens
        s.estimatedFinish = estimatedFinish
        if status.isFinal { s.finishedAt = Date() }
        try s.write(to: job)
    }

    private func adapterInfo(extra: [String: String]) -> AdapterInfo {
        AdapterInfo(baseModel: spec.baseModel, baseModelSHA256: spec.baseModelSHA256, tenant: spec.tenant, name: spec.name,
                    extra: extra)
    }

    /// The run's final metrics (one more pass over up to 256 training examples for accuracy).
    public func finalMetrics(pause: (() -> Void)? = nil) throws -> [String: Double] {
        let t = trainer
        let last = curve.train.suffix(max(1, t.stepsPerEpoch))
        var metrics: [String: Double] = [
            "train_loss": last.map(\.loss).reduce(0, +) / Double(max(1, last.count)),
            "trained_tokens": Double(t.state.trainedTokens), "seconds": t.state.seconds, "steps": Double(t.state.step),
        ]
        if let v = t.state.lastValidation {
            metrics["valid_loss"] = v.loss
            metrics["valid_mean_token_accuracy"] = v.meanTokenAccuracy
            for m in v.metrics ?? [] { metrics["valid_" + m.name] = m.value }
        }
        if let e = try t.evaluate(.train, limit: 256, pause: pause) {
            metrics["train_mean_token_accuracy"] = e.meanTokenAccuracy
            for m in e.metrics ?? [] { metrics["train_" + m.name] = m.value }
        }
        return metrics
    }

    /// Writes the final checkpoint, publishes the adapter (its metadata records the config,
    /// the dataset's SHA-256, the metrics and the job) and marks the job succeeded.
    public func publish(metrics: [String: Double]) throws -> AdapterID {
        try checkpoint()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let extra = [
            "training_config": String(decoding: try encoder.encode(spec.config), as: UTF8.self),
            "dataset_sha256": spec.data.sha256,
            "metrics": String(decoding: try JSONSerialization.data(withJSONObject: metrics, options: [.sortedKeys]), as: UTF8.self),
            "job_id": job.id,
        ]
        let bytes = try GraftFile.encode(trainer.lora.adapter(), info: adapterInfo(extra: extra))
        let id = try hub.publishAdapter(bytes, tenant: spec.tenant, name: spec.name)
        try writeState(.succeeded, adapter: id.description)
        try event(["type": "published", "step": trainer.state.step, "adapter": id.description,
                   "message": "New fine-tuned model created: \(id)"])
        return id
    }
}

/// `n` random bytes as hex, from the system's generator (ids that must not be guessable).
public func randomHex(bytes n: Int) -> String {
    var g = SystemRandomNumberGenerator()
    return (0..<n).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &g)) }.joined()
}

extension JobDirectory {
    /// Marks the job failed with OpenAI's error fields and records why as an event.
    public func fail(code: String, message: String, param: String? = nil, step: Int = 0, totalSteps: Int = 0) throws {
        var s = JobState.read(self) ?? JobState(status: .failed)
        s.status = .failed
        s.error = message; s.errorCode = code; s.errorParam = param
        s.finishedAt = Date()
        s.estimatedFinish = nil
        if step > 0 { s.step = step }
        if totalSteps > 0 { s.totalSteps = totalSteps }
        try s.write(to: self)
        try JobRunner.appendEvent(to: self, ["type": "message", "level": "error", "message": message])
    }
}
