import ArgumentParser
import Foundation
import Hub
import Jobs
import LlamaModel
import Synchronization
import Training

/// Set by SIGINT/SIGTERM: stop after the current step, checkpoint, exit.
let stopRequested = Atomic<Int>(0)

/// A training job run in this process: the job runner and its progress display.
final class TrainingRun {
    let runner: JobRunner
    let progress = ProgressDisplay()

    private init(_ runner: JobRunner) { self.runner = runner }

    static func start(_ spec: JobSpec, hub: Hub, modelOptions: ModelOptions) throws -> TrainingRun {
        let model = try modelOptions.load(verbose: true)
        let prepared = try spec.makeObjective(model: model) { Terminal.note($0) }
        let job = try hub.createJob(tenant: spec.tenant, config: try spec.encoded())
        Terminal.note("job \(job.id): \(spec.config.method), \(prepared.summary)")
        let runner = try JobRunner(job: job, spec: spec, hub: hub, model: model, objective: prepared)
        Terminal.note("job \(job.id): \(runner.trainer.totalSteps) steps")
        return TrainingRun(runner)
    }

    static func resume(job: JobDirectory, modelOptions: ModelOptions) throws -> TrainingRun {
        let spec = try JobSpec.read(job)
        if let state = JobState.read(job), state.status == .succeeded {
            throw CLIError("job \(job.id) already succeeded: \(state.adapter ?? "")")
        }
        let model = try modelOptions.load(verbose: true)
        let prepared = try spec.makeObjective(model: model) { Terminal.note($0) }
        let runner = try JobRunner(job: job, spec: spec, hub: modelOptions.registryOptions.hub, model: model,
                                   objective: prepared)
        Terminal.note("resuming job \(job.id) at step \(runner.resumedFrom) of \(runner.trainer.totalSteps)")
        return TrainingRun(runner)
    }

    /// Trains to the end (or until a stop signal), publishes the adapter and returns the
    /// final metrics.
    func run() throws -> [String: Any] {
        installStopHandlers()
        let t = runner.trainer, job = runner.job
        try runner.writeState(.running)
        do {
            while !t.isFinished {
                if stopRequested.load(ordering: .relaxed) != 0 {
                    try runner.checkpoint()
                    try runner.writeState(.interrupted)
                    progress.finish()
                    Terminal.note("stopped at step \(t.state.step) of \(t.totalSteps); checkpoint written. "
                        + "Continue with: graft train --resume \(job.id)")
                    throw ExitCode(130)
                }
                let outcome = try runner.step()
                try runner.record(outcome)
                progress.update(outcome.report, validation: t.state.lastValidation, elapsed: t.state.seconds)
            }
            progress.finish()
            var metrics = try runner.finalMetrics()
            if let rss = peakRSS() { metrics["peak_rss_mib"] = Double(rss / (1 << 20)) }
            let id = try runner.publish(metrics: metrics)
            Terminal.note("published \(id) (job \(job.id)): " + String(format: "train loss %.4f", metrics["train_loss"] ?? 0)
                + (metrics["valid_loss"].map { String(format: ", validation loss %.4f", $0) } ?? "")
                + String(format: ", %.0f s", t.state.seconds))
            var result: [String: Any] = metrics
            for key in ["trained_tokens", "steps", "peak_rss_mib"] { result[key] = metrics[key].map { Int($0) } }
            result["id"] = id.description
            result["job"] = job.id
            return result
        } catch let error as ExitCode {
            throw error
        } catch {
            progress.finish()
            try? job.fail(code: "training_error", message: "\(error)")
            throw error
        }
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
