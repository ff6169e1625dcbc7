import ArgumentParser
import Foundation
import Hub
import Training

struct Jobs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Training jobs in the hub.", subcommands: [JobsList.self, JobsShow.self], defaultSubcommand: JobsList.self)
}

struct JobsList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List jobs: id, tenant, status, progress, adapter.")
    @Option(help: "Only this tenant's jobs.") var tenant: String?
    @OptionGroup var registryOptions: RegistryOptions

    func run() throws {
        let jobs = registryOptions.hub.listJobs(tenant: tenant)
        if jobs.isEmpty { Terminal.note("no jobs"); return }
        for job in jobs {
            let s = JobState.read(job)
            let spec = try? JSONDecoder().decode(JobSpec.self, from: Data(contentsOf: job.configURL))
            print([job.id, job.tenant, spec.map { "\($0.tenant)/\($0.name)" } ?? "?", s?.status ?? "created",
                   s.map { "\($0.step)/\($0.totalSteps)" } ?? "-", s?.adapter ?? ""].joined(separator: "\t"))
        }
    }
}

struct JobsShow: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "A job's settings, status, last metrics and loss curve.")
    @Argument(help: "Job id.") var job: String
    @OptionGroup var registryOptions: RegistryOptions

    func run() throws {
        let job = try registryOptions.hub.job(self.job)
        print("job:        \(job.id) (tenant \(job.tenant))")
        print("directory:  \(job.url.path)")
        if let spec = try? JSONDecoder().decode(JobSpec.self, from: Data(contentsOf: job.configURL)) {
            let c = spec.config
            print("adapter:    \(spec.tenant)/\(spec.name) on \(spec.baseModel)")
            print("data:       \(spec.data.path) (sha256 \(spec.data.sha256.prefix(16))…)" + (spec.validation.map { ", validation \($0.path)" } ?? ""))
            if let p = c.preference {
                print("preference: \(p.lossType) loss, beta \(p.beta)" + (p.labelSmoothing > 0 ? ", label smoothing \(p.labelSmoothing)" : "")
                    + ", reference " + (c.initAdapter.map { "\($0) (frozen)" } ?? "the base model"))
            }
            print("settings:   \(c.method), \(c.epochs) epochs, batch \(c.batchSize)x\(c.gradAccum), lr \(c.learningRate) \(c.schedule.rawValue), warmup \(c.warmup), rank \(c.lora.rank) alpha \(c.lora.alpha), targets \(c.lora.targets.map(\.rawValue).joined(separator: ",")), seed \(c.seed)")
        }
        if let s = JobState.read(job) {
            print("status:     \(s.status), step \(s.step)/\(s.totalSteps)" + (s.adapter.map { ", adapter \($0)" } ?? "") + (s.error.map { ", error: \($0)" } ?? ""))
        }
        let events = job.events()
        if let last = events.last(where: { ((try? JSONSerialization.jsonObject(with: $0)) as? [String: Any])?["train_loss"] != nil }) {
            print("last step:  \(String(decoding: last, as: UTF8.self))")
        }
        print("checkpoints: \(job.checkpoints().map { "step \($0.step)" }.joined(separator: ", "))")
        print("")
        print(LossCurve(events: events).text(), terminator: "")
    }
}
