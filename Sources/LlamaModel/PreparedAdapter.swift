import Dispatch
#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import TensorKit

/// A `LoRAAdapter` laid out for the forward pass: per target, A [rank x in] as stored and
/// Bᵀ [rank x out] pre-multiplied by the adapter's scale, so a row's update is
/// `y += (x · Aᵀ) · Bᵀ` with two contiguous sweeps. Immutable, shareable between requests.
///
/// For serving the factors are held as IEEE halves (`.float16`, each value rounded to nearest:
/// about 2.4e-4 relative error per value at most), which halves what a decode step reads;
/// `.float32` keeps them exact. A target with a value beyond the half range (|v| > 65504
/// after the scale) stays Float32 whatever the precision, so no value becomes infinite.
///
/// It keeps only the prepared factors, not the `LoRAAdapter` it was made from: `byteCount` is
/// what it holds, so a cache that budgets prepared adapters by it holds no more than budgeted
/// (keeping the Float32 source as well tripled a served adapter's memory).
public final class PreparedAdapter: @unchecked Sendable {  // immutable after init; owns its buffers
    /// How the factors are held.
    public enum Precision: Sendable { case float16, float32 }

    /// The precision asked for (a target may still be Float32: see `precision(of:)`).
    public let precision: Precision
    /// Unique in this process and never reused, so it can stand for these exact values (e.g.
    /// in a cache key) without keeping the adapter alive.
    public let serial: UInt64
    /// Indexed by `layer * Projection.allCases.count + projection index`.
    let slots: [Slot?]

    /// Storage owned by the adapter (freed with it), so kernels can hold plain pointers.
    /// `a` and `scaledBT` hold Float32 values, or IEEE halves when `halves`.
    struct Slot {
        let rank: Int
        let inFeatures: Int
        let outFeatures: Int
        let halves: Bool
        let a: UnsafeMutableRawPointer
        let scaledBT: UnsafeMutableRawPointer

        var aBytes: Int { rank * inFeatures * (halves ? 2 : 4) }
        var btBytes: Int { rank * outFeatures * (halves ? 2 : 4) }
        var byteCount: Int { aBytes + btBytes }
    }

    /// - Parameter valuesChecked: the values are known to be finite (e.g. the `.graft`
    ///   decoder checked them), so validation only checks shapes.
    /// - Parameter precision: `.float16` (serving) or `.float32` (exact products).
    public init(_ adapter: LoRAAdapter, config: LlamaConfig, valuesChecked: Bool = false,
                precision: Precision = .float16) throws {
        try adapter.validate(against: config, checkValues: !valuesChecked)
        self.precision = precision
        var slots = [Slot?](repeating: nil, count: config.layers * Projection.allCases.count)
        let scale = adapter.scale
        let pairs = Array(adapter.pairs)
        // Copying and transposing ~20 MB is a good part of an adapter's load time; pairs are
        // independent, so both cores share it.
        slots.withUnsafeMutableBufferPointer { slots in
            DispatchQueue.concurrentPerform(iterations: pairs.count) { i in
                let (target, pair) = pairs[i]
                slots[Self.index(target, config)] = Self.prepare(pair, scale: scale, halves: precision == .float16)
            }
        }
        (self.slots, region) = Self.gather(slots)
        serial = Self.serials.add(1, ordering: .relaxed).newValue
    }

    /// The pages all factors live in, mapped for this adapter alone and unmapped with it.
    private let region: (base: UnsafeMutableRawPointer, bytes: Int)?

    /// Moves every slot's factors into one anonymous mapping (each array 64-byte aligned) and
    /// frees the buffers they were prepared in. A served adapter lives for as long as the cache
    /// keeps it and adapters come and go in any order: as many small heap blocks among the
    /// request's and the loader's short-lived ones, an evicted adapter left holes the allocator
    /// kept resident (the daemon grew a fifth past its adapter cache); a mapping of its own
    /// goes back to the system whole.
    private static func gather(_ temporary: [Slot?]) -> ([Slot?], (base: UnsafeMutableRawPointer, bytes: Int)?) {
        func padded(_ n: Int) -> Int { (n + 63) & ~63 }
        var total = 0
        for case let s? in temporary { total += padded(s.aBytes) + padded(s.btBytes) }
        guard total > 0 else { return (temporary, nil) }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let bytes = (total + page - 1) / page * page
        guard let mapped = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              mapped != MAP_FAILED else {
            return (temporary, nil)  // keep the heap buffers (freed one by one in deinit)
        }
        var offset = 0
        let moved = temporary.map { slot -> Slot? in
            guard let s = slot else { return nil }
            let a = mapped + offset
            offset += padded(s.aBytes)
            let bt = mapped + offset
            offset += padded(s.btBytes)
            a.copyMemory(from: s.a, byteCount: s.aBytes)
            bt.copyMemory(from: s.scaledBT, byteCount: s.btBytes)
            s.a.deallocate()
            s.scaledBT.deallocate()
            return Slot(rank: s.rank, inFeatures: s.inFeatures, outFeatures: s.outFeatures, halves: s.halves, a: a, scaledBT: bt)
        }
        return (moved, (mapped, bytes))
    }

    private static let serials = Atomic<UInt64>(0)

    private static func prepare(_ pair: LoRAPair, scale: Float, halves: Bool) -> Slot {
        let a = UnsafeMutablePointer<Float>.allocate(capacity: pair.a.count)
        a.initialize(from: pair.a, count: pair.a.count)
        let bt = UnsafeMutablePointer<Float>.allocate(capacity: pair.b.count)
        pair.b.withUnsafeBufferPointer { b in
            for j in 0..<pair.rank {  // contiguous writes; B (at most ~100 KB) stays in cache
                let row = bt + j * pair.outFeatures
                for o in 0..<pair.outFeatures { row[o] = scale * b[o * pair.rank + j] }
            }
        }
        let f32 = Slot(rank: pair.rank, inFeatures: pair.inFeatures, outFeatures: pair.outFeatures, halves: false,
                       a: UnsafeMutableRawPointer(a), scaledBT: UnsafeMutableRawPointer(bt))
        guard halves else { return f32 }
        let ha = UnsafeMutablePointer<UInt16>.allocate(capacity: pair.a.count)
        let hbt = UnsafeMutablePointer<UInt16>.allocate(capacity: pair.b.count)
        guard Kernels.narrow(a, into: ha, count: pair.a.count), Kernels.narrow(bt, into: hbt, count: pair.b.count) else {
            ha.deallocate(); hbt.deallocate()
            return f32
        }
        a.deallocate(); bt.deallocate()
        return Slot(rank: pair.rank, inFeatures: pair.inFeatures, outFeatures: pair.outFeatures, halves: true,
                    a: UnsafeMutableRawPointer(ha), scaledBT: UnsafeMutableRawPointer(hbt))
    }

    deinit {
        if let region {
            munmap(region.base, region.bytes)
            return
        }
        for case let s? in slots {
            s.a.deallocate()
            s.scaledBT.deallocate()
        }
    }

    /// How `target`'s factors are held (nil when the adapter does not change it).
    public func precision(of target: LoRATarget, config: LlamaConfig) -> Precision? {
        slots[Self.index(target, config)].map { $0.halves ? .float16 : .float32 }
    }

    static func index(_ t: LoRATarget, _ c: LlamaConfig) -> Int {
        t.layer * Projection.allCases.count + Projection.allCases.firstIndex(of: t.projection)!
    }

    /// Bytes held.
    public var byteCount: Int { slots.reduce(0) { $0 + ($1?.byteCount ?? 0) } }

    /// Whether `other` holds the same targets with bit-identical factors in the same precision.
    public func hasSameFactors(as other: PreparedAdapter) -> Bool {
        guard slots.count == other.slots.count else { return false }
        for (x, y) in zip(slots, other.slots) {
            switch (x, y) {
            case (nil, nil): continue
            case let (x?, y?):
                guard x.rank == y.rank, x.inFeatures == y.inFeatures, x.outFeatures == y.outFeatures, x.halves == y.halves,
                      memcmp(x.a, y.a, x.aBytes) == 0, memcmp(x.scaledBT, y.scaledBT, x.btBytes) == 0 else { return false }
            default: return false
            }
        }
        return true
    }
}

/// The adapters applied to a sequence: a weighted mix (one entry with weight 1 for a plain
/// adapter; empty for the base model).
public struct AdapterMix: Sendable {
    public var entries: [(adapter: PreparedAdapter, weight: Float)]

    public init(_ entries: [(adapter: PreparedAdapter, weight: Float)] = []) { self.entries = entries }
    public init(_ adapter: PreparedAdapter) { entries = [(adapter, 1)] }

    public static let none = AdapterMix()
    public var isEmpty: Bool { entries.isEmpty }
}

extension AdapterMix {
    /// The low-rank terms of `slot` for rows `rows` of the batch, whose input starts at `x`.
    /// u = weight · x · Aᵀ goes into `arena`, computed later for all of a layer's terms in one
    /// parallel pass (`LowRankInput.computeAll`).
    func updates(slot: Int, x: UnsafePointer<Float>, ldx: Int, rows: Range<Int>,
                 arena: inout UnsafeMutablePointer<Float>, pending: inout [LowRankInput]) -> [Linear.LowRankUpdate] {
        var out: [Linear.LowRankUpdate] = []
        let n = rows.count
        for (prepared, weight) in entries {
            guard let s = prepared.slots[slot] else { continue }
            let u = arena
            arena += n * s.rank
            pending.append(LowRankInput(x: x, ldx: ldx, rows: n, a: s.a, halves: s.halves, rank: s.rank,
                                        width: s.inFeatures, weight: weight, u: u))
            out.append(s.halves
                ? Linear.LowRankUpdate(rows: rows, rank: s.rank, u: u, halves: s.scaledBT.assumingMemoryBound(to: UInt16.self))
                : Linear.LowRankUpdate(rows: rows, rank: s.rank, u: u, bt: s.scaledBT.assumingMemoryBound(to: Float.self)))
        }
        return out
    }

    /// Total rank over the entries: floats of u per row and target.
    var totalRank: Int { entries.reduce(0) { $0 + ($1.adapter.slots.compactMap { $0?.rank }.max() ?? 0) } }

}

/// One deferred u = weight · x · Aᵀ for a few rows.
struct LowRankInput {
    let x: UnsafePointer<Float>
    let ldx: Int
    let rows: Int
    /// A [rank x width]: Float32 values, or IEEE halves when `halves`.
    let a: UnsafeRawPointer
    let halves: Bool
    let rank: Int
    let width: Int
    let weight: Float
    let u: UnsafeMutablePointer<Float>

    /// Rows per item of a many-row term (one small GEMM each).
    static let blockRows = 32

    /// Multiply-adds below which the caller computes every u itself: a decode step's u for one
    /// group (three rank-16 targets of a 576-wide input are 28K of them) takes about as long as
    /// handing work to the pool and waiting for it, and far less when the cores are busy.
    static let serialWork = 1 << 17

    /// Computes every pending u: on the calling thread when the work is small (decode), else in
    /// one parallel pass, a block of rows per item for terms with many rows (prefill), a row and
    /// four ranks per item for a few.
    static func computeAll(_ jobs: [LowRankInput], pool: ThreadPool) {
        if jobs.isEmpty { return }
        if jobs.allSatisfy({ $0.rows < 8 }) && jobs.reduce(0, { $0 + $1.rows * $1.rank * $1.width }) <= serialWork {
            for j in jobs { j.computeRows() }
            return
        }
        var first: [Int] = []
        var items = 0
        for j in jobs {
            first.append(items)
            items += j.rows >= 8 ? (j.rows + blockRows - 1) / blockRows : j.rows * ((j.rank + 3) / 4)
        }
        pool.parallelFor(items) { item, worker in
            var ji = 0
            while ji + 1 < jobs.count && first[ji + 1] <= item { ji += 1 }
            let j = jobs[ji], local = item - first[ji]
            if j.rows >= 8 {
                let r0 = local * blockRows, n = min(blockRows, j.rows - r0)
                let scratch = pool.scratch(worker: worker, slot: 11, count: Gemm.multiplyScratchSize(m: blockRows, k: j.width))
                var a = j.a.assumingMemoryBound(to: Float.self)
                if j.halves {  // widened per block: a GEMM of 32 rows costs far more than the copy
                    let wide = pool.scratch(worker: worker, slot: 12, count: j.rank * j.width)
                    Kernels.widen(halves: j.a.assumingMemoryBound(to: UInt16.self), into: wide, count: j.rank * j.width)
                    a = UnsafePointer(wide)
                }
                Gemm.multiply(m: n, n: j.rank, k: j.width, a: j.x + r0 * j.ldx, lda: j.ldx, b: a, ldb: j.width,
                              transposeB: true, c: j.u + r0 * j.rank, ldc: j.rank, accumulate: false, scratch: scratch)
                if j.weight != 1 { for i in r0 * j.rank..<(r0 + n) * j.rank { j.u[i] *= j.weight } }
                return
            }
            let chunks = (j.rank + 3) / 4
            let i = local / chunks, r0 = (local % chunks) * 4
            j.compute(row: i, ranks: r0..<min(j.rank, r0 + 4))
        }
    }

    /// u of every row, rank by rank (a few rows).
    func computeRows() {
        for i in 0..<rows { compute(row: i, ranks: 0..<rank) }
    }

    /// u[i][r] = weight · x_i · A_r for r in `ranks`.
    @inline(__always)
    func compute(row i: Int, ranks: Range<Int>) {
        let xi = x + i * ldx
        if halves {
            let a = self.a.assumingMemoryBound(to: UInt16.self)
            for r in ranks { u[i * rank + r] = weight * Kernels.dot(xi, halves: a + r * width, width) }
        } else {
            let a = self.a.assumingMemoryBound(to: Float.self)
            for r in ranks { u[i * rank + r] = weight * Kernels.dot(xi, a + r * width, width) }
        }
    }
}
