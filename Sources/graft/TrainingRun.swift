import AdapterFormat
import ArgumentParser
import Crypto
import Foundation
import Hub
import LlamaModel
import Synchronization
import Tokenizer
import Training

/// A dataset file as a job records it: where it is and its SHA-256.
struct DatasetFile: Codable, Equatable {
    var path: String
    var sha256: String

    init(path: String) throws {
        let url = URL(fileURLWithPath: path).standardizedFileURL
        guard let data = FileManager.default.contents(atPath: url.path) else { throw CLIError("cannot read \(path)") }
        self.path = url.path
        sha256 = SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    /// The file's bytes, checked against the recorded hash.
    func read() throws -> Data {
        guard let data = FileManager.default.contents(atPath: path) else { throw CLIError("cannot read \(path)") }
        let hash = SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
        guard hash == sha256 else { throw CLIError("\(path) changed since the job started (SHA-256 \(hash), was \(sha256))") }
        return data
    }
}

/// What a job's `config.json` holds: everything needed to run it again from scratch.
struct JobSpec: Codable {
    var config: TrainingConfig
    var tenant: String
    var name: String
    var data: DatasetFile
    var validation: DatasetFile?
    var baseModel: String
    var baseModelSHA256: String
}

/// `state.json`: where the job stands.
struct JobState: Codable {
    var status: String  // running, interrupted, succeeded, failed
    var step: Int
    var totalSteps: Int
    var adapter: String?
    var error: String?
    var updated = Date()

    static func read(_ job: JobDirectory) -> JobState? {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return (try? Data(contentsOf: job.stateURL)).flatMap { try? decoder.decode(JobState.self, from: $0) }
    }
}

/// Set by SIGINT/SIGTERM: stop after the current step, checkpoint, exit.
let stopRequested = Atomic<Int>(0)

/// A training job being run by the CLI: the trainer, its job directory and its progress display.
final class TrainingRun {
    let spec: JobSpec
    let job: JobDirectory
    let hub: Hub
    let trainer: Trainer
    let progress = ProgressDisplay()
    var curve: LossCurve

    private init(spec: JobSpec, job: JobDirectory, hub: Hub, trainer: Trainer) {
        self.spec = spec; self.job = job; self.hub = hub; self.trainer = trainer
        curve = LossCurve(events: job.events())
    }

    static func start(_ spec: JobSpec, hub: Hub, modelOptions: ModelOptions) throws -> TrainingRun {
        let (model, objective, summary, initial) = try prepare(spec, hub: hub, modelOptions: modelOptions)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let job = try hub.createJob(tenant: spec.tenant, config: try encoder.encode(spec))
        Terminal.note("job \(job.id): \(spec.config.method), \(summary)")
        let trainer = try Trainer(model: model, config: spec.config, objective: objective, initial: initial)
        Terminal.note("job \(job.id): \(trainer.totalSteps) steps")
        return TrainingRun(spec: spec, job: job, hub: hub, trainer: trainer)
    }

    static func resume(job: JobDirectory, modelOptions: ModelOptions) throws -> TrainingRun {
        let spec = try JSONDecoder().decode(JobSpec.self, from: Data(contentsOf: job.configURL))
        let hub = modelOptions.registryOptions.hub
        if let state = JobState.read(job), state.status == "succeeded" {
            throw CLIError("job \(job.id) already succeeded: \(state.adapter ?? "")")
        }
        let (model, objective, _, initial) = try prepare(spec, hub: hub, modelOptions: modelOptions)
        let trainer = try Trainer(model: model, config: spec.config, objective: objective, initial: initial)
        job.removeIncompleteCheckpoints()
        var from = 0
        if let last = job.checkpoints().last {
            let adapterBytes = try [UInt8](Data(contentsOf: last.url.appendingPathComponent("adapter.graft")))
            let (adapter, _) = try GraftFile.decode(adapterBytes)
            try trainer.restore(adapter: adapter, optimizerState: [UInt8](Data(contentsOf: last.url.appendingPathComponent("optimizer.bin"))))
            from = trainer.state.step
        }
        // Events past the checkpoint belong to steps that run again.
        let kept = job.events().filter { line in
            ((try? JSONSerialization.jsonObject(with: line)) as? [String: Any])?["step"] as? Int ?? 0 <= from
        }
        try job.write("events.jsonl", Data(kept.map { $0 + Data([0x0A]) }.joined()))
        Terminal.note("resuming job \(job.id) at step \(from) of \(trainer.totalSteps)")
        return TrainingRun(spec: spec, job: job, hub: hub, trainer: trainer)
    }

    /// Loads the model and the data as the spec says (the validation split is seeded, so a
    /// resumed job gets the same one).
    private static func prepare(_ spec: JobSpec, hub: Hub, modelOptions: ModelOptions) throws
        -> (LlamaModel, any Objective, String, LoRAAdapter?) {
        let model = try modelOptions.load(verbose: true)
        let (objective, summary) = try makeObjective(spec, model: model)
        var initial: LoRAAdapter?
        if let id = spec.config.initAdapter {
            let (_, adapter, _) = try readAdapter(hub, id)
            initial = adapter
        }
        return (model, objective, summary, initial)
    }

    private func writeState(_ status: String, adapter: String? = nil, error: String? = nil) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        try job.write("state.json", try encoder.encode(JobState(status: status, step: trainer.state.step,
                                                                totalSteps: trainer.totalSteps, adapter: adapter, error: error)))
    }

    private func event(_ fields: [String: Any]) throws {
        try job.appendEvent(try JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys]))
    }

    private func checkpoint() throws {
        let bytes = try GraftFile.encode(trainer.lora.adapter(), info: adapterInfo(extra: [:]))
        try job.writeCheckpoint(step: trainer.state.step,
                                files: ["adapter.graft": bytes, "optimizer.bin": try trainer.optimizerState()],
                                keep: spec.config.keepCheckpoints)
    }

    private func adapterInfo(extra: [String: String]) -> AdapterInfo {
        AdapterInfo(baseModel: spec.baseModel, baseModelSHA256: spec.baseModelSHA256, tenant: spec.tenant, name: spec.name,
                    extra: extra)
    }

    /// Trains to the end (or until a stop signal), publishes the adapter and returns the
    /// final metrics.
    func run() throws -> [String: Any] {
        installStopHandlers()
        try writeState("running")
        let t = trainer
        do {
            while !t.isFinished {
                if stopRequested.load(ordering: .relaxed) != 0 {
                    try checkpoint()
                    try writeState("interrupted")
                    progress.finish()
                    Terminal.note("stopped at step \(t.state.step) of \(t.totalSteps); checkpoint written. Continue with: graft train --resume \(job.id)")
                    throw ExitCode(130)
                }
                let r = try t.step()
                var fields: [String: Any] = [
                    "type": "step", "step": r.step, "epoch": r.epoch, "train_loss": r.trainLoss,
                    "train_mean_token_accuracy": r.trainAccuracy, "lr": r.learningRate, "grad_norm": r.gradNorm,
                    "tokens_per_second": r.tokensPerSecond, "trained_tokens": t.state.trainedTokens,
                ]
                for m in r.metrics { fields[m.name] = m.value }
                curve.train.append((r.step, r.trainLoss))
                if t.evaluationDue, let e = try t.evaluate() {
                    fields["valid_loss"] = e.loss
                    fields["valid_mean_token_accuracy"] = e.meanTokenAccuracy
                    fields["full_valid_loss"] = e.loss
                    fields["full_valid_mean_token_accuracy"] = e.meanTokenAccuracy
                    for m in e.metrics ?? [] { fields["valid_" + m.name] = m.value }
                    curve.validation.append((r.step, e.loss))
                }
                try event(fields)
                if t.checkpointDue && !t.isFinished { try checkpoint() }
                if fields["valid_loss"] != nil || r.step % 10 == 0 || t.isFinished {
                    try job.write("loss.svg", Data(curve.svg(title: "\(spec.tenant)/\(spec.name) — \(job.id)").utf8))
                    try writeState("running")
                }
                progress.update(r, validation: t.state.lastValidation, elapsed: t.state.seconds)
            }
            progress.finish()
            try checkpoint()
            return try publish()
        } catch let error as ExitCode {
            throw error
        } catch {
            progress.finish()
            try? writeState("failed", error: "\(error)")
            throw error
        }
    }

    private func publish() throws -> [String: Any] {
        let t = trainer
        let last = curve.train.suffix(max(1, t.stepsPerEpoch))
        let trainLoss = last.map(\.loss).reduce(0, +) / Double(max(1, last.count))
        var metrics: [String: Any] = [
            "train_loss": trainLoss, "trained_tokens": t.state.trainedTokens, "seconds": t.state.seconds,
            "steps": t.state.step,
        ]
        if let v = t.state.lastValidation {
            metrics["valid_loss"] = v.loss
            metrics["valid_mean_token_accuracy"] = v.meanTokenAccuracy
            for m in v.metrics ?? [] { metrics["valid_" + m.name] = m.value }
        }
        if let e = try t.evaluate(.train, limit: 256) {
            metrics["train_mean_token_accuracy"] = e.meanTokenAccuracy
            for m in e.metrics ?? [] { metrics["train_" + m.name] = m.value }
        }
        if let rss = peakRSS() { metrics["peak_rss_mib"] = rss / (1 << 20) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let extra = [
            "training_config": String(decoding: try encoder.encode(spec.config), as: UTF8.self),
            "dataset_sha256": spec.data.sha256,
            "metrics": String(decoding: try JSONSerialization.data(withJSONObject: metrics, options: [.sortedKeys]), as: UTF8.self),
            "job_id": job.id,
        ]
        let bytes = try GraftFile.encode(t.lora.adapter(), info: adapterInfo(extra: extra))
        let id = try hub.publishAdapter(bytes, tenant: spec.tenant, name: spec.name)
        try writeState("succeeded", adapter: id.description)
        try event(["type": "published", "step": t.state.step, "adapter": id.description])
        Terminal.note("published \(id) (job \(job.id)): " + String(format: "train loss %.4f", trainLoss)
            + (t.state.lastValidation.map { String(format: ", validation loss %.4f", $0.loss) } ?? "")
            + String(format: ", %.0f s", t.state.seconds))
        metrics["id"] = id.description
        metrics["job"] = job.id
        return metrics
    }
}

private func installStopHandlers() {
    // A parent may have started us with these signals blocked (the mask survives exec).
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGINT)
    sigaddset(&set, SIGTERM)
    pthread_sigmask(SIG_UNBLOCK, &set, nil)
    for sig in [SIGINT, SIGTERM] {
        signal(sig) { _ in
            // A second signal stops at once; every file written so far is complete.
            if stopRequested.add(1, ordering: .relaxed).newValue > 1 { _exit(130) }
        }
    }
}
