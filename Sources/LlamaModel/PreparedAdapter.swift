import TensorKit

/// A `LoRAAdapter` laid out for the forward pass: per target, A [rank x in] as stored and
/// Bᵀ [rank x out] pre-multiplied by the adapter's scale, so a row's update is
/// `y += (x · Aᵀ) · Bᵀ` with two contiguous sweeps. Immutable, shareable between requests.
public final class PreparedAdapter: @unchecked Sendable {
    public let adapter: LoRAAdapter
    /// Indexed by `layer * Projection.allCases.count + projection index`.
    let slots: [Slot?]

    /// Storage owned by the adapter (freed with it), so kernels can hold plain pointers.
    struct Slot {
        let rank: Int
        let inFeatures: Int
        let outFeatures: Int
        let a: UnsafeMutablePointer<Float>
        let scaledBT: UnsafeMutablePointer<Float>
    }

    public init(_ adapter: LoRAAdapter, config: LlamaConfig) throws {
        try adapter.validate(against: config)
        self.adapter = adapter
        var slots = [Slot?](repeating: nil, count: config.layers * Projection.allCases.count)
        let scale = adapter.scale
        for (target, pair) in adapter.pairs {
            let a = UnsafeMutablePointer<Float>.allocate(capacity: pair.a.count)
            a.initialize(from: pair.a, count: pair.a.count)
            let bt = UnsafeMutablePointer<Float>.allocate(capacity: pair.b.count)
            for o in 0..<pair.outFeatures {
                for j in 0..<pair.rank { bt[j * pair.outFeatures + o] = scale * pair.b[o * pair.rank + j] }
            }
            slots[Self.index(target, config)] = Slot(rank: pair.rank, inFeatures: pair.inFeatures,
                                                     outFeatures: pair.outFeatures, a: a, scaledBT: bt)
        }
        self.slots = slots
    }

    deinit {
        for case let s? in slots {
            s.a.deallocate()
            s.scaledBT.deallocate()
        }
    }

    static func index(_ t: LoRATarget, _ c: LlamaConfig) -> Int {
        t.layer * Projection.allCases.count + Projection.allCases.firstIndex(of: t.projection)!
    }

    /// Bytes held.
    public var byteCount: Int { slots.reduce(0) { $0 + ($1.map { $0.rank * ($0.inFeatures + $0.outFeatures) * 4 } ?? 0) } }
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
    /// The low-rank terms of `slot` for rows `rows` of the batch, whose input starts at `x`:
    /// u = weight · x · Aᵀ is computed into `arena`, the rest is left to the projection.
    func updates(slot: Int, x: UnsafePointer<Float>, ldx: Int, rows: Range<Int>,
                 arena: inout UnsafeMutablePointer<Float>, gemmScratch: UnsafeMutablePointer<Float>) -> [Linear.LowRankUpdate] {
        var out: [Linear.LowRankUpdate] = []
        let n = rows.count
        for (prepared, weight) in entries {
            guard let s = prepared.slots[slot] else { continue }
            let u = arena
            arena += n * s.rank
            if n >= 8 {
                Gemm.multiply(m: n, n: s.rank, k: s.inFeatures, a: x, lda: ldx, b: s.a, ldb: s.inFeatures,
                              transposeB: true, c: u, ldc: s.rank, accumulate: false, scratch: gemmScratch)
                if weight != 1 { for i in 0..<n * s.rank { u[i] *= weight } }
            } else {
                for i in 0..<n {
                    for j in 0..<s.rank { u[i * s.rank + j] = weight * Kernels.dot(x + i * ldx, s.a + j * s.inFeatures, s.inFeatures) }
                }
            }
            out.append(Linear.LowRankUpdate(rows: rows, rank: s.rank, u: u, bt: s.scaledBT))
        }
        return out
    }

    /// Total rank over the entries: floats of u per row and target.
    var totalRank: Int { entries.reduce(0) { $0 + ($1.adapter.slots.compactMap { $0?.rank }.max() ?? 0) } }

    var maxRank: Int { entries.map { $0.adapter.slots.compactMap { $0?.rank }.max() ?? 0 }.max() ?? 0 }
}
