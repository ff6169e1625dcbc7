import ArgumentParser
import DaemonClient
import Foundation
import Hub
import LlamaModel
import DPOObjective
import Jobs
import Training

struct Train: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fine-tune a LoRA adapter on a JSONL file (SFT or DPO) and publish it to the hub.",
        discussion: """
        SFT formats (detected from the first line): chat {"messages": [...]}, completions {"prompt", "completion"}, \
        qa {"question", "answer"}, instruction {"instruction", "input", "output"}, text {"text"}. The loss is on \
        assistant turns and completions unless --loss-on all.
        DPO (--method dpo, chosen automatically for preference files): {"prompt", "chosen", "rejected"} as strings \
        or message lists; {"chosen": [...], "rejected": [...]} conversations sharing all but the last message; \
        OpenAI's {"input": {"messages"}, "preferred_output", "non_preferred_output"}. The reference is the base \
        model, or the frozen --init-adapter that the policy starts from; its log-probabilities are computed once.
        Ctrl-C writes a checkpoint; continue with --resume JOB.
        With a daemon running (graftd), the data is uploaded and the job runs in the daemon, beside inference; \
        this command follows it, and Ctrl-C detaches (the job goes on: graft jobs events JOB --follow).
        """)

    @Argument(help: ArgumentHelp("Training data, JSON Lines.", valueName: "data.jsonl"))
    var data: String?

    @Option(help: ArgumentHelp("Objective: sft or dpo (default: dpo for preference files, else sft).", valueName: "sft|dpo"))
    var method: String?
    @Option(help: "DPO: strength of the tie to the reference (beta).") var beta: Double?
    @Option(help: "DPO loss: sigmoid, ipo or hinge.") var lossType: DPOLoss.Kind?
    @Option(help: "DPO (sigmoid loss): label smoothing in [0, 0.5), for noisy preferences.") var labelSmoothing: Double?
    @Option(help: "Tenant that owns the adapter.") var tenant: String?
    @Option(help: "Adapter name; the new version is published as TENANT/NAME@N.") var name: String?
    @Option(help: ArgumentHelp("Validation data (default: a seeded 10% of the training file, none below 20 rows).", valueName: "file"))
    var validation: String?
    @Option(help: "Passes over the training data.") var epochs: Int?
    @Option(help: "Sequences per micro-batch.") var batchSize: Int?
    @Option(help: "Micro-batches per optimizer step.") var gradAccum: Int?
    @Option(name: .customLong("lr"), help: "Peak learning rate.") var learningRate: Double?
    @Option(help: "Learning-rate schedule: constant, linear or cosine.") var schedule: LRSchedule?
    @Option(help: "Warm-up: steps (≥ 1) or a fraction of all steps (< 1).") var warmup: Double?
    @Option(help: "AdamW decoupled weight decay.") var weightDecay: Double?
    @Option(help: "Clip the total gradient norm (0: off).") var maxGradNorm: Double?
    @Option(help: "LoRA rank.") var rank: Int?
    @Option(help: "LoRA alpha (scale = alpha / rank).") var alpha: Float?
    @Option(help: "Dropout on the LoRA input.") var dropout: Float?
    @Flag(help: "Scale by alpha / sqrt(rank) (rsLoRA).") var rslora = false
    @Option(help: ArgumentHelp("Projections to adapt: q,k,v,o,gate,up,down or all.", valueName: "list")) var targets: String?
    @Option(help: "Longest sequence in tokens; longer examples are truncated.") var maxSeqLen: Int?
    @Option(help: "Which end to cut: right (keep the start) or left (keep the end).") var truncate: TruncationSide?
    @Option(help: "Tokens the loss is taken on: completion (assistant turns) or all.") var lossOn: LossOn?
    @Option(help: ArgumentHelp("Prompt template: chat (the model's) or none (raw strings).", valueName: "chat|none")) var template: String?
    @Option(help: "Random seed (initialization, data order, validation split, dropout).") var seed: UInt64?
    @Option(help: "Evaluate every N steps (0: each epoch).") var evalEvery: Int?
    @Option(help: "Checkpoint every N steps (0: each epoch).") var saveEvery: Int?
    @Option(help: ArgumentHelp("Start from this adapter (tenant/name[@version]).", valueName: "id")) var initAdapter: String?
    @Option(help: ArgumentHelp("Continue an interrupted job from its last checkpoint.", valueName: "job")) var resume: String?
    @Flag(help: "Print one JSON object with the adapter id and final metrics instead of the id.") var json = false
    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var daemonOptions: DaemonOptions

    /// Settings from the options; `method` is the objective chosen (given or detected).
    func trainingConfig(method: String = "sft") throws -> TrainingConfig {
        guard TrainingPlugins.methods.contains(method) else {
            throw ValidationError("--method takes one of \(TrainingPlugins.methods.joined(separator: ", "))")
        }
        var c = TrainingConfig.defaults(method: method)
        if var p = c.preference {
            if let beta { p.beta = beta }
            if let lossType { p.lossType = lossType.rawValue }
            if let labelSmoothing { p.labelSmoothing = labelSmoothing }
            if p.labelSmoothing > 0 && p.lossType != "sigmoid" {
                throw ValidationError("--label-smoothing applies to the sigmoid loss only")
            }
            c.preference = p
        } else if beta != nil || lossType != nil || labelSmoothing != nil {
            throw ValidationError("--beta, --loss-type and --label-smoothing apply to --method dpo")
        }
        if let epochs { c.epochs = epochs }
        if let batchSize { c.batchSize = batchSize }
        if let gradAccum { c.gradAccum = gradAccum }
        if let learningRate { c.learningRate = learningRate }
        if let schedule { c.schedule = schedule }
        if let warmup { c.warmup = warmup }
        if let weightDecay { c.weightDecay = weightDecay }
        if let maxGradNorm { c.maxGradNorm = maxGradNorm }
        if let rank {
            c.lora.rank = rank
            if alpha == nil { c.lora.alpha = Float(2 * rank) }
        }
        if let alpha { c.lora.alpha = alpha }
        if let dropout { c.lora.dropout = dropout }
        if rslora { c.lora.useRSLoRA = true }
        if let targets { c.lora.targets = try Projection.parseList(targets) }
        if let maxSeqLen { c.maxSeqLen = maxSeqLen }
        if let truncate { c.truncate = truncate }
        if let lossOn { c.lossOn = lossOn }
        if let template {
            guard ["chat", "none"].contains(template) else { throw ValidationError("--template takes chat or none") }
            c.chatTemplate = template == "chat"
        }
        if let seed { c.seed = seed }
        if let evalEvery { c.evalEvery = evalEvery }
        if let saveEvery { c.saveEvery = saveEvery }
        c.initAdapter = initAdapter
        try c.validate()
        return c
    }

    func run() async throws {
        let hub = modelOptions.registryOptions.hub
        if resume == nil, let client = daemonOptions.client(for: hub) {
            try await runInDaemon(client)
            return
        }
        let run: TrainingRun
        if let resume {
            guard data == nil, tenant == nil, name == nil else {
                throw ValidationError("--resume continues a job with its own data and settings; give no data file, --tenant or --name")
            }
            run = try TrainingRun.resume(job: try hub.job(resume), modelOptions: modelOptions)
        } else {
            guard let data else { throw ValidationError("give a data file (or --resume JOB)") }
            guard let tenant, let name else { throw ValidationError("--tenant and --name say where to publish the adapter") }
            _ = try AdapterID(tenant: tenant, name: name)
            let method = self.method ?? (looksLikePreferences(FileManager.default.contents(atPath: data) ?? Data()) ? "dpo" : "sft")
            var config = try trainingConfig(method: method)
            // Pin the starting adapter's version: it is also the run's (DPO) reference.
            if let id = config.initAdapter { config.initAdapter = try readAdapter(hub, id).0.description }
            let spec = JobSpec(config: config, tenant: tenant, name: name,
                               data: try DatasetFile(path: data), validation: try validation.map { try DatasetFile(path: $0) },
                               baseModel: modelOptions.displayName(), baseModelSHA256: modelOptions.catalogSHA256() ?? "")
            run = try TrainingRun.start(spec, hub: hub, modelOptions: modelOptions)
        }
        let result = try run.run()
        if json {
            print(String(decoding: try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys]), as: UTF8.self))
        } else {
            print(result["id"] as? String ?? "")
        }
    }
}

extension Train {
    /// Uploads the data, creates the job in the daemon with every setting given here, and
    /// follows it.
    func runInDaemon(_ client: DaemonClient) async throws {
        guard let data else { throw ValidationError("give a data file") }
        guard let name else { throw ValidationError("--name says what to call the adapter") }
        let daemon = DaemonTraining(client: client)
        let method = self.method ?? (looksLikePreferences(FileManager.default.contents(atPath: data) ?? Data()) ? "dpo" : "sft")
        let config = try trainingConfig(method: method)
        let trainingFile = try await daemon.upload(data, tenant: tenant)
        var body: [String: Any] = [
            "model": try await daemon.baseModel(), "training_file": trainingFile, "suffix": name,
            "method": ["type": method == "dpo" ? "dpo" : "supervised"],
            "graft_config": try JSONSerialization.jsonObject(with: JSONEncoder().encode(config)),
        ]
        if let tenant { body["tenant"] = tenant }
        if let validation { body["validation_file"] = try await daemon.upload(validation, tenant: tenant) }
        let created = try await client.call(.POST, "/v1/fine_tuning/jobs", json: body)
        guard let jobID = created["id"] as? String else { throw CLIError("the daemon did not return a job id") }
        Terminal.note("job \(jobID) created in the daemon (\(daemonOptions.socket ?? "graftd.sock")); following it, Ctrl-C detaches")
        let job = try await daemon.follow(jobID)
        switch job["status"] as? String {
        case "succeeded":
            let id = job["fine_tuned_model"] as? String ?? ""
            if json {
                var out: [String: Any] = ["id": id, "job": jobID]
                out["trained_tokens"] = job["trained_tokens"]
                print(String(decoding: try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys]), as: UTF8.self))
            } else {
                print(id)
            }
        case let status:
            let message = (job["error"] as? [String: Any])?["message"] as? String ?? ""
            throw CLIError("job \(jobID) \(status ?? "ended")" + (message.isEmpty ? "" : ": \(message)"))
        }
    }
}
