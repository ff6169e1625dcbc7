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
    /// Scratch for the unnormalized probabilities, reused across draws.
    private var weights: [Float] = []

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
        let k = p.topK > 0 ? min(p.topK, logits.count) : logits.count
        if k == logits.count && p.topP >= 1 { return sampleAll(logits, temperature: p.temperature) }
        // Candidates sorted by logit: the top k, or for nucleus sampling alone a growing top
        // slice until it holds the probability mass top-p needs (the full sort is rare).
        var slice = k < logits.count ? k : min(64, logits.count)
        var candidates: [Int]
        var probs: [Double]
        var total: Double
        let all = Self.softmaxTotal(logits, temperature: p.temperature)
        while true {
            if slice * 8 < logits.count {
                candidates = Array(Array(0..<logits.count).partialSort(slice) { logits[$0] > logits[$1] })
            } else {
                candidates = Array(Array(0..<logits.count).sorted { logits[$0] > logits[$1] }.prefix(slice))
            }
            let maxLogit = Double(logits[candidates[0]])
            probs = candidates.map { exp((Double(logits[$0]) - maxLogit) / Double(p.temperature)) }
            total = probs.reduce(0, +)
            if slice >= k || slice == logits.count || total / all.total >= Double(p.topP) { break }
            slice = min(logits.count, slice * 4)
        }
        if p.topP < 1 {
            // The nucleus is measured against the mass of the top k (all tokens without top-k).
            let mass = k < logits.count ? total : all.total
            var cumulative = 0.0
            var keep = probs.count
            for (i, q) in probs.enumerated() {
                cumulative += q / mass
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

    /// Sum of exp((logit - max) / temperature) over every token, and the max.
    private static func softmaxTotal(_ logits: UnsafeBufferPointer<Float>, temperature: Float) -> (total: Double, max: Float) {
        var maxLogit = -Float.infinity
        for v in logits where v > maxLogit { maxLogit = v }
        var total = 0.0
        for v in logits { total += exp(Double(v - maxLogit) / Double(temperature)) }
        return (total, maxLogit)
    }

    /// Plain sampling from the whole distribution: the weights once (Float exp, summed in
    /// Double), then one walk; no sort.
    private mutating func sampleAll(_ logits: UnsafeBufferPointer<Float>, temperature: Float) -> Int {
        var maxLogit = -Float.infinity
        for v in logits where v > maxLogit { maxLogit = v }
        let inverse = 1 / temperature
        if weights.count < logits.count { weights = [Float](repeating: 0, count: logits.count) }
        var total = 0.0
        weights.withUnsafeMutableBufferPointer { w in
            for i in 0..<logits.count {
                let e = expf((logits[i] - maxLogit) * inverse)
                w[i] = e
                total += Double(e)
            }
        }
        var r = rng.nextUnit() * total
        return weights.withUnsafeBufferPointer { w in
            for i in 0..<logits.count {
                r -= Double(w[i])
                if r < 0 { return i }
            }
            return logits.count - 1
        }
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
