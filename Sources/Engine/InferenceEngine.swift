import Dispatch
import Foundation
import LlamaModel
import Synchronization

/// The one owner of the model and its compute threads: a continuous-batching loop on a
/// thread of its own. Each step admits waiting requests (their prompts prefilled in chunks),
/// then runs every active sequence's next token as one batch, each row with its own adapter
/// mix, so the frozen weights are read once per step for all rows.
///
/// `submit` may be called from any thread or task; results arrive on the returned stream.
/// Dropping (or cancelling the consumer of) the stream cancels the request within one step.
public final class InferenceEngine: Sendable {
    public let model: LlamaModel
    public let limits: EngineLimits
    /// Key/value bytes one position takes in a sequence's cache.
    public let kvBytesPerToken: Int

    private let shared = Mutex(Shared())
    private let wake = DispatchSemaphore(value: 0)
    private let done = DispatchSemaphore(value: 0)

    struct Pending: Sendable {
        let id: UInt64
        let job: InferenceJob
        let continuation: AsyncThrowingStream<EngineEvent, any Error>.Continuation
        let submitted: Double
        let reservation: Int
    }

    /// Work run on the engine thread between requests (a training step); `run` gets the
    /// pause to call at safe points, or nil when the engine stops before it starts.
    struct Background: Sendable {
        let run: @Sendable ((() -> Void)?) -> Void
    }

    struct Shared: Sendable {
        var queue: [Pending] = []
        var background: [Background] = []
        var cancelled: Set<UInt64> = []
        var draining = false
        var stopping = false
        var nextID: UInt64 = 1
        var stats = EngineStats()
    }

    public init(model: LlamaModel, limits: EngineLimits = EngineLimits()) {
        self.model = model
        self.limits = limits
        kvBytesPerToken = model.makeCache().bytesPerPosition  // an empty cache allocates nothing
        let thread = Thread { [self] in
            Scheduler(engine: self).run()
            done.signal()
        }
        thread.name = "graft-engine"
        thread.stackSize = 8 << 20
        thread.start()
    }

    /// A queued job: its id (for `cancel`) and its events.
    public struct Submission: Sendable {
        public let id: UInt64
        public let events: AsyncThrowingStream<EngineEvent, any Error>
    }

    /// Queues `job` and returns its events. Throws when it can never run (too long, empty) or
    /// cannot run now (queue full, draining).
    public func submit(_ job: InferenceJob) throws -> AsyncThrowingStream<EngineEvent, any Error> {
        try enqueue(job).events
    }

    /// As `submit`, also returning the id to cancel the job with.
    public func enqueue(_ job: InferenceJob) throws -> Submission {
        guard !job.prompt.isEmpty else { throw EngineError.emptyPrompt }
        guard job.maxTokens >= 1 else { throw EngineError.invalid("max_tokens must be at least 1") }
        let context = model.config.contextLength
        let total = job.prompt.count + job.maxTokens
        if total > context { throw EngineError.tooLong(tokens: total, limit: context, what: "model's context length") }
        if total > limits.maxTotalTokens {
            throw EngineError.tooLong(tokens: total, limit: limits.maxTotalTokens, what: "server's limit per request")
        }
        let reservation = total * kvBytesPerToken
        if reservation > limits.kvBudgetBytes {
            throw EngineError.tooLong(tokens: total, limit: limits.kvBudgetBytes / kvBytesPerToken,
                                      what: "key/value memory budget")
        }
        let (stream, continuation) = AsyncThrowingStream<EngineEvent, any Error>.makeStream()
        let id = try shared.withLock { s -> UInt64 in
            if s.draining { throw EngineError.draining }
            if s.queue.count >= limits.maxQueued { throw EngineError.queueFull(retryAfter: 1) }
            let id = s.nextID
            s.nextID += 1
            s.queue.append(Pending(id: id, job: job, continuation: continuation, submitted: Clock.now,
                                   reservation: reservation))
            s.stats.queued = s.queue.count
            return id
        }
        continuation.onTermination = { [weak self] termination in
            if case .cancelled = termination { self?.cancel(id) }
        }
        wake.signal()
        return Submission(id: id, events: stream)
    }

    /// Stops request `id` at the next step; its stream ends with `CancellationError`. Ids
    /// already finished are ignored.
    public func cancel(_ id: UInt64) {
        shared.withLock { _ = $0.cancelled.insert(id) }
        wake.signal()
    }

    public var stats: EngineStats { shared.withLock { $0.stats } }

    /// Runs `work` on the engine thread, with the model and the compute threads to itself,
    /// when requests leave room: at once when idle, and after at most
    /// `limits.backgroundWaitSeconds` of continuous serving. `work` must call the `pause` it
    /// is given often (between layers, see `trainingPass`): each call serves waiting and
    /// active requests for up to `limits.pauseServingSeconds`. Background work runs in the
    /// order submitted; when the engine stops first this throws `EngineError.draining`.
    public func background<R: Sendable>(_ work: @escaping @Sendable (_ pause: @escaping () -> Void) throws -> R)
        async throws -> R {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<R, any Error>) in
            let item = Background { pause in
                guard let pause else { continuation.resume(throwing: EngineError.draining); return }
                continuation.resume(with: Result { try work(pause) })
            }
            let accepted = shared.withLock { s -> Bool in
                if s.stopping { return false }
                s.background.append(item)
                return true
            }
            if accepted { wake.signal() } else { continuation.resume(throwing: EngineError.draining) }
        }
    }

    /// Stops taking new requests; those already submitted go on.
    public func beginDraining() { shared.withLock { $0.draining = true } }

    public var isDraining: Bool { shared.withLock { $0.draining } }

    /// Waits until no request is active or queued, or `timeout` seconds pass; returns whether
    /// the engine became idle.
    public func waitUntilIdle(timeout: Double) async -> Bool {
        let deadline = Clock.now + timeout
        while Clock.now < deadline {
            let s = stats
            if s.active == 0 && s.queued == 0 { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    /// Ends every request still running (with `EngineError.draining`) and stops the thread.
    /// Calling it again returns at once.
    public func shutdown() {
        shared.withLock { $0.draining = true; $0.stopping = true }
        wake.signal()
        done.wait()
        done.signal()  // for later calls
    }

    // MARK: Scheduler side

    /// What the scheduler takes from the shared state at the start of a step.
    struct Intake {
        var admitted: [Pending] = []
        var cancelled: Set<UInt64> = []
        var stopping = false
        var backgroundWaiting = false
    }

    /// Admits queued requests while slots and the key/value budget allow (always at least one
    /// when nothing runs), and collects cancellations.
    func intake(active: Int, reserved: Int) -> Intake {
        shared.withLock { s in
            var intake = Intake(cancelled: s.cancelled, stopping: s.stopping, backgroundWaiting: !s.background.isEmpty)
            s.cancelled.removeAll()
            if !intake.cancelled.isEmpty {
                for p in s.queue where intake.cancelled.contains(p.id) { p.continuation.finish(throwing: CancellationError()) }
                s.queue.removeAll { intake.cancelled.contains($0.id) }
            }
            var count = active, bytes = reserved
            while let next = s.queue.first, count < limits.maxActive,
                  count == 0 || bytes + next.reservation <= limits.kvBudgetBytes {
                s.queue.removeFirst()
                intake.admitted.append(next)
                count += 1
                bytes += next.reservation
            }
            if s.stopping {
                for p in s.queue { intake.admitted.append(p) }  // ended by the scheduler
                s.queue.removeAll()
            }
            s.stats.queued = s.queue.count
            return intake
        }
    }

    func publish(active: Int, reserved: Int, generated: Int, stepped: Bool, promptTokensCached: Int = 0,
                 prefixCacheBytes: Int? = nil) {
        shared.withLock { s in
            s.stats.active = active
            s.stats.kvReservedBytes = reserved
            s.stats.tokensGenerated += generated
            s.stats.promptTokensCached += promptTokensCached
            if let prefixCacheBytes { s.stats.prefixCacheBytes = prefixCacheBytes }
            if stepped { s.stats.steps += 1 }
        }
    }

    func waitForWork() { wake.wait() }

    func takeBackground() -> Background? {
        shared.withLock { s in s.background.isEmpty ? nil : s.background.removeFirst() }
    }

    /// Whether requests are waiting to be admitted (checked at every pause, so cheap).
    var hasQueuedRequests: Bool { shared.withLock { !$0.queue.isEmpty || !$0.cancelled.isEmpty || $0.stopping } }
}
