import Engine
import Foundation
import Hub
import Jobs
import LlamaModel
import Logging
import Synchronization
import Training

/// Fine-tuning jobs in the daemon. A new job validates its files (on a thread of its own),
/// then waits in the queue; up to `slots` jobs train at once, each step run as background work
/// of the engine, so requests keep priority and the weights and threads are shared. Every
/// status change is written to the job's `state.json` first: after a crash, `recover` takes
/// running jobs up again from their last checkpoint and keeps queued ones queued.
public final class TrainingService: Sendable {
    let hub: Hub
    let engine: InferenceEngine
    let slots: Int
    let logger: Logger

    private struct State {
        /// Validated jobs waiting for a slot, in order.
        var queue: [JobDirectory] = []
        /// Running jobs, and whether cancelling was asked.
        var running: [String: Bool] = [:]
        var tasks: [String: Task<Void, Never>] = [:]
        /// Jobs waiting for validation, in order: validated one at a time, so the queue keeps
        /// the order jobs were created in.
        var toValidate: [JobDirectory] = []
        var validating = false
        var stopping = false
    }
    private let state = Mutex(State())

    init(hub: Hub, engine: InferenceEngine, slots: Int, logger: Logger) {
        self.hub = hub; self.engine = engine; self.slots = max(1, slots); self.logger = logger
    }

    /// Takes up what a previous daemon left: running jobs first (they continue from their last
    /// checkpoint), then queued ones in order; jobs caught validating are validated again.
    public func recover() {
        let jobs = hub.listJobs().compactMap { job in JobState.read(job).map { (job, $0) } }
        let running = jobs.filter { $0.1.status == .running && (try? JobSpec.read($0.0))?.api != nil }
        let queued = jobs.filter { $0.1.status == .queued }
        state.withLock { s in
            for (job, _) in running + queued where !s.queue.contains(job) { s.queue.append(job) }
        }
        for (job, _) in running { logger.info("job \(job.id): resuming after a restart") }
        for (job, s) in jobs where s.status == .validatingFiles { submit(job) }
        pump()
    }

    /// A job just created (`validating_files`): checks its files, then queues it.
    func submit(_ job: JobDirectory) {
        let start = state.withLock { s -> Bool in
            s.toValidate.append(job)
            if s.validating { return false }
            s.validating = true
            return true
        }
        guard start else { return }
        Task { [self] in
            while let next = state.withLock({ s -> JobDirectory? in
                if s.toValidate.isEmpty { s.validating = false; return nil }
                return s.toValidate.removeFirst()
            }) {
                await validate(next)
                pump()
            }
        }
    }

    private func validate(_ job: JobDirectory) async {
        do {
            let spec = try JobSpec.read(job)
            let model = engine.model
            let prepared = try await onThread { try spec.makeObjective(model: model) }
            guard prepared.objective.count(.train) > 0 else { throw JobError("\(spec.data.name) has no training examples") }
            // Under the lock, so a cancel cannot slip in between the check and the write.
            let queued = try state.withLock { queue -> Bool in
                var s = JobState.read(job) ?? JobState(status: .queued)
                guard s.status == .validatingFiles else { return false }  // cancelled meanwhile
                s.status = .queued
                try s.write(to: job)
                queue.queue.append(job)
                return true
            }
            if queued {
                try JobRunner.appendEvent(to: job, ["type": "message", "level": "info",
                                                    "message": "Files validated (\(prepared.summary)); job queued"])
            }
        } catch {
            let param = (error as? DatasetError).map { _ in "training_file" }
            logger.info("job \(job.id): validation failed: \(error)")
            try? job.fail(code: "invalid_training_file", message: "\(error)", param: param ?? "training_file")
        }
    }

    /// Starts queued jobs while slots are free.
    private func pump() {
        let start = state.withLock { s -> [JobDirectory] in
            var out: [JobDirectory] = []
            while !s.stopping, s.running.count < slots, !s.queue.isEmpty {
                let job = s.queue.removeFirst()
                s.running[job.id] = false
                out.append(job)
            }
            return out
        }
        for job in start {
            let task = Task { [self] in
                await run(job)
                state.withLock { s in
                    s.running[job.id] = nil
                    s.tasks[job.id] = nil
                }
                pump()
            }
            state.withLock { s in if s.running[job.id] != nil { s.tasks[job.id] = task } }
        }
    }

    private enum Stop { case cancelled, draining }

    private func stopReason(_ id: String) -> Stop? {
        state.withLock { s in s.running[id] == true ? .cancelled : s.stopping ? .draining : nil }
    }

    private func run(_ job: JobDirectory) async {
        var runner: JobRunner?
        do {
            let spec = try JobSpec.read(job)
            let model = engine.model
            let prepared = try await onThread { try spec.makeObjective(model: model) }
            let started = Date()
            let r = try await engine.background { pause in
                try JobRunner(job: job, spec: spec, hub: self.hub, model: model, objective: prepared, pause: pause)
            }
            runner = r
            let t = r.trainer
            try r.writeState(.running)
            try r.message(r.resumedFrom > 0 ? "Fine-tuning job resumed at step \(r.resumedFrom) of \(t.totalSteps)"
                                             : "Fine-tuning job started: \(prepared.summary), \(t.totalSteps) steps")
            logger.info("job \(job.id): training \(spec.tenant)/\(spec.name) from step \(r.resumedFrom) of \(t.totalSteps)")
            while !t.isFinished {
                if let reason = stopReason(job.id) {
                    try r.checkpoint()
                    if reason == .cancelled {
                        try r.writeState(.cancelled)
                        try r.message("The job was cancelled at step \(t.state.step) of \(t.totalSteps)")
                    }
                    return  // draining: stays `running` and resumes at the next start
                }
                let outcome = try await engine.background { pause in try r.step(pause: pause) }
                try r.record(outcome)
                let done = t.state.step - r.resumedFrom
                let perStep = Date().timeIntervalSince(started) / Double(max(done, 1))
                try r.writeState(.running, estimatedFinish: Date(timeIntervalSinceNow: perStep * Double(t.totalSteps - t.state.step)))
            }
            let metrics = try await engine.background { pause in try r.finalMetrics(pause: pause) }
            let id = try r.publish(metrics: metrics)
            try r.message("The job has successfully completed")
            logger.info("job \(job.id): published \(id)")
        } catch {
            if case EngineError.draining = error { return }  // stopping: resumes at the next start
            logger.error("job \(job.id): failed: \(error)")
            let t = runner?.trainer
            try? job.fail(code: "training_error", message: "\(error)", step: t?.state.step ?? 0, totalSteps: t?.totalSteps ?? 0)
        }
    }

    /// Cancels a job: a waiting one at once, a running one after its current step (its last
    /// checkpoint is kept). Returns when the job's state says `cancelled`.
    func cancel(_ job: JobDirectory) async throws {
        let cancelled = try state.withLock { s -> Bool in
            if s.running[job.id] != nil { s.running[job.id] = true; return false }
            s.queue.removeAll { $0 == job }
            var st = JobState.read(job) ?? JobState(status: .queued)
            guard !st.status.isFinal else { return true }
            st.status = .cancelled
            st.finishedAt = Date()
            try st.write(to: job)
            return true
        }
        if cancelled {
            try JobRunner.appendEvent(to: job, ["type": "message", "level": "info", "message": "The job was cancelled"])
            return
        }
        let task = state.withLock { $0.tasks[job.id] }
        await task?.value
    }

    /// Refuses (409) deleting a file that a job not yet finished will read.
    func checkFileDeletable(_ fileID: String, tenant: String) throws {
        for job in hub.listJobs(tenant: tenant) {
            guard let s = JobState.read(job), !s.status.isFinal, let api = (try? JobSpec.read(job))?.api,
                  api.trainingFile == fileID || api.validationFile == fileID else { continue }
            throw APIError(.conflict, "file \(fileID) is used by job \(job.id) (\(s.status.rawValue)); "
                           + "cancel the job or wait for it to finish", code: "file_in_use", shouldRetry: false)
        }
    }

    /// Jobs of `tenant` waiting to run (validating or queued).
    func waitingJobs(tenant: String) -> Int {
        hub.listJobs(tenant: tenant).filter { job in
            guard let s = JobState.read(job)?.status else { return false }
            return s == .validatingFiles || s == .queued
        }.count
    }

    /// Stops training for shutdown: running jobs checkpoint after their current step and stay
    /// `running` (a restart continues them); queued jobs stay queued.
    public func stop() async {
        let tasks = state.withLock { s -> [Task<Void, Never>] in
            s.stopping = true
            return Array(s.tasks.values)
        }
        for task in tasks { await task.value }
    }
}

/// Runs blocking work (tokenizing a dataset) on a thread of its own, off the concurrency pool.
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.stackSize = 8 << 20
        thread.start()
    }
}
