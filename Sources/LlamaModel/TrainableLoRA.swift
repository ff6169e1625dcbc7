#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The shape of a LoRA adapter being trained: rank, scaling, targets and dropout.
public struct LoRAShape: Equatable, Sendable, Codable {
    public var rank: Int
    public var alpha: Float
    public var useRSLoRA: Bool
    public var targets: [Projection]
    /// Dropout on the LoRA branch's input only (PEFT's `lora_dropout`).
    public var dropout: Float

    public init(rank: Int, alpha: Float, useRSLoRA: Bool = false, targets: [Projection] = Projection.allCases,
                dropout: Float = 0) {
        self.rank = rank; self.alpha = alpha; self.useRSLoRA = useRSLoRA; self.targets = targets; self.dropout = dropout
    }

    public var scale: Float { useRSLoRA ? alpha / Float(rank).squareRoot() : alpha / Float(rank) }
}

extension Projection: Codable {}

/// LoRA factors being trained, with their gradients: one flat buffer each, so the optimizer
/// sweeps them in one pass. For every targeted projection, in model order, A [rank x in] then
/// B [out x rank] (PEFT's layouts; B's rows in the base model's GGUF order).
public final class TrainableLoRA: @unchecked Sendable {  // owned by one trainer; its buffers are touched only inside the model's exclusive pool section
    public let shape: LoRAShape
    public let config: LlamaConfig
    /// Number of trainable floats.
    public let count: Int
    public let values: UnsafeMutablePointer<Float>
    public let gradients: UnsafeMutablePointer<Float>
    /// (Σ rank·out) floats: scale · Bᵀ per slot, refreshed by `prepare()` before a forward.
    let scaledBT: UnsafeMutablePointer<Float>
    /// (Σ in·rank) floats: Aᵀ per slot, refreshed by `prepare()`.
    let transposedA: UnsafeMutablePointer<Float>
    let slots: [Slot?]

    struct Slot {
        let target: LoRATarget
        let index: Int  // position among the trained targets
        let rank, inFeatures, outFeatures: Int
        let a, b, btOffset, atOffset: Int  // offsets into values (and gradients), scaledBT, transposedA
    }

    /// The parameter tensors (each A and each B), in model order: name, offset and count.
    public var tensors: [(name: String, offset: Int, count: Int)] {
        slots.compactMap { $0 }.flatMap { s in
            [("\(s.target).lora_A", s.a, s.rank * s.inFeatures), ("\(s.target).lora_B", s.b, s.outFeatures * s.rank)]
        }
    }

    private init(shape: LoRAShape, config: LlamaConfig, ranks: [LoRATarget: Int]) {
        self.shape = shape
        self.config = config
        var slots = [Slot?](repeating: nil, count: config.layers * Projection.allCases.count)
        var offset = 0, bt = 0, at = 0, index = 0
        for (target, rank) in ranks.sorted(by: { $0.key < $1.key }) {
            let (outF, inF) = config.shape(of: target.projection)
            slots[PreparedAdapter.index(target, config)] = Slot(
                target: target, index: index, rank: rank, inFeatures: inF, outFeatures: outF,
                a: offset, b: offset + rank * inF, btOffset: bt, atOffset: at)
            offset += rank * (inF + outF)
            bt += rank * outF
            at += rank * inF
            index += 1
        }
        self.slots = slots
        count = offset
        values = .allocate(capacity: max(offset, 1))
        values.initialize(repeating: 0, count: max(offset, 1))
        gradients = .allocate(capacity: max(offset, 1))
        gradients.initialize(repeating: 0, count: max(offset, 1))
        scaledBT = .allocate(capacity: max(bt, 1))
        transposedA = .allocate(capacity: max(at, 1))
    }

    deinit {
        values.deallocate()
        gradients.deallocate()
        scaledBT.deallocate()
        transposedA.deallocate()
    }

    /// PEFT's initialization: A uniform in ±1/sqrt(in) (Kaiming-uniform with a = √5), B zero,
    /// drawn from `seed`.
    public convenience init(shape: LoRAShape, config: LlamaConfig, seed: UInt64) {
        var ranks: [LoRATarget: Int] = [:]
        for l in 0..<config.layers { for p in shape.targets { ranks[LoRATarget(layer: l, projection: p)] = shape.rank } }
        self.init(shape: shape, config: config, ranks: ranks)
        var rng = SeededGenerator(seed: seed)
        for case let s? in slots {
            let bound = 1 / Float(s.inFeatures).squareRoot()
            for i in 0..<s.rank * s.inFeatures { values[s.a + i] = (2 * rng.nextUnitFloat() - 1) * bound }
        }
    }

    /// Continues training an existing adapter (its ranks, scale and values).
    public convenience init(adapter: LoRAAdapter, config: LlamaConfig, dropout: Float = 0) throws {
        try adapter.validate(against: config)
        let shape = LoRAShape(rank: adapter.rank, alpha: adapter.alpha, useRSLoRA: adapter.useRSLoRA,
                              targets: adapter.projections, dropout: dropout)
        self.init(shape: shape, config: config, ranks: adapter.pairs.mapValues(\.rank))
        for case let s? in slots {
            let pair = adapter.pairs[s.target]!
            pair.a.withUnsafeBufferPointer { (values + s.a).update(from: $0.baseAddress!, count: $0.count) }
            pair.b.withUnsafeBufferPointer { (values + s.b).update(from: $0.baseAddress!, count: $0.count) }
        }
    }

    /// The current values as an adapter.
    public func adapter(metadata: [String: String] = [:]) -> LoRAAdapter {
        var pairs: [LoRATarget: LoRAPair] = [:]
        for case let s? in slots {
            pairs[s.target] = LoRAPair(rank: s.rank, inFeatures: s.inFeatures, outFeatures: s.outFeatures,
                                       a: Array(UnsafeBufferPointer(start: values + s.a, count: s.rank * s.inFeatures)),
                                       b: Array(UnsafeBufferPointer(start: values + s.b, count: s.outFeatures * s.rank)))
        }
        return LoRAAdapter(rank: shape.rank, alpha: shape.alpha, useRSLoRA: shape.useRSLoRA, pairs: pairs, metadata: metadata)
    }

    public func zeroGradients() { gradients.update(repeating: 0, count: count) }

    /// The gradient of one slot's A or B, for tests: PEFT layout.
    public func gradient(_ target: LoRATarget, b: Bool) -> [Float]? {
        guard let s = slots[PreparedAdapter.index(target, config)] else { return nil }
        return Array(UnsafeBufferPointer(start: gradients + (b ? s.b : s.a),
                                         count: b ? s.outFeatures * s.rank : s.rank * s.inFeatures))
    }

    /// Refreshes scale · Bᵀ and Aᵀ from the current factors.
    func prepare() {
        let scale = shape.scale
        for case let s? in slots {
            let bt = scaledBT + s.btOffset, b = values + s.b
            for o in 0..<s.outFeatures { for j in 0..<s.rank { bt[j * s.outFeatures + o] = scale * b[o * s.rank + j] } }
            let at = transposedA + s.atOffset, a = values + s.a
            for j in 0..<s.rank { for i in 0..<s.inFeatures { at[i * s.rank + j] = a[j * s.inFeatures + i] } }
        }
    }

    var maxRank: Int { slots.compactMap { $0?.rank }.max() ?? 0 }
}

/// SplitMix64's finalizer: a well-mixed 64-bit hash, for deriving keys (data order, dropout
/// masks) from a seed and counters.
public enum SeedMix {
    @inline(__always)
    public static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension SeededGenerator {
    /// Uniform in [0, 1) with 24 random bits.
    public mutating func nextUnitFloat() -> Float { Float(next() >> 40) * (1.0 / 16_777_216) }
}
