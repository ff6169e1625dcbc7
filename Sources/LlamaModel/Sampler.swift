#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Sampling settings; the defaults follow common llama.cpp defaults.
public struct SamplingParameters: Equatable, Sendable {
    /// 0 means greedy (argmax).
    public var temperature: Float = 0.8
    /// Keep only the k most likely tokens; 0 disables.
    public var topK: Int = 40
    /// Keep the smallest set of tokens whose probability reaches p; 1 disables.
    public var topP: Float = 0.95
    public var seed: UInt64 = 0

    public init(temperature: Float = 0.8, topK: Int = 40, topP: Float = 0.95, seed: UInt64 = 0) {
        self.temperature = temperature; self.topK = topK; self.topP = topP; self.seed = seed
    }

    public static let greedy = SamplingParameters(temperature: 0, topK: 0, topP: 1)
}

/// xoshiro256** seeded through SplitMix64: fast, and the same on every platform, so a seed
/// reproduces a generation exactly.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var z = seed
        func splitmix() -> UInt64 {
            z &+= 0x9E37_79B9_7F4A_7C15
            var r = z
            r = (r ^ (r >> 30)) &* 0xBF58_476D_1CE4_E5B9
            r = (r ^ (r >> 27)) &* 0x94D0_49BB_1331_11EB
            return r ^ (r >> 31)
        }
        s = (splitmix(), splitmix(), splitmix(), splitmix())
    }

    public mutating func next() -> UInt64 {
        let result = rotl(s.1 &* 5, 7) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3
        s.2 ^= t
        s.3 = rotl(s.3, 45)
        return result
    }

    private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// Uniform in [0, 1).
    mutating func nextUnit() -> Double { Double(next() >> 11) * 0x1.0p-53 }
}

public struct Sampler: Sendable {
    public let parameters: SamplingParameters
    private var rng: SeededGenerator

    public init(_ parameters: SamplingParameters) {
        self.parameters = parameters
        rng = SeededGenerator(seed: parameters.seed)
    }

    /// Index of the largest logit (the first one on ties).
    public static func argmax(_ logits: UnsafeBufferPointer<Float>) -> Int {
        var best = 0
        var bestValue = -Float.infinity
        for (i, v) in logits.enumerated() where v > bestValue { best = i; bestValue = v }
        return best
    }

    public mutating func sample(_ logits: [Float]) -> Int {
        logits.withUnsafeBufferPointer { sample($0) }
    }

    public mutating func sample(_ logits: UnsafeBufferPointer<Float>) -> Int {
        let p = parameters
        if p.temperature <= 0 || p.topK == 1 { return Self.argmax(logits) }
        // Candidates sorted by logit, cut to top-k.
        var candidates = Array(0..<logits.count)
        let k = p.topK > 0 ? min(p.topK, logits.count) : logits.count
        if k < logits.count {
            candidates = Array(candidates.partialSort(k) { logits[$0] > logits[$1] })
        } else {
            candidates.sort { logits[$0] > logits[$1] }
        }
        let maxLogit = Double(logits[candidates[0]])
        var probs = candidates.map { exp((Double(logits[$0]) - maxLogit) / Double(p.temperature)) }
        var total = probs.reduce(0, +)
        if p.topP < 1 {
            var cumulative = 0.0
            var keep = probs.count
            for (i, q) in probs.enumerated() {
                cumulative += q / total
                if cumulative >= Double(p.topP) { keep = i + 1; break }
            }
            probs.removeLast(probs.count - keep)
            candidates.removeLast(candidates.count - keep)
            total = probs.reduce(0, +)
        }
        var r = rng.nextUnit() * total
        for (i, q) in probs.enumerated() {
            r -= q
            if r < 0 { return candidates[i] }
        }
        return candidates[candidates.count - 1]
    }
}

extension Array where Element == Int {
    /// The `k` first elements under `areInIncreasingOrder`, sorted (a heap would be faster
    /// for huge k; k is small here).
    fileprivate func partialSort(_ k: Int, by areInIncreasingOrder: (Int, Int) -> Bool) -> ArraySlice<Int> {
        var top: [Int] = []
        top.reserveCapacity(k + 1)
        for e in self {
            if top.count == k, let last = top.last, !areInIncreasingOrder(e, last) { continue }
            var lo = 0, hi = top.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if areInIncreasingOrder(e, top[mid]) { hi = mid } else { lo = mid + 1 }
            }
            top.insert(e, at: lo)
            if top.count > k { top.removeLast() }
        }
        return top[...]
    }
}
