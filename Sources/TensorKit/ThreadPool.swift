#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A persistent pool of worker threads for data-parallel loops.
///
/// Decode-time matrix-vector products take tens of microseconds, which is the scale of the
/// wake-up latency of `DispatchQueue.concurrentPerform`. These workers spin for a while after
/// each job before they sleep, so back-to-back `parallelFor` calls start in well under a
/// microsecond. The calling thread takes part as worker 0.
public final class ThreadPool: @unchecked Sendable {
    /// The process-wide pool, one thread per core (override with GRAFT_THREADS).
    public static let shared = ThreadPool(threadCount: defaultThreadCount())

    /// The workers keep the core alive, not the pool, so dropping the pool stops them.
    private let core: PoolCore

    public var threadCount: Int { core.threadCount }

    public init(threadCount: Int) { core = PoolCore(threadCount: threadCount) }

    deinit { core.stop() }

    /// Runs `body(item, worker)` for every item in `0..<count`, spread over the workers;
    /// returns when all are done. `worker` is in `0..<threadCount` and identifies the thread,
    /// for indexing per-thread scratch. Concurrent callers take turns; a call from inside
    /// `body` (a nested parallel loop) stops the program with a message instead of deadlocking
    /// or corrupting the running job.
    ///
    /// The caller waits only for items that were claimed, never for a worker to wake up: on a
    /// loaded machine a descheduled worker costs nothing but its share of the items.
    public func parallelFor(_ count: Int, _ body: (_ item: Int, _ worker: Int) -> Void) {
        core.parallelFor(count, body)
    }

    /// Runs `body` while no other thread can use the pool, e.g. to keep worker 0's scratch
    /// buffers across several `parallelFor` calls. Calls may nest on one thread.
    public func exclusive<R>(_ body: () throws -> R) rethrows -> R { try core.exclusive(body) }

    /// A reusable buffer of at least `count` floats for `worker`'s `slot`. Valid until the
    /// next call with the same worker and slot. Worker 0's buffers belong to the thread inside
    /// `exclusive` (or `parallelFor`); other workers' only to the workers, inside a job.
    public func scratch(worker: Int, slot: Int, count: Int) -> UnsafeMutablePointer<Float> {
        core.scratch(worker: worker, slot: slot, count: count)
    }

    private static func defaultThreadCount() -> Int {
        if let s = getenv("GRAFT_THREADS"), let n = Int(String(cString: s)), n > 0 { return n }
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }
}

/// The pool's state and worker threads.
private final class PoolCore: @unchecked Sendable {
    let threadCount: Int

    /// The current job in one word: generation (bits 44...63), item count (22...43) and next
    /// unclaimed item (0...21). Claiming is a compare-and-swap of the whole word, so a worker
    /// that wakes late can only claim items of the job that is current; it reads the job's
    /// closure after claiming, and the caller cannot finish (and replace the closure) while a
    /// claimed item is unfinished.
    private let state = Atomic<UInt64>(0)
    private static let itemBits: UInt64 = 22
    private static let itemMask: UInt64 = (1 << itemBits) - 1
    private let completed = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private var job: ((Int, Int) -> Void)?
    private var stopping = false
    private var mutex = pthread_mutex_t()
    private var wake = pthread_cond_t()
    private var threads: [pthread_t] = []
    /// Serializes callers (recursive, so `exclusive` can wrap several jobs).
    private var callerLock = pthread_mutex_t()
    /// Per-worker scratch buffers, grown on demand and reused across calls.
    private let scratch: [WorkerScratch]
    /// The thread holding `callerLock` (0 when none), and whether its job is running.
    private let owner = Atomic<UInt>(0)
    private var holds = 0
    private var running = false
    /// Set on the pool's own worker threads.
    private var workerKey = pthread_key_t()

    /// Iterations a worker spins (checking for new work) before it sleeps.
    private let spinLimit = 100_000

    public init(threadCount: Int) {
        self.threadCount = max(1, threadCount)
        scratch = (0..<self.threadCount).map { _ in WorkerScratch() }
        pthread_mutex_init(&mutex, nil)
        var attributes = pthread_mutexattr_t()
        pthread_mutexattr_init(&attributes)
        pthread_mutexattr_settype(&attributes, Int32(PTHREAD_MUTEX_RECURSIVE))
        pthread_mutex_init(&callerLock, &attributes)
        pthread_mutexattr_destroy(&attributes)
        pthread_cond_init(&wake, nil)
        pthread_key_create(&workerKey, nil)
        for worker in 1..<self.threadCount {
            let box = Unmanaged.passRetained(WorkerStart(pool: self, index: worker))
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { arg in
                let start = Unmanaged<WorkerStart>.fromOpaque(arg!).takeRetainedValue()
                start.pool.workerLoop(start.index)
                return nil
            }, box.toOpaque())
            precondition(rc == 0, "pthread_create failed: \(rc)")
            threads.append(thread)
        }
    }

    /// Stops and joins the workers.
    func stop() {
        pthread_mutex_lock(&mutex)
        stopping = true
        state.add(1 << (2 * Self.itemBits), ordering: .sequentiallyConsistent)
        pthread_cond_broadcast(&wake)
        pthread_mutex_unlock(&mutex)
        for t in threads { pthread_join(t, nil) }
        threads = []
    }

    private func lock() {
        precondition(pthread_getspecific(workerKey) == nil, "a thread pool job started another parallel loop on the same pool")
        pthread_mutex_lock(&callerLock)
        if holds == 0 { owner.store(UInt(bitPattern: Int(bitPattern: pthread_self())), ordering: .relaxed) }
        holds += 1
    }

    private func unlock() {
        holds -= 1
        if holds == 0 { owner.store(0, ordering: .relaxed) }
        pthread_mutex_unlock(&callerLock)
    }

    private var callerHoldsLock: Bool {
        owner.load(ordering: .relaxed) == UInt(bitPattern: Int(bitPattern: pthread_self()))
    }

    func parallelFor(_ count: Int, _ body: (_ item: Int, _ worker: Int) -> Void) {
        if count <= 0 { return }
        lock()
        defer { unlock() }
        precondition(!running, "a thread pool job started another parallel loop on the same pool")
        running = true
        defer { running = false }
        if count == 1 || threadCount == 1 {
            for i in 0..<count { body(i, 0) }
            return
        }
        precondition(UInt64(count) <= Self.itemMask, "too many items for one parallelFor")
        withoutActuallyEscaping(body) { body in
            job = body
            completed.store(0, ordering: .relaxed)
            let generation = (state.load(ordering: .relaxed) >> (2 * Self.itemBits)) &+ 1
            // Sequentially consistent with the sleeper's increment-then-check, so either this
            // sees the sleeper or the sleeper sees the new generation.
            state.store(generation << (2 * Self.itemBits) | UInt64(count) << Self.itemBits,
                        ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(&mutex)
                pthread_cond_broadcast(&wake)
                pthread_mutex_unlock(&mutex)
            }
            while let i = claim(generation: generation) {
                body(i, 0)
                completed.add(1, ordering: .releasing)
            }
            while completed.load(ordering: .acquiring) < count {}
            job = nil
        }
    }

    func exclusive<R>(_ body: () throws -> R) rethrows -> R {
        lock()
        defer { unlock() }
        precondition(!running, "a thread pool job entered the pool's exclusive section")
        return try body()
    }

    /// Claims the next item of job `generation`, or returns nil when it has none left (or a
    /// newer job has started).
    @inline(__always)
    private func claim(generation: UInt64) -> Int? {
        var word = state.load(ordering: .acquiring)
        while true {
            guard word >> (2 * Self.itemBits) == generation & ((1 << 20) - 1) else { return nil }
            let next = word & Self.itemMask, count = (word >> Self.itemBits) & Self.itemMask
            if next >= count { return nil }
            let (exchanged, current) = state.compareExchange(expected: word, desired: word + 1,
                                                              ordering: .acquiringAndReleasing)
            if exchanged { return Int(next) }
            word = current
        }
    }

    private func workerLoop(_ index: Int) {
        pthread_setspecific(workerKey, UnsafeRawPointer(bitPattern: index))
        var seen: UInt64 = 0
        while true {
            var spins = 0
            while state.load(ordering: .acquiring) >> (2 * Self.itemBits) == seen {
                spins += 1
                if spins >= spinLimit {
                    pthread_mutex_lock(&mutex)
                    sleepers.add(1, ordering: .sequentiallyConsistent)
                    while state.load(ordering: .sequentiallyConsistent) >> (2 * Self.itemBits) == seen {
                        pthread_cond_wait(&wake, &mutex)
                    }
                    sleepers.subtract(1, ordering: .sequentiallyConsistent)
                    pthread_mutex_unlock(&mutex)
                    spins = 0
                }
            }
            if stopping { return }
            seen = state.load(ordering: .acquiring) >> (2 * Self.itemBits)
            while let i = claim(generation: seen) {
                // The closure reference must be gone before the item counts as completed:
                // the caller then ends the closure's lifetime.
                do {
                    let job = self.job!
                    job(i, index)
                }
                completed.add(1, ordering: .releasing)
            }
        }
    }

    func scratch(worker: Int, slot: Int, count: Int) -> UnsafeMutablePointer<Float> {
        if worker == 0 {
            precondition(callerHoldsLock, "worker 0's scratch used outside the pool's exclusive section")
        } else {
            precondition(Int(bitPattern: pthread_getspecific(workerKey)) == worker, "worker \(worker)'s scratch used by another thread")
        }
        return scratch[worker].buffer(slot: slot, floats: count)
    }
}

/// Scratch owned by one worker thread; only that thread touches it.
private final class WorkerScratch {
    private var slots: [UnsafeMutableRawBufferPointer] = []

    func buffer(slot: Int, floats: Int) -> UnsafeMutablePointer<Float> {
        while slots.count <= slot { slots.append(UnsafeMutableRawBufferPointer(start: nil, count: 0)) }
        let bytes = max(floats, 16) * MemoryLayout<Float>.stride
        if slots[slot].count < bytes {
            slots[slot].deallocate()
            slots[slot] = .allocate(byteCount: bytes, alignment: 64)
        }
        return slots[slot].baseAddress!.assumingMemoryBound(to: Float.self)
    }

    deinit { for s in slots { s.deallocate() } }
}

private final class WorkerStart {
    let pool: PoolCore
    let index: Int
    init(pool: PoolCore, index: Int) { self.pool = pool; self.index = index }
}
