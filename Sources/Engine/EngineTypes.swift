import LlamaModel

/// The engine's limits; requests beyond them are refused with an `EngineError`.
public struct EngineLimits: Sendable {
    /// Sequences decoded together in one batch.
    public var maxActive = 16
    /// Requests waiting for a slot; beyond this, submissions are refused (`queueFull`).
    public var maxQueued = 64
    /// Prompt plus completion tokens of one request (also capped by the model's context).
    public var maxTotalTokens = 4096
    /// Key/value memory reserved for active sequences, in bytes: a sequence is admitted only
    /// when its prompt plus completion budget fits.
    public var kvBudgetBytes = 2 << 30
    /// Prompt tokens prefilled per step over all admitted sequences while others decode, so a
    /// long prompt is taken in chunks and sequences already decoding keep their pace: a prompt
    /// token costs about as much as a decoding row, so 16 keeps a step with 8 streams under
    /// about 0.1 s on a 2-core machine (64 made such steps 0.25 s, and a short request
    /// arriving behind one waited two of them). With nothing decoding, steps take up to 1024
    /// prompt tokens.
    public var prefillTokensPerStep = 16
    /// Keys and values of recent prompts kept for later requests that start the same way
    /// with the same adapters (`PrefixCache`), in bytes; 0 turns the cache off. 64 MiB holds
    /// about 1,400 prompt tokens of SmolLM2-135M (46 KiB each).
    public var prefixCacheBytes = 64 << 20
    /// Background work (training) waits at most this long while requests keep the engine
    /// busy; it then starts, and its pauses keep serving the requests.
    public var backgroundWaitSeconds = 1.0
    /// Longest a pause in background work serves requests before handing the threads back.
    public var pauseServingSeconds = 0.25

    public init() {}
}

/// One request for the engine: a tokenized prompt and how to continue it.
public struct InferenceJob: Sendable {
    public var prompt: [Int]
    public var maxTokens: Int
    public var sampling: SamplingParameters
    public var stop: [String]
    public var adapters: AdapterMix
    /// Keep going past the end-of-sequence token (for load tests of fixed length).
    public var ignoreEOS = false

    public init(prompt: [Int], maxTokens: Int, sampling: SamplingParameters, stop: [String] = [],
                adapters: AdapterMix = .none, ignoreEOS: Bool = false) {
        self.prompt = prompt; self.maxTokens = maxTokens; self.sampling = sampling
        self.stop = stop; self.adapters = adapters; self.ignoreEOS = ignoreEOS
    }
}

/// What a submitted job reports, in order: text pieces, then one `finished`.
public enum EngineEvent: Sendable, Equatable {
    /// Text that is final (never part of a stop string). `tokens` counts tokens generated so far.
    case text(String, tokens: Int)
    case finished(Completion)
}

public struct Completion: Sendable, Equatable {
    public enum Reason: String, Sendable { case stop, length }
    public var reason: Reason
    public var promptTokens: Int
    /// Prompt tokens whose keys and values came from the prefix cache.
    public var cachedPromptTokens: Int
    public var completionTokens: Int
    /// Seconds from submission to the first generated token, and from then to the last.
    public var firstTokenSeconds: Double
    public var decodeSeconds: Double
}

public enum EngineError: Error, Equatable, CustomStringConvertible {
    /// Too many requests wait already; try again after `retryAfter` seconds.
    case queueFull(retryAfter: Int)
    /// The engine is shutting down and takes no new work.
    case draining
    /// The prompt plus the completion budget exceed a limit.
    case tooLong(tokens: Int, limit: Int, what: String)
    case emptyPrompt
    case invalid(String)
    /// The model failed on this request's batch.
    case failed(String)

    public var description: String {
        switch self {
        case .queueFull: return "the server is busy: too many requests are waiting; retry shortly"
        case .draining: return "the server is shutting down"
        case .tooLong(let n, let limit, let what):
            return "this request needs \(n) tokens (prompt plus max_tokens), over the \(what) of \(limit)"
        case .emptyPrompt: return "the prompt is empty (0 tokens)"
        case .invalid(let s): return s
        case .failed(let s): return "generation failed: \(s)"
        }
    }
}

/// Counts the engine keeps for /health and /metrics.
public struct EngineStats: Sendable, Equatable {
    public var active = 0
    public var queued = 0
    public var steps = 0
    public var tokensGenerated = 0
    public var kvReservedBytes = 0
    /// Prompt tokens taken from the prefix cache instead of computed, and its size.
    public var promptTokensCached = 0
    public var prefixCacheBytes = 0
}
