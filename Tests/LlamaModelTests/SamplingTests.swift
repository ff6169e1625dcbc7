import TestSupport
import LlamaModel
import Testing

@Suite("Sampling and generation")
struct SamplingTests {
    let logits: [Float] = [0.1, 2.5, -1, 2.4, 0.3, -3, 1.9, 0]

    @Test("greedy picks the argmax, first index on ties")
    func greedy() {
        var s = Sampler(.greedy)
        #expect(s.sample(logits) == 1)
        var t = Sampler(.greedy)
        #expect(t.sample([1, 3, 3, 2]) == 1)
    }

    @Test("top-k 1 and a tiny top-p both reduce to the argmax")
    func degenerateFilters() {
        for seed in 0..<20 as Range<UInt64> {
            var k1 = Sampler(SamplingParameters(temperature: 1, topK: 1, topP: 1, seed: seed))
            #expect(k1.sample(logits) == 1)
            var p = Sampler(SamplingParameters(temperature: 1, topK: 0, topP: 1e-6, seed: seed))
            #expect(p.sample(logits) == 1)
        }
    }

    @Test("the same seed gives the same draws; top-k 2 only ever returns the two best")
    func seeded() {
        var a = Sampler(SamplingParameters(temperature: 1.5, topK: 0, topP: 1, seed: 42))
        var b = Sampler(SamplingParameters(temperature: 1.5, topK: 0, topP: 1, seed: 42))
        let drawsA = (0..<200).map { _ in a.sample(logits) }
        let drawsB = (0..<200).map { _ in b.sample(logits) }
        #expect(drawsA == drawsB)
        #expect(Set(drawsA).count > 3, "a hot temperature should visit several tokens")
        var k2 = Sampler(SamplingParameters(temperature: 5, topK: 2, topP: 1, seed: 7))
        let drawsK = Set((0..<200).map { _ in k2.sample(logits) })
        #expect(drawsK == [1, 3])
    }

    @Test("sampling frequencies follow the softmax")
    func frequencies() {
        var s = Sampler(SamplingParameters(temperature: 1, topK: 0, topP: 1, seed: 3))
        let l: [Float] = [0, log(3)]  // probabilities 1/4, 3/4
        let n = 20000
        let ones = (0..<n).reduce(0) { acc, _ in acc + s.sample(l) }
        #expect(abs(Double(ones) / Double(n) - 0.75) < 0.02)
    }

    @Test("nucleus sampling over a large vocabulary draws only from the exact nucleus, in proportion",
          arguments: [(Float(0.5), Float(1)), (0.9, 1), (0.97, 0.7)])
    func nucleus(topP: Float, temperature: Float) {
        var rng = SeededGenerator(seed: 77)
        let vocab = 3000
        let logits = (0..<vocab).map { _ in Float(rng.next() % 10_000) / 1_000 }
        // The reference nucleus: probabilities sorted, smallest prefix reaching top-p.
        let weights = logits.map { exp(Double($0) / Double(temperature)) }
        let total = weights.reduce(0, +)
        let order = (0..<vocab).sorted { logits[$0] > logits[$1] }
        var nucleus: Set<Int> = []
        var mass = 0.0
        for i in order {
            nucleus.insert(i)
            mass += weights[i] / total
            if mass >= Double(topP) { break }
        }
        var s = Sampler(SamplingParameters(temperature: temperature, topK: 0, topP: topP, seed: 5))
        var counts = [Int](repeating: 0, count: vocab)
        let n = 4000
        for _ in 0..<n { counts[s.sample(logits)] += 1 }
        #expect(counts.indices.filter { counts[$0] > 0 }.allSatisfy(nucleus.contains))
        // The most likely token's share matches its renormalized probability.
        let top = order[0]
        let expected = weights[top] / nucleus.reduce(0) { $0 + weights[$1] }
        #expect(abs(Double(counts[top]) / Double(n) - expected) < 4 * (expected * (1 - expected) / Double(n)).squareRoot() + 0.005)
    }

    @Test("generation honours max tokens, is reproducible by seed, and stops at stop strings")
    func generation() throws {
        let model = try TinyModel.model()
        let prompt = [1, 72, 101, 108]
        let sampling = SamplingParameters(temperature: 0.9, topK: 0, topP: 1, seed: 11)
        let a = try model.generate(GenerationRequest(prompt: prompt, maxTokens: 12, sampling: sampling, stopAtEOS: false))
        let b = try model.generate(GenerationRequest(prompt: prompt, maxTokens: 12, sampling: sampling, stopAtEOS: false))
        #expect(a.tokens.count == 12 && a.finishReason == .length)
        #expect(a.tokens == b.tokens && a.text == b.text)
        var streamed = ""
        let c = try model.generate(GenerationRequest(prompt: prompt, maxTokens: 12, sampling: sampling, stopAtEOS: false)) {
            streamed += $0
        }
        #expect(streamed == c.text)
        // Stop at the text of the third token: output is what precedes it.
        let stop = model.tokenizer.decode([a.tokens[2]])
        let d = try model.generate(GenerationRequest(prompt: prompt, maxTokens: 12, sampling: sampling, stop: [stop], stopAtEOS: false))
        #expect(d.finishReason == .stop)
        #expect(!d.text.contains(stop))
        #expect(a.text.hasPrefix(d.text))
    }
}

private func log(_ x: Float) -> Float { Float(Foundation_log(Double(x))) }
#if canImport(Glibc)
import Glibc
private func Foundation_log(_ x: Double) -> Double { Glibc.log(x) }
#endif
