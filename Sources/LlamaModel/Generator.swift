#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Tokenizer

/// What to generate and when to stop.
public struct GenerationRequest: Sendable {
    public var prompt: [Int]
    public var maxTokens: Int = 256
    public var sampling: SamplingParameters = .init()
    /// Stop when any of these strings appears in the output (it is not included).
    public var stop: [String] = []
    /// Stop at the end-of-sequence token.
    public var stopAtEOS = true
    /// Adapters applied to every position.
    public var adapters: AdapterMix = .none

    public init(prompt: [Int], maxTokens: Int = 256, sampling: SamplingParameters = .init(),
                stop: [String] = [], stopAtEOS: Bool = true, adapters: AdapterMix = .none) {
        self.prompt = prompt; self.maxTokens = maxTokens; self.sampling = sampling
        self.stop = stop; self.stopAtEOS = stopAtEOS; self.adapters = adapters
    }
}

public struct GenerationResult: Sendable {
    public enum FinishReason: String, Sendable { case length, stop, eos }
    public var tokens: [Int]
    public var text: String
    public var finishReason: FinishReason
    public var promptTokens: Int
    /// Seconds spent on the prompt and on generated tokens.
    public var prefillSeconds: Double
    public var decodeSeconds: Double
}

extension LlamaModel {
    /// Generates a continuation of `request.prompt`, calling `onText` with each piece of
    /// complete text as soon as it is known not to be part of a stop string.
    public func generate(_ request: GenerationRequest, onText: (String) -> Void = { _ in }) throws -> GenerationResult {
        let cache = makeCache()
        var sampler = Sampler(request.sampling)
        var decoder = StreamingDecoder(tokenizer: tokenizer)
        var tokens: [Int] = []
        var text = ""
        var emitted = 0  // characters of `text` already passed to onText
        var reason = GenerationResult.FinishReason.length
        let maxStop = request.stop.map(\.count).max() ?? 0

        let t0 = Clock.now
        var logits = try forward(request.prompt, cache: cache, adapters: request.adapters)
        let t1 = Clock.now
        while tokens.count < request.maxTokens {
            let next = sampler.sample(logits)
            if request.stopAtEOS, next == tokenizer.eosID { reason = .eos; break }
            tokens.append(next)
            text += decoder.append(next)
            if let hit = request.stop.compactMap({ text.range(of: $0) }).min(by: { $0.lowerBound < $1.lowerBound }) {
                text = String(text[..<hit.lowerBound])
                reason = .stop
                break
            }
            // Hold back what could still be the start of a stop string.
            let safe = text.count - max(0, maxStop - 1)
            if safe > emitted {
                let start = text.index(text.startIndex, offsetBy: emitted)
                let end = text.index(text.startIndex, offsetBy: safe)
                onText(String(text[start..<end]))
                emitted = safe
            }
            if tokens.count == request.maxTokens { break }
            logits = try forward([next], cache: cache, adapters: request.adapters)
        }
        if reason != .stop { text += decoder.finish() }
        if text.count > emitted { onText(String(text.dropFirst(emitted))) }
        let t2 = Clock.now
        return GenerationResult(tokens: tokens, text: text, finishReason: reason, promptTokens: request.prompt.count,
                                prefillSeconds: t1 - t0, decodeSeconds: t2 - t1)
    }
}

/// Monotonic seconds.
public enum Clock {
    public static var now: Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}
