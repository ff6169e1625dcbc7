import ArgumentParser
import DaemonClient
import Foundation
import Hub
import Jobs
import Training

struct Jobs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Training jobs: in the running daemon, or in the hub with --offline (or no daemon).",
        subcommands: [JobsList.self, JobsShow.self, JobsEvents.self, JobsCancel.self], defaultSubcommand: JobsList.self)
}

struct JobsList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List jobs: id, tenant, status, progress, adapter.")
    @Option(help: "Only this tenant's jobs.") var tenant: String?
    @OptionGroup var registryOptions: RegistryOptions
    @OptionGroup var daemonOptions: DaemonOptions

    func run() async throws {
        if let client = daemonOptions.client(for: registryOptions.hub) {
            let query = tenant.map { "&tenant=\($0)" } ?? ""
            let jobs = try await client.call(.GET, "/v1/fine_tuning/jobs?limit=10000\(query)")["data"] as? [[String: Any]] ?? []
            if jobs.isEmpty { Terminal.note("no jobs") }
            for j in jobs.reversed() {
                let progress = j["progress"] as? [String: Any]
                print([j["id"] as? String ?? "", (j["organization_id"] as? String ?? "").replacingOccurrences(of: "org-", with: ""),
                       j["adapter_name"] as? String ?? "", j["status"] as? String ?? "",
                       "\(progress?["step"] as? Int ?? 0)/\(progress?["total_steps"] as? Int ?? 0)",
                       j["fine_tuned_model"] as? String ?? ""].joined(separator: "\t"))
            }
            return
        }
        let jobs = registryOptions.hub.listJobs(tenant: tenant)
        if jobs.isEmpty { Terminal.note("no jobs"); return }
        for job in jobs {
            let s = JobState.read(job)
            let spec = try? JobSpec.read(job)
            print([job.id, job.tenant, spec.map { "\($0.tenant)/\($0.name)" } ?? "?", s?.status.rawValue ?? "created",
                   s.map { "\($0.step)/\($0.totalSteps)" } ?? "-", s?.adapter ?? ""].joined(separator: "\t"))
        }
    }
}

struct JobsShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "A job's settings, status, last metrics and loss curve.")
    @Argument(help: "Job id.") var job: String
    @OptionGroup var registryOptions: RegistryOptions
    @OptionGroup var daemonOptions: DaemonOptions

    func run() async throws {
        if let client = daemonOptions.client(for: registryOptions.hub) {
            let j = try await client.call(.GET, "/v1/fine_tuning/jobs/\(job)")
            let data = try JSONSerialization.data(withJSONObject: j, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            let events = try await client.call(.GET, "/v1/fine_tuning/jobs/\(job)/events?limit=10000")["data"] as? [[String: Any]] ?? []
            let steps = events.reversed().compactMap { e -> Data? in
                guard let d = e["data"] as? [String: Any] else { return nil }
                return try? JSONSerialization.data(withJSONObject: d)
            }
            print("")
            print(LossCurve(events: steps).text(), terminator: "")
            return
        }
        let job = try registryOptions.hub.job(self.job)
        print("job:        \(job.id) (tenant \(job.tenant))")
        print("directory:  \(job.url.path)")
        if let spec = try? JobSpec.read(job) {
            let c = spec.config
            print("adapter:    \(spec.tenant)/\(spec.name) on \(spec.baseModel)")
            print("data:       \(spec.data.name) (sha256 \(spec.data.sha256.prefix(16))…)" + (spec.validation.map { ", validation \($0.name)" } ?? ""))
            if let p = c.preference {
                print("preference: \(p.lossType) loss, beta \(p.beta)" + (p.labelSmoothing > 0 ? ", label smoothing \(p.labelSmoothing)" : "")
                    + ", reference " + (c.initAdapter.map { "\($0) (frozen)" } ?? "the base model"))
            }
            print("settings:   \(c.method), \(c.epochs) epochs, batch \(c.batchSize)x\(c.gradAccum), lr \(c.learningRate) \(c.schedule.rawValue), warmup \(c.warmup), rank \(c.lora.rank) alpha \(c.lora.alpha), targets \(c.lora.targets.map(\.rawValue).joined(separator: ",")), seed \(c.seed)")
        }
        if let s = JobState.read(job) {
            print("status:     \(s.status.rawValue), step \(s.step)/\(s.totalSteps)" + (s.adapter.map { ", adapter \($0)" } ?? "") + (s.error.map { ", error: \($0)" } ?? ""))
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

struct JobsEvents: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "events", abstract: "A job's events, oldest first (--follow: until it ends).")
    @Argument(help: "Job id.") var job: String
    @Flag(help: "Keep following the job with a progress bar until it ends (daemon jobs).") var follow = false
    @OptionGroup var registryOptions: RegistryOptions
    @OptionGroup var daemonOptions: DaemonOptions

    func run() async throws {
        if let client = daemonOptions.client(for: registryOptions.hub) {
            if follow {
                let j = try await DaemonTraining(client: client).follow(job)
                print(j["fine_tuned_model"] as? String ?? j["status"] as? String ?? "")
                return
            }
            let events = try await client.call(.GET, "/v1/fine_tuning/jobs/\(job)/events?limit=10000")["data"] as? [[String: Any]] ?? []
            for e in events.reversed() {
                print("\(e["created_at"] as? Int ?? 0)\t\(e["level"] as? String ?? "")\t\(e["message"] as? String ?? "")")
            }
            return
        }
        if follow { throw ValidationError("--follow needs a running daemon; offline jobs run in the terminal that started them") }
        for line in try registryOptions.hub.job(job).events() { print(String(decoding: line, as: UTF8.self)) }
    }
}

struct JobsCancel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cancel", abstract: "Cancel a daemon job (it stops after its current step).")
    @Argument(help: "Job id.") var job: String
    @OptionGroup var registryOptions: RegistryOptions
    @OptionGroup var daemonOptions: DaemonOptions

    func run() async throws {
        guard let client = daemonOptions.client(for: registryOptions.hub) else {
            throw CLIError("no daemon answers; a job run by `graft train` offline stops with Ctrl-C in its terminal")
        }
        let j = try await client.call(.POST, "/v1/fine_tuning/jobs/\(job)/cancel")
        print(j["status"] as? String ?? "")
    }
}
