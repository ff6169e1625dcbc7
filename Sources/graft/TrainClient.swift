import ArgumentParser
import DaemonClient
import Foundation
import Synchronization
import Training

/// `graft train` against a running daemon: uploads the data, creates the job and follows its
/// events with the same progress display as offline training. Ctrl-C detaches; the job goes on.
struct DaemonTraining {
    let client: DaemonClient

    /// Uploads `path` as a fine-tuning file (for `tenant` when given) and returns its id.
    func upload(_ path: String, tenant: String?) async throws -> String {
        let name = (path as NSString).lastPathComponent.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "data.jsonl"
        let query = "purpose=fine-tune&filename=\(name)" + (tenant.map { "&tenant=\($0)" } ?? "")
        let file = try await client.upload("/v1/files?\(query)", file: path)
        guard let id = file["id"] as? String else { throw CLIError("the daemon did not return a file id") }
        return id
    }

    /// The daemon's base model (listed first by /v1/models).
    func baseModel() async throws -> String {
        let models = try await client.call(.GET, "/v1/models")["data"] as? [[String: Any]] ?? []
        guard let id = models.first?["id"] as? String else { throw CLIError("the daemon lists no model") }
        return id
    }

    /// Follows a job's events until it ends (or until Ctrl-C: then detaches) and returns the job.
    func follow(_ jobID: String) async throws -> [String: Any] {
        let detach = Atomic<Bool>(false)
        let source = DispatchSource.makeSignalSource(signal: SIGINT)
        signal(SIGINT, SIG_IGN)
        source.setEventHandler { detach.store(true, ordering: .relaxed) }
        source.resume()
        defer { source.cancel(); signal(SIGINT, SIG_DFL) }
        let progress = ProgressDisplay()
        var seen = Set<String>()
        var started: Double?
        while true {
            let events = try await client.call(.GET, "/v1/fine_tuning/jobs/\(jobID)/events?limit=10000")["data"]
                as? [[String: Any]] ?? []
            for e in events.reversed() {
                guard let id = e["id"] as? String, seen.insert(id).inserted else { continue }
                let time = Double(e["created_at"] as? Int ?? 0)
                if started == nil { started = time }
                if e["type"] as? String == "metrics", let d = e["data"] as? [String: Any] {
                    progress.update(stepReport(d), validation: validation(d), elapsed: max(1, time - (started ?? time)))
                } else if let message = e["message"] as? String {
                    progress.finish()
                    Terminal.note("job \(jobID): \(message)")
                }
            }
            let job = try await client.call(.GET, "/v1/fine_tuning/jobs/\(jobID)")
            if let status = job["status"] as? String, ["succeeded", "failed", "cancelled"].contains(status) {
                progress.finish()
                return job
            }
            for _ in 0..<10 where !detach.load(ordering: .relaxed) { try await Task.sleep(for: .milliseconds(100)) }
            if detach.load(ordering: .relaxed) {
                progress.finish()
                Terminal.note("detached; job \(jobID) goes on in the daemon. Follow it with: graft jobs events \(jobID) --follow")
                throw ExitCode(130)
            }
        }
    }

    private func stepReport(_ d: [String: Any]) -> StepReport {
        func number(_ key: String) -> Double { (d[key] as? NSNumber)?.doubleValue ?? 0 }
        let skip: Set<String> = ["step", "total_steps", "epoch", "train_loss", "train_mean_token_accuracy", "lr", "grad_norm",
                                 "tokens_per_second", "trained_tokens"]
        let metrics = d.keys.sorted().filter { !skip.contains($0) && !$0.hasPrefix("valid_") && !$0.hasPrefix("full_") }
            .compactMap { k in (d[k] as? NSNumber).map { Metric(k, $0.doubleValue) } }
        return StepReport(step: Int(number("step")), totalSteps: Int(number("total_steps")), epoch: number("epoch"),
                          trainLoss: number("train_loss"), trainAccuracy: number("train_mean_token_accuracy"),
                          metrics: metrics, learningRate: number("lr"), gradNorm: number("grad_norm"),
                          tokensPerSecond: number("tokens_per_second"), tokens: 0, seconds: 0)
    }

    private func validation(_ d: [String: Any]) -> Evaluation? {
        guard let loss = (d["valid_loss"] as? NSNumber)?.doubleValue else { return nil }
        let metrics = d.keys.sorted().filter { $0.hasPrefix("valid_") && $0 != "valid_loss" && $0 != "valid_mean_token_accuracy" }
            .compactMap { k in (d[k] as? NSNumber).map { Metric(String(k.dropFirst(6)), $0.doubleValue) } }
        return Evaluation(loss: loss, meanTokenAccuracy: (d["valid_mean_token_accuracy"] as? NSNumber)?.doubleValue ?? 0,
                          tokens: 0, metrics: metrics)
    }
}

