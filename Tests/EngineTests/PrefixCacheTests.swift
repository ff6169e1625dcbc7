import Engine
import LlamaModel
import TestSupport
import Testing
import TensorKit

@Suite("Prefix cache: prompts that start alike skip prefilling the shared part", .serialized)
struct PrefixCacheTests {
    let model = EngineTests.model

    static func prompt(_ n: Int, seed: Int = 0) -> [Int] { (0..<n).map { ($0 * 13 + seed * 5) % 90 + 3 } }

    /// A cache holding `tokens`, prefilled in one call.
    func prefilled(_ tokens: [Int], adapters: AdapterMix = .none) throws -> KVCache {
        let cache = model.makeCache()
        _ = try model.forward(tokens, cache: cache, logits: .none, adapters: adapters)
        return cache
    }

    @Test("a copied prefix continues exactly like the cache it was copied from")
    func copiedPrefixIsExact() throws {
        let tokens = Self.prompt(40)
        let source = try prefilled(Array(tokens[..<25]))
        let snapshot = KVCache(copying: 25, of: source)
        #expect(snapshot.count == 25)
        #expect(snapshot.byteCount == 2 * model.config.layers * 25 * model.config.kvDim * 4, "exactly 25 positions held")
        let target = model.makeCache()
        try target.load(25, of: snapshot)
        let rest = Array(tokens[25...])
        let expected = try model.forward(rest, cache: source, logits: .all)
        let got = try model.forward(rest, cache: target, logits: .all)
        #expect(got == expected, "bit-identical logits")
        // A shorter prefix of a longer cache, loaded over earlier contents.
        try target.load(10, of: source)
        #expect(target.count == 10)
        let fresh = try prefilled(Array(tokens[..<10]))
        #expect(try model.forward([7, 8], cache: target, logits: .all) == model.forward([7, 8], cache: fresh, logits: .all))
    }

    @Test("fill finds the longest shared start under the same adapter mix, and always leaves the last token")
    func fillMatching() throws {
        let cache = PrefixCache(capacity: 64 << 20)
        let p = Self.prompt(30)
        cache.insert(prompt: p, from: try prefilled(p), mix: .none)
        let target = model.makeCache()
        #expect(cache.fill(target, prompt: p, mix: .none) == 29, "the same prompt: all but its last token")
        #expect(target.count == 29)
        #expect(cache.fill(model.makeCache(), prompt: Array(p[..<20]) + [99, 98, 97], mix: .none) == 20)
        #expect(cache.fill(model.makeCache(), prompt: p + [5, 6], mix: .none) == 30)
        #expect(cache.fill(model.makeCache(), prompt: Array(p[..<5]) + Self.prompt(20, seed: 1), mix: .none) == 0,
                "fewer shared tokens than the minimum")
        let adapter = try EngineTests.adapter(seed: 4)
        #expect(cache.fill(model.makeCache(), prompt: p, mix: AdapterMix(adapter)) == 0, "another adapter mix")
        #expect(cache.fill(model.makeCache(), prompt: p, mix: AdapterMix([(adapter, 0.5)])) == 0)
        cache.insert(prompt: p, from: try prefilled(p, adapters: AdapterMix([(adapter, 0.5)])), mix: AdapterMix([(adapter, 0.5)]))
        #expect(cache.fill(model.makeCache(), prompt: p, mix: AdapterMix([(adapter, 0.5)])) == 29)
        #expect(cache.fill(model.makeCache(), prompt: p, mix: AdapterMix(adapter)) == 0, "same adapter, other weight")
    }

    @Test("a longer prompt replaces the entry it extends; the least recently used entry goes first when full")
    func insertAndEvict() throws {
        let bytesPerToken = 2 * model.config.layers * model.config.kvDim * 4
        let cache = PrefixCache(capacity: 50 * bytesPerToken)
        let long = Self.prompt(30)
        cache.insert(prompt: Array(long[..<12]), from: try prefilled(long), mix: .none)
        cache.insert(prompt: long, from: try prefilled(long), mix: .none)
        #expect(cache.prompts == [long], "the 12-token entry is part of the 30-token one")
        cache.insert(prompt: Array(long[..<20]), from: try prefilled(long), mix: .none)
        #expect(cache.prompts == [long], "already held")
        #expect(cache.bytes == 30 * bytesPerToken)
        let other = Self.prompt(15, seed: 2)
        cache.insert(prompt: other, from: try prefilled(other), mix: .none)
        #expect(cache.prompts == [long, other])
        _ = cache.fill(model.makeCache(), prompt: long, mix: .none)  // `long` is now the more recent
        let third = Self.prompt(10, seed: 3)
        cache.insert(prompt: third, from: try prefilled(third), mix: .none)
        #expect(cache.prompts == [long, third], "the least recently used entry made room")
        #expect(cache.bytes == 40 * bytesPerToken)
        cache.insert(prompt: Self.prompt(60, seed: 4), from: try prefilled(Self.prompt(60, seed: 4)), mix: .none)
        #expect(cache.prompts == [long, third], "a prompt larger than the whole cache is not kept")
        let short = Self.prompt(5, seed: 5)
        cache.insert(prompt: short, from: try prefilled(short), mix: .none)
        #expect(cache.prompts.count == 2, "prompts under the minimum are not kept")
        let off = PrefixCache(capacity: 0)
        off.insert(prompt: long, from: try prefilled(long), mix: .none)
        #expect(off.prompts.isEmpty && off.fill(model.makeCache(), prompt: long, mix: .none) == 0)
    }

    @Test("the engine reuses a prompt's keys and values for a later request and reports them; the output is unchanged")
    func engineReuse() async throws {
        let engine = InferenceEngine(model: model)
        defer { engine.shutdown() }
        let adapter = try EngineTests.adapter(seed: 5)
        let p = Self.prompt(33)
        let job = InferenceJob(prompt: p, maxTokens: 10, sampling: .greedy, adapters: AdapterMix(adapter))
        let expected = try EngineTests.solo(job)
        let (first, c1) = try await collect(try engine.submit(job))
        #expect(c1.cachedPromptTokens == 0)
        let (second, c2) = try await collect(try engine.submit(job))
        #expect(c2.cachedPromptTokens == 32)
        #expect(first == expected.text && second == expected.text)
        var branch = job
        branch.prompt = Array(p[..<24]) + Self.prompt(9, seed: 7)
        let (text, c3) = try await collect(try engine.submit(branch))
        #expect(c3.cachedPromptTokens == 24)
        #expect(text == (try EngineTests.solo(branch)).text)
        // The next turn of a conversation repeats the prompt and the answer before its new
        // message. The answer's tokens were fed back, all but the last when it ended on length
        // (after an end-of-sequence token, which is not part of the answer, all of them).
        var next = job
        next.prompt = p + expected.tokens + Self.prompt(6, seed: 8)
        let (nextText, c6) = try await collect(try engine.submit(next))
        #expect(c6.cachedPromptTokens == p.count + expected.tokens.count - (c2.reason == .length ? 1 : 0))
        #expect(nextText == (try EngineTests.solo(next)).text)
        var base = job
        base.adapters = .none
        let (_, c4) = try await collect(try engine.submit(base))
        #expect(c4.cachedPromptTokens == 0, "without the adapter the keys and values differ")
        #expect(engine.stats.promptTokensCached == 56 + c6.cachedPromptTokens)
        #expect(engine.stats.prefixCacheBytes > 0)

        var limits = EngineLimits()
        limits.prefixCacheBytes = 0
        let off = InferenceEngine(model: model, limits: limits)
        defer { off.shutdown() }
        _ = try await collect(try off.submit(job))
        let (again, c5) = try await collect(try off.submit(job))
        #expect(c5.cachedPromptTokens == 0 && again == expected.text)
    }
}
