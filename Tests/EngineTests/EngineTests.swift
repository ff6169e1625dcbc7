import Engine
import Foundation
import LlamaModel
import TestSupport
import Testing
import TensorKit

/// Collects a job's events: the text, and the final completion.
func collect(_ stream: AsyncThrowingStream<EngineEvent, any Error>) async throws -> (String, Completion) {
    var text = ""
    for try await event in stream {
        switch event {
        case .text(let piece, _): text += piece
        case .finished(let c): return (text, c)
        }
    }
    throw EngineError.failed("no finished event")
}

@Suite("Inference engine: continuous batching", .serialized)
struct EngineTests {
    /// On a pool of its own: the shared pool's lock is not fair, and a long training test
    /// holding it in a loop could keep this model's requests waiting past their deadlines.
    static let model = try! TinyModel.model(TinyModel.Spec(context: 256), pool: ThreadPool(threadCount: 2))

    static func adapter(seed: UInt64) throws -> PreparedAdapter {
        try PreparedAdapter(randomAdapter(model.config, rank: 4, seed: seed), config: model.config)
    }

    /// The same request generated alone, the way `graft generate` does.
    static func solo(_ job: InferenceJob) throws -> GenerationResult {
        try model.generate(GenerationRequest(prompt: job.prompt, maxTokens: job.maxTokens, sampling: job.sampling,
                                             stop: job.stop, adapters: job.adapters))
    }

    @Test("requests batched together, each with its own adapter mix, give exactly what each gives alone")
    func batchedEqualsSolo() async throws {
        let engine = InferenceEngine(model: Self.model)
        defer { engine.shutdown() }
        let a = try Self.adapter(seed: 1), b = try Self.adapter(seed: 2)
        let mixes: [AdapterMix] = [.none, AdapterMix(a), AdapterMix([(a, 0.5), (b, 0.7)]), AdapterMix(b), .none]
        let jobs = mixes.enumerated().map { i, mix in
            InferenceJob(prompt: Array(1...(3 + 4 * i)).map { ($0 * 7 + i) % 60 + 3 }, maxTokens: 12 + i,
                         sampling: i % 2 == 0 ? .greedy : SamplingParameters(temperature: 0.9, topK: 0, topP: 0.9, seed: UInt64(i)),
                         adapters: mix)
        }
        let results = try await withThrowingTaskGroup(of: (Int, String, Completion).self) { group in
            for (i, job) in jobs.enumerated() {
                let stream = try engine.submit(job)
                group.addTask { let (t, c) = try await collect(stream); return (i, t, c) }
            }
            var out: [Int: (String, Completion)] = [:]
            for try await (i, t, c) in group { out[i] = (t, c) }
            return out
        }
        for (i, job) in jobs.enumerated() {
            let expected = try Self.solo(job)
            let (text, completion) = try #require(results[i])
            #expect(text == expected.text, "request \(i)")
            #expect(completion.completionTokens == expected.tokens.count, "request \(i)")
            #expect(completion.promptTokens == job.prompt.count)
        }
        #expect(engine.stats.steps < jobs.map(\.maxTokens).reduce(0, +), "the requests shared decode steps")
    }

    @Test("while another sequence decodes, a long prompt is prefilled in chunks and gives the same output as in one piece")
    func chunkedPrefill() async throws {
        var limits = EngineLimits()
        limits.prefillTokensPerStep = 5
        let engine = InferenceEngine(model: Self.model, limits: limits)
        defer { engine.shutdown() }
        let busy = try engine.submit(InferenceJob(prompt: [4], maxTokens: 60, sampling: .greedy, ignoreEOS: true))
        let job = InferenceJob(prompt: (0..<37).map { ($0 * 11) % 70 + 2 }, maxTokens: 10, sampling: .greedy,
                               adapters: AdapterMix(try Self.adapter(seed: 3)))
        var iterator = busy.makeAsyncIterator()
        _ = try await iterator.next()  // the first sequence is decoding now
        let (text, c) = try await collect(try engine.submit(job))
        #expect(text == (try Self.solo(job)).text)
        #expect(c.promptTokens == 37)
        #expect(engine.stats.steps >= 8 + 9, "37 tokens at 5 per step take 8 steps before decoding")
        while try await iterator.next() != nil {}
    }

    @Test("stop strings end generation without being returned")
    func stopStrings() async throws {
        let engine = InferenceEngine(model: Self.model)
        defer { engine.shutdown() }
        let free = try await collect(try engine.submit(InferenceJob(prompt: [5, 6, 7], maxTokens: 30, sampling: .greedy)))
        let text = free.0
        guard text.count >= 4 else { return }
        let stop = String(text.dropFirst(2).prefix(2))
        let (stopped, c) = try await collect(try engine.submit(InferenceJob(prompt: [5, 6, 7], maxTokens: 30, sampling: .greedy,
                                                                           stop: [stop])))
        #expect(c.reason == .stop)
        #expect(!stopped.contains(stop))
        #expect(text.hasPrefix(stopped))
    }

    @Test("a request whose consumer goes away is dropped within a step")
    func cancellation() async throws {
        // A long context and a long request, so the whole request takes far longer than the
        // cancellation needs to land, however fast the machine decodes.
        let model = try TinyModel.model(TinyModel.Spec(context: 4096), pool: ThreadPool(threadCount: 2))
        let engine = InferenceEngine(model: model)
        defer { engine.shutdown() }
        do {
            // The consumer reads two events and goes away: the stream is dropped, which cancels the request.
            let stream = try engine.submit(InferenceJob(prompt: [3, 4], maxTokens: 4000, sampling: .greedy, ignoreEOS: true))
            var iterator = stream.makeAsyncIterator()
            _ = try await iterator.next()
            _ = try await iterator.next()
        }
        #expect(await engine.waitUntilIdle(timeout: 5))
        #expect(engine.stats.tokensGenerated < 4000)
    }

    @Test("limits: the queue bound, the token limit, empty prompts and draining are refused with the right error")
    func limits() async throws {
        var limits = EngineLimits()
        limits.maxActive = 1
        limits.maxQueued = 1
        limits.maxTotalTokens = 64
        let engine = InferenceEngine(model: Self.model, limits: limits)
        defer { engine.shutdown() }
        #expect(throws: EngineError.emptyPrompt) { try engine.submit(InferenceJob(prompt: [], maxTokens: 4, sampling: .greedy)) }
        #expect(throws: EngineError.tooLong(tokens: 70, limit: 64, what: "server's limit per request")) {
            try engine.submit(InferenceJob(prompt: Array(repeating: 3, count: 20), maxTokens: 50, sampling: .greedy))
        }
        #expect(throws: EngineError.tooLong(tokens: 300, limit: 256, what: "model's context length")) {
            try engine.submit(InferenceJob(prompt: Array(repeating: 3, count: 100), maxTokens: 200, sampling: .greedy))
        }
        // One runs, one waits; the third finds the queue full.
        let first = try engine.submit(InferenceJob(prompt: [3], maxTokens: 60, sampling: .greedy))
        var refused = false
        var kept: [AsyncThrowingStream<EngineEvent, any Error>] = [first]
        for _ in 0..<3 {
            do { kept.append(try engine.submit(InferenceJob(prompt: [3], maxTokens: 60, sampling: .greedy))) } catch EngineError.queueFull {
                refused = true
            }
        }
        #expect(refused)
        engine.beginDraining()
        #expect(throws: EngineError.draining) { try engine.submit(InferenceJob(prompt: [3], maxTokens: 2, sampling: .greedy)) }
        for stream in kept { _ = try await collect(stream) }  // admitted work still finishes while draining
    }

    @Test("shutdown ends requests still running with a draining error")
    func shutdownEndsRequests() async throws {
        let engine = InferenceEngine(model: Self.model)
        let stream = try engine.submit(InferenceJob(prompt: [3, 4], maxTokens: 250, sampling: .greedy))
        engine.shutdown()
        await #expect(throws: EngineError.draining) { _ = try await collect(stream) }
    }
}
