import TensorKit

/// A `LoRAAdapter` laid out for the forward pass: per target, A [rank x in] as stored and
/// Bᵀ [rank x out] pre-multiplied by the adapter's scale, so a row's update is
/// `y += (x · Aᵀ) · Bᵀ` with two contiguous sweeps. Immutable, shareable between requests.
public final class PreparedAdapter: @unchecked Sendable {
    public let adapter: LoRAAdapter
    /// Indexed by `layer * Projection.allCases.count + projection index`.
    let slots: [Slot?]

    struct Slot {
        let rank: Int
        let inFeatures: Int
        let outFeatures: Int
        let a: [Float]
        let scaledBT: [Float]
    }

    public init(_ adapter: LoRAAdapter, config: LlamaConfig) throws {
        try adapter.validate(against: config)
        self.adapter = adapter
        var slots = [Slot?](repeating: nil, count: config.layers * Projection.allCases.count)
        let scale = adapter.scale
        for (target, pair) in adapter.pairs {
            var bt = [Float](repeating: 0, count: pair.rank * pair.outFeatures)
            for o in 0..<pair.outFeatures {
                for j in 0..<pair.rank { bt[j * pair.outFeatures + o] = scale * pair.b[o * pair.rank + j] }
            }
            slots[Self.index(target, config)] = Slot(rank: pair.rank, inFeatures: pair.inFeatures,
                                                     outFeatures: pair.outFeatures, a: pair.a, scaledBT: bt)
        }
        self.slots = slots
    }

    static func index(_ t: LoRATarget, _ c: LlamaConfig) -> Int {
        t.layer * Projection.allCases.count + Projection.allCases.firstIndex(of: t.projection)!
    }

    /// Bytes held.
    public var byteCount: Int { slots.reduce(0) { $0 + (($1?.a.count ?? 0) + ($1?.scaledBT.count ?? 0)) * 4 } }
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
    /// y[n x out] += Σ weight · (x[n x in] · Aᵀ) · (scale·B)ᵀ for the entries that target `slot`.
    func apply(slot: Int, x: UnsafePointer<Float>, ldx: Int, rows n: Int,
               y: UnsafeMutablePointer<Float>, ldy: Int, scratch: UnsafeMutablePointer<Float>) {
        for (prepared, weight) in entries {
            guard let s = prepared.slots[slot] else { continue }
            let u = scratch  // n x rank
            let gemmScratch = scratch + n * s.rank
            s.a.withUnsafeBufferPointer { a in
                if n >= 8 {
                    Gemm.multiply(m: n, n: s.rank, k: s.inFeatures, a: x, lda: ldx, b: a.baseAddress!, ldb: s.inFeatures,
                                  transposeB: true, c: u, ldc: s.rank, accumulate: false, scratch: gemmScratch)
                } else {
                    for i in 0..<n {
                        for j in 0..<s.rank { u[i * s.rank + j] = Kernels.dot(x + i * ldx, a.baseAddress! + j * s.inFeatures, s.inFeatures) }
                    }
                }
            }
            if weight != 1 { for i in 0..<n * s.rank { u[i] *= weight } }
            s.scaledBT.withUnsafeBufferPointer { bt in
                if n >= 8 {
                    Gemm.multiply(m: n, n: s.outFeatures, k: s.rank, a: u, lda: s.rank, b: bt.baseAddress!, ldb: s.outFeatures,
                                  transposeB: false, c: y, ldc: ldy, accumulate: true, scratch: gemmScratch)
                } else {
                    for i in 0..<n {
                        for j in 0..<s.rank {
                            Kernels.axpy(u[i * s.rank + j], bt.baseAddress! + j * s.outFeatures, y + i * ldy, s.outFeatures)
                        }
                    }
                }
            }
        }
    }

    /// Scratch floats `apply` needs for `n` rows.
    static func scratchSize(rows n: Int, config c: LlamaConfig, maxRank: Int) -> Int {
        let widest = max(c.dim, c.ffnDim)
        return n * maxRank + Gemm.multiplyScratchSize(m: n, k: max(widest, maxRank)) + 64
    }

    var maxRank: Int { entries.map { $0.adapter.slots.compactMap { $0?.rank }.max() ?? 0 }.max() ?? 0 }
}
