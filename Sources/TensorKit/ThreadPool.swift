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

    public let threadCount: Int

    private let generation = Atomic<Int>(0)
    private let nextItem = Atomic<Int>(0)
    private let unfinished = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private var itemCount = 0
    private var job: ((Int, Int) -> Void)?
    private var stopping = false
    private var mutex = pthread_mutex_t()
    private var wake = pthread_cond_t()
    private var threads: [pthread_t] = []
    private var busy = false
    /// Per-worker scratch buffers, grown on demand and reused across calls.
    private let scratch: [WorkerScratch]

    /// Iterations a worker spins (checking for new work) before it sleeps.
    private let spinLimit = 200_000

    public init(threadCount: Int) {
        self.threadCount = max(1, threadCount)
        scratch = (0..<self.threadCount).map { _ in WorkerScratch() }
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&wake, nil)
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

    deinit {
        pthread_mutex_lock(&mutex)
        stopping = true
        generation.add(1, ordering: .releasing)
        pthread_cond_broadcast(&wake)
        pthread_mutex_unlock(&mutex)
        for t in threads { pthread_join(t, nil) }
    }

    /// Runs `body(item, worker)` for every item in `0..<count`, spread over the workers;
    /// returns when all are done. `worker` is in `0..<threadCount` and identifies the thread,
    /// for indexing per-thread scratch. Calls must not nest.
    public func parallelFor(_ count: Int, _ body: (_ item: Int, _ worker: Int) -> Void) {
        if count <= 0 { return }
        if count == 1 || threadCount == 1 {
            for i in 0..<count { body(i, 0) }
            return
        }
        precondition(!busy, "ThreadPool.parallelFor does not nest")
        busy = true
        withoutActuallyEscaping(body) { body in
            job = body
            itemCount = count
            nextItem.store(0, ordering: .relaxed)
            unfinished.store(threadCount - 1, ordering: .relaxed)
            // Sequentially consistent with the sleeper's increment-then-check, so either this
            // sees the sleeper or the sleeper sees the new generation.
            generation.add(1, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(&mutex)
                pthread_cond_broadcast(&wake)
                pthread_mutex_unlock(&mutex)
            }
            runItems(worker: 0)
            while unfinished.load(ordering: .acquiring) > 0 {}
            job = nil
        }
        busy = false
    }

    private func runItems(worker: Int) {
        guard let job else { return }
        while true {
            let i = nextItem.add(1, ordering: .relaxed).oldValue
            if i >= itemCount { break }
            job(i, worker)
        }
    }

    private func workerLoop(_ index: Int) {
        var seen = 0
        while true {
            var spins = 0
            while generation.load(ordering: .acquiring) == seen {
                spins += 1
                if spins >= spinLimit {
                    pthread_mutex_lock(&mutex)
                    sleepers.add(1, ordering: .sequentiallyConsistent)
                    while generation.load(ordering: .sequentiallyConsistent) == seen {
                        pthread_cond_wait(&wake, &mutex)
                    }
                    sleepers.subtract(1, ordering: .releasing)
                    pthread_mutex_unlock(&mutex)
                }
            }
            seen = generation.load(ordering: .acquiring)
            if stopping { return }
            runItems(worker: index)
            unfinished.subtract(1, ordering: .releasing)
        }
    }

    /// A reusable buffer of at least `count` floats for `worker`'s `slot`. Valid until the
    /// next call with the same worker and slot.
    public func scratch(worker: Int, slot: Int, count: Int) -> UnsafeMutablePointer<Float> {
        scratch[worker].buffer(slot: slot, floats: count)
    }

    private static func defaultThreadCount() -> Int {
        if let s = getenv("GRAFT_THREADS"), let n = Int(String(cString: s)), n > 0 { return n }
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
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
    let pool: ThreadPool
    let index: Int
    init(pool: ThreadPool, index: Int) { self.pool = pool; self.index = index }
}
