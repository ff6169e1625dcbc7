import LlamaModel

/// The engine thread's loop and the sequences it owns. Nothing here is shared: other
/// threads reach the scheduler only through the engine's locked intake.
final class Scheduler {
    let engine: InferenceEngine
    var active: [Sequence] = []
    let prefixes: PrefixCache

    init(engine: InferenceEngine) {
        self.engine = engine
        prefixes = PrefixCache(capacity: engine.limits.prefixCacheBytes)
    }

    /// One request being served: its cache, sampler and output so far.
    final class Sequence {
        let pending: InferenceEngine.Pending
        let cache: KVCache
        var sampler: Sampler
        var output: OutputText
        var prefilled = 0
        /// Prompt positions taken from the prefix cache instead of computed.
        var cachedPromptTokens = 0
        var lastToken = 0
        var firstTokenAt: Double?

        init(_ p: InferenceEngine.Pending, model: LlamaModel) {
            pending = p
            cache = model.makeCache()
            sampler = Sampler(p.job.sampling)
            output = OutputText(tokenizer: model.tokenizer, maxTokens: p.job.maxTokens, stop: p.job.stop,
                                stopAtEOS: !p.job.ignoreEOS)
        }

        var job: InferenceJob { pending.job }
        var isPrefilling: Bool { prefilled < job.prompt.count }
    }

    func run() {
        // Since when requests have kept background work waiting.
        var servingSince: Double?
        while true {
            let intake = admit()
            if intake.stopping {
                while let work = engine.takeBackground() { work.run(nil) }
                return
            }
            if !active.isEmpty {
                if !intake.backgroundWaiting {
                    servingSince = nil
                    stepAndPublish()
                    continue
                }
                let since = servingSince ?? Clock.now
                servingSince = since
                if Clock.now - since < engine.limits.backgroundWaitSeconds {
                    stepAndPublish()
                    continue
                }
            }
            servingSince = nil
            if let work = engine.takeBackground() {
                work.run { [unowned self] in self.pause() }
            } else if active.isEmpty {
                engine.publish(active: 0, reserved: 0, generated: 0, stepped: false)
                engine.waitForWork()
            }
        }
    }

    /// Collects cancellations and admits waiting requests; when the engine stops, ends every
    /// request with `EngineError.draining`.
    private func admit() -> InferenceEngine.Intake {
        let intake = engine.intake(active: active.count, reserved: reserved)
        if !intake.cancelled.isEmpty {
            for s in active where intake.cancelled.contains(s.pending.id) {
                s.pending.continuation.finish(throwing: CancellationError())
            }
            active.removeAll { intake.cancelled.contains($0.pending.id) }
        }
        if intake.stopping {
            for p in intake.admitted { p.continuation.finish(throwing: EngineError.draining) }
            for s in active { s.pending.continuation.finish(throwing: EngineError.draining) }
            active.removeAll()
            engine.publish(active: 0, reserved: 0, generated: 0, stepped: false)
            return intake
        }
        for p in intake.admitted {
            let s = Sequence(p, model: engine.model)
            s.cachedPromptTokens = prefixes.fill(s.cache, prompt: p.job.prompt, mix: p.job.adapters)
            s.prefilled = s.cachedPromptTokens
            active.append(s)
        }
        return intake
    }

    private func stepAndPublish() {
        let (generated, cached) = step()
        engine.publish(active: active.count, reserved: reserved, generated: generated, stepped: true,
                       promptTokensCached: cached, prefixCacheBytes: prefixes.bytes)
    }

    /// Called by background work at its safe points: serves waiting and active requests for up
    /// to `pauseServingSeconds`, then hands the threads back.
    private func pause() {
        guard !active.isEmpty || engine.hasQueuedRequests else { return }
        let until = Clock.now + engine.limits.pauseServingSeconds
        while true {
            let intake = admit()
            if intake.stopping { return }
            if active.isEmpty {
                engine.publish(active: 0, reserved: 0, generated: 0, stepped: false)
                return
            }
            stepAndPublish()
            if Clock.now >= until { return }
        }
    }

    private var reserved: Int { active.reduce(0) { $0 + $1.pending.reservation } }

    /// One batch: one token for every decoding sequence and a prompt chunk for sequences still
    /// prefilling (within the per-step budget). Returns tokens generated and prompt tokens
    /// taken from the prefix cache by sequences that started this step.
    private func step() -> (generated: Int, cached: Int) {
        var segments: [LlamaModel.Segment] = []
        var members: [(sequence: Sequence, tokens: Int)] = []
        for s in active where !s.isPrefilling {
            segments.append(.init(tokens: [s.lastToken], cache: s.cache, adapters: s.job.adapters, logits: .last(1)))
            members.append((s, 1))
        }
        // Prompts share a per-step budget, shortest remaining first, so a short request is not
        // kept waiting behind a long prompt (which is taken a chunk per step).
        // With nobody decoding there is no one to keep waiting: take prompts in large chunks.
        var budget = members.isEmpty ? max(engine.limits.prefillTokensPerStep, 1024) : engine.limits.prefillTokensPerStep
        let prefilling = active.filter(\.isPrefilling)
            .sorted { $0.job.prompt.count - $0.prefilled < $1.job.prompt.count - $1.prefilled }
        for s in prefilling where budget > 0 {
            let n = min(s.job.prompt.count - s.prefilled, budget)
            budget -= n
            let last = s.prefilled + n == s.job.prompt.count
            segments.append(.init(tokens: Array(s.job.prompt[s.prefilled..<s.prefilled + n]), cache: s.cache,
                                  adapters: s.job.adapters, logits: last ? .last(1) : .none))
            members.append((s, n))
        }
        let logits: [[Float]]
        do {
            logits = try engine.model.forward(segments)
        } catch {
            // A batch that fails ends its members; the rest of the server goes on.
            let failed = Set(members.map { ObjectIdentifier($0.sequence) })
            for m in members { m.sequence.pending.continuation.finish(throwing: EngineError.failed("\(error)")) }
            active.removeAll { failed.contains(ObjectIdentifier($0)) }
            return (0, 0)
        }
        var generated = 0, cached = 0
        var finished: Set<ObjectIdentifier> = []
        let now = Clock.now
        for (i, m) in members.enumerated() {
            let s = m.sequence
            if s.isPrefilling {
                s.prefilled += m.tokens
                if s.isPrefilling { continue }
                prefixes.insert(prompt: s.job.prompt, from: s.cache, mix: s.job.adapters)
                cached += s.cachedPromptTokens
            }
            let token = s.sampler.sample(logits[i])
            s.lastToken = token
            if s.firstTokenAt == nil { s.firstTokenAt = now }
            let piece = s.output.append(token)
            generated += 1
            let continuation = s.pending.continuation
            if !piece.isEmpty { continuation.yield(.text(piece, tokens: s.output.tokens.count)) }
            if let reason = s.output.finishReason {
                keepConversation(s)
                let first = s.firstTokenAt ?? now
                continuation.yield(.finished(Completion(
                    reason: reason == .length ? .length : .stop, promptTokens: s.job.prompt.count,
                    cachedPromptTokens: s.cachedPromptTokens, completionTokens: s.output.tokens.count,
                    firstTokenSeconds: first - s.pending.submitted, decodeSeconds: now - first)))
                continuation.finish()
                finished.insert(ObjectIdentifier(s))
            }
        }
        if !finished.isEmpty { active.removeAll { finished.contains(ObjectIdentifier($0)) } }
        return (generated, cached)
    }

    /// Keeps a finished sequence's prompt and answer in the prefix cache (in place of its
    /// prompt alone): a chat's next turn repeats both before its new message. The cache holds
    /// every generated token but the last, which was never fed back.
    private func keepConversation(_ s: Sequence) {
        let fed = s.cache.count - s.job.prompt.count
        guard fed > 0, s.output.tokens.count >= fed else { return }
        prefixes.insert(prompt: s.job.prompt + s.output.tokens.prefix(fed), from: s.cache, mix: s.job.adapters)
    }
}
