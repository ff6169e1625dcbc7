import Engine
import Foundation
import LlamaModel
import Synchronization
import TestSupport
import Testing

@Suite("Inference engine: background work between requests", .serialized)
struct BackgroundWorkTests {
    static let job = InferenceJob(prompt: [5, 9, 14, 3], maxTokens: 6, sampling: .greedy)

    @Test("background work runs on the engine; a request arriving meanwhile is served at its pauses, with the same answer")
    func pausesServeRequests() async throws {
        let engine = InferenceEngine(model: EngineTests.model)
        defer { engine.shutdown() }
        let started = Atomic<Bool>(false)
        // Work that keeps pausing until it sees the request's tokens generated (or gives up):
        // the request can only be served at its pauses, since the work holds the engine.
        let work = Task {
            try await engine.background { pause in
                started.store(true, ordering: .relaxed)
                let t0 = Date()
                while engine.stats.tokensGenerated < Self.job.maxTokens && Date().timeIntervalSince(t0) < 600 {
                    pause()
                    usleep(1000)  // a layer's worth of work
                }
                return engine.stats.tokensGenerated
            }
        }
        while !started.load(ordering: .relaxed) { try await Task.sleep(for: .milliseconds(5)) }
        let (text, completion) = try await collect(try engine.submit(Self.job))
        let generatedDuringWork = try await work.value
        #expect(generatedDuringWork == Self.job.maxTokens, "the request was served while the work held the engine")
        let solo = try EngineTests.solo(Self.job)
        #expect(completion.completionTokens == 6 && text == solo.text)
    }

    @Test("background work returns its value; after shutdown it is refused as draining")
    func orderAndShutdown() async throws {
        let engine = InferenceEngine(model: EngineTests.model)
        async let a: Int = engine.background { _ in 1 }
        async let b: Int = engine.background { _ in 2 }
        let sum = try await a + b
        #expect(sum == 3)
        engine.shutdown()
        await #expect(throws: EngineError.self) { try await engine.background { _ in 0 } }
    }
}
