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

/// Turns sampled tokens into text for a client: decodes them incrementally, stops at the
/// end-of-sequence token, a stop string (not included) or the token limit, and releases text
/// only once it cannot be the start of a stop string.
public struct OutputText {
    public private(set) var tokens: [Int] = []
    public private(set) var text = ""
    /// Why generation ended; nil while it goes on.
    public private(set) var finishReason: GenerationResult.FinishReason?
    private var decoder: StreamingDecoder
    /// Tokens that end generation (EOS, end of turn, ...); empty with `stopAtEOS` off.
    private let endIDs: Set<Int>
    private let stop: [String]
    private let maxTokens: Int
    private let maxStop: Int
    private var emitted = 0  // characters of `text` already released

    public init(tokenizer: Tokenizer, maxTokens: Int, stop: [String], stopAtEOS: Bool) {
        decoder = StreamingDecoder(tokenizer: tokenizer)
        endIDs = stopAtEOS ? tokenizer.endOfGenerationIDs : []
        self.stop = stop.filter { !$0.isEmpty }
        self.maxTokens = maxTokens
        maxStop = self.stop.map(\.count).max() ?? 0
        if maxTokens <= 0 { finishReason = .length }
    }

    /// Adds a sampled token; returns the text that may now be shown (possibly empty). Once
    /// `finishReason` is set, the text returned is the last.
    public mutating func append(_ token: Int) -> String {
        guard finishReason == nil else { return "" }
        if endIDs.contains(token) {
            finishReason = .eos
            return release(final: true)
        }
        tokens.append(token)
        text += decoder.append(token)
        if let hit = stop.compactMap({ text.range(of: $0) }).min(by: { $0.lowerBound < $1.lowerBound }) {
            text = String(text[..<hit.lowerBound])
            finishReason = .stop
            return release(final: false)
        }
        if tokens.count >= maxTokens {
            finishReason = .length
            return release(final: true)
        }
        return release(final: false)
    }

    private mutating func release(final: Bool) -> String {
        if final { text += decoder.finish() }
        // Hold back what could still be the start of a stop string.
        let safe = finishReason != nil ? text.count : text.count - max(0, maxStop - 1)
        guard safe > emitted else { return "" }
        let start = text.index(text.startIndex, offsetBy: emitted)
        let end = text.index(text.startIndex, offsetBy: safe)
        emitted = safe
        return String(text[start..<end])
    }
}

extension LlamaModel {
    /// Generates a continuation of `request.prompt`, calling `onText` with each piece of
    /// complete text as soon as it is known not to be part of a stop string.
    public func generate(_ request: GenerationRequest, onText: (String) -> Void = { _ in }) throws -> GenerationResult {
        let cache = makeCache()
        var sampler = Sampler(request.sampling)
        var output = OutputText(tokenizer: tokenizer, maxTokens: request.maxTokens, stop: request.stop,
                                stopAtEOS: request.stopAtEOS)
        let t0 = Clock.now
        var logits = output.finishReason == nil ? try forward(request.prompt, cache: cache, adapters: request.adapters) : []
        let t1 = Clock.now
        while output.finishReason == nil {
            let next = sampler.sample(logits)
            let piece = output.append(next)
            if !piece.isEmpty { onText(piece) }
            if output.finishReason != nil { break }
            logits = try forward([next], cache: cache, adapters: request.adapters)
        }
        let t2 = Clock.now
        return GenerationResult(tokens: output.tokens, text: output.text, finishReason: output.finishReason ?? .length,
                                promptTokens: request.prompt.count, prefillSeconds: t1 - t0, decodeSeconds: t2 - t1)
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
