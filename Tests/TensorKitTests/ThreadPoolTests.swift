import Foundation
import Synchronization
import TensorKit
import Testing

/// One atomic counter per item.
final class Counters: @unchecked Sendable {
    let count: Int
    private let slots: UnsafeMutablePointer<Atomic<Int>>

    init(_ count: Int) {
        self.count = count
        slots = .allocate(capacity: max(count, 1))
        for i in 0..<count { (slots + i).initialize(to: Atomic(0)) }
    }

    deinit {
        slots.deinitialize(count: count)
        slots.deallocate()
    }

    func hit(_ i: Int) { slots[i].add(1, ordering: .relaxed) }
    func value(_ i: Int) -> Int { slots[i].load(ordering: .relaxed) }
}

@Suite("ThreadPool runs every item once, on a valid worker")
struct ThreadPoolTests {
    @Test("parallelFor runs each item exactly once with an in-range worker index", arguments: [1, 2, 4])
    func exactlyOnce(threads: Int) {
        let pool = ThreadPool(threadCount: threads)
        #expect(pool.threadCount == threads)
        for count in [0, 1, 2, 1000] {
            let hits = Counters(count)
            let badWorker = Atomic<Int>(-1)
            pool.parallelFor(count) { item, worker in
                hits.hit(item)
                if worker < 0 || worker >= threads { badWorker.store(worker, ordering: .relaxed) }
            }
            let wrong = (0..<count).filter { hits.value($0) != 1 }
            #expect(wrong.isEmpty, "\(threads) threads, \(count) items: items \(wrong.prefix(5)) ran \(wrong.prefix(5).map(hits.value)) times")
            #expect(badWorker.load(ordering: .relaxed) == -1, "\(threads) threads: worker index out of range")
        }
    }

    @Test("a single item runs on the calling thread as worker 0, and a pool of zero threads has one")
    func singleItem() {
        let pool = ThreadPool(threadCount: 0)
        #expect(pool.threadCount == 1)
        var seen: [Int] = []
        ThreadPool(threadCount: 2).parallelFor(1) { item, worker in seen.append(item * 10 + worker) }
        pool.parallelFor(3) { item, worker in seen.append(item * 10 + worker) }
        #expect(seen == [0, 0, 10, 20])
    }

    @Test("many consecutive small loops of changing sizes all complete with every item run once",
          arguments: [(2, 20_000), (4, 5_000)])
    func manyCalls(threads: Int, calls: Int) {
        let pool = ThreadPool(threadCount: threads)
        let sizes = [2, 64, 3, 40, 1, 17, 5, 33]
        let ran = Atomic<Int>(0), indexSum = Atomic<Int>(0)
        var failures = 0
        for call in 0..<calls {
            let n = sizes[call % sizes.count]
            ran.store(0, ordering: .relaxed)
            indexSum.store(0, ordering: .relaxed)
            pool.parallelFor(n) { item, _ in
                indexSum.add(item + 1, ordering: .relaxed)
                ran.add(1, ordering: .relaxed)
            }
            let r = ran.load(ordering: .relaxed), s = indexSum.load(ordering: .relaxed)
            if r != n || s != n * (n + 1) / 2 {
                failures += 1
                if failures <= 3 { Issue.record("call \(call) with \(n) items ran \(r) items, index sum \(s)") }
            }
        }
        #expect(failures == 0)
    }

    @Test("worker 0's scratch buffers are reused per slot and distinct between slots (other workers' are checked inside jobs below)")
    func scratchIdentity() {
        let pool = ThreadPool(threadCount: 3)
        pool.exclusive {
            let a = pool.scratch(worker: 0, slot: 0, count: 100)
            #expect(pool.scratch(worker: 0, slot: 0, count: 100) == a)
            #expect(pool.scratch(worker: 0, slot: 0, count: 10) == a)
            let others = [pool.scratch(worker: 0, slot: 1, count: 100), pool.scratch(worker: 0, slot: 2, count: 100)]
            #expect(!others.contains(a))
            #expect(Set(others).count == 2)
            // Growing keeps the contract of at least `count` floats: the whole range is writable.
            let big = pool.scratch(worker: 0, slot: 0, count: 100_000)
            big.update(repeating: 1, count: 100_000)
            #expect(big[99_999] == 1)
        }
    }

    @Test("inside parallelFor each worker's scratch is its own and the same on every item")
    func scratchPerWorker() {
        let pool = ThreadPool(threadCount: 4)
        let firstPointer = Mutex<[Int: UnsafeMutablePointer<Float>]>([:])
        let clobbered = Atomic<Int>(0), moved = Atomic<Int>(0)
        for _ in 0..<20 {
            pool.parallelFor(500) { item, worker in
                let buf = pool.scratch(worker: worker, slot: 9, count: 256)
                let mine = firstPointer.withLock { map -> Bool in
                    if let p = map[worker] { return p == buf }
                    map[worker] = buf
                    return true
                }
                if !mine { moved.add(1, ordering: .relaxed) }
                for i in 0..<256 { buf[i] = Float(item) }
                var sum: Float = 0
                for i in 0..<256 { sum += buf[i] }
                if sum != Float(item) * 256 { clobbered.add(1, ordering: .relaxed) }
            }
        }
        #expect(moved.load(ordering: .relaxed) == 0, "a worker's scratch moved between items")
        #expect(clobbered.load(ordering: .relaxed) == 0, "another thread wrote into a worker's scratch")
    }

    /// Flags shared by the two callers of `callersTakeTurns`.
    final class Turns: Sendable {
        let firstInside = Atomic<Bool>(false)
        let secondInside = Atomic<Bool>(false)
        let overlapped = Atomic<Bool>(false)
    }

    @Test("a second caller's job waits for the first caller's job, also for jobs that run entirely on the calling thread",
          arguments: [(1, 5), (2, 1), (2, 64)])
    func callersTakeTurns(threads: Int, items: Int) {
        let pool = ThreadPool(threadCount: threads)
        let turns = Turns()
        let finished = DispatchSemaphore(value: 0)
        // The first caller's job waits (up to 200 ms) inside an item for the second caller's job
        // to start. If callers take turns, the second job cannot start meanwhile.
        Thread {
            let waited = Atomic<Bool>(false)
            pool.parallelFor(items) { _, _ in
                guard !waited.exchange(true, ordering: .relaxed) else { return }
                turns.firstInside.store(true, ordering: .releasing)
                let deadline = ContinuousClock.now + .milliseconds(200)
                while ContinuousClock.now < deadline {
                    if turns.secondInside.load(ordering: .acquiring) { turns.overlapped.store(true, ordering: .relaxed); break }
                }
            }
            finished.signal()
        }.start()
        Thread {
            while !turns.firstInside.load(ordering: .acquiring) {}
            pool.parallelFor(items) { _, _ in turns.secondInside.store(true, ordering: .releasing) }
            finished.signal()
        }.start()
        finished.wait()
        finished.wait()
        let overlapped = turns.overlapped.load(ordering: .relaxed)
        #expect(!overlapped, "\(threads) threads, \(items) items: a job ran while another caller's job was in progress")
    }

    @Test("a pool that is no longer referenced is freed, and its threads with it")
    func poolIsReleased() {
        weak var weakPool: ThreadPool?
        do {
            let pool = ThreadPool(threadCount: 3)
            weakPool = pool
            pool.parallelFor(16) { _, _ in }
        }
        #expect(weakPool == nil, "the pool outlives its last reference; its worker threads never exit")
    }
}

@Suite("ThreadPool refuses misuse loudly")
struct ThreadPoolMisuseTests {
    @Test("a parallel loop started from inside a job stops the program instead of deadlocking")
    func nestedLoop() async {
        await #expect(processExitsWith: .failure) {
            let pool = ThreadPool(threadCount: 2)
            pool.parallelFor(64) { _, _ in pool.parallelFor(2) { _, _ in } }
        }
    }

    @Test("worker 0's scratch outside the exclusive section stops the program")
    func scratchOutsideExclusive() async {
        await #expect(processExitsWith: .failure) {
            _ = ThreadPool(threadCount: 2).scratch(worker: 0, slot: 0, count: 4)
        }
    }

    @Test("scratch inside the exclusive section and inside jobs is fine")
    func scratchInside() {
        let pool = ThreadPool(threadCount: 2)
        pool.exclusive { pool.scratch(worker: 0, slot: 0, count: 4)[0] = 1 }
        pool.parallelFor(8) { _, worker in pool.scratch(worker: worker, slot: 1, count: 4)[0] = 2 }
    }
}
