import Engine
import Foundation
import Hummingbird
import LlamaModel

extension GraftServer {
    /// Runs a parsed call on the engine and answers it, as one JSON object or as server-sent
    /// events. The client's disconnect cancels the sequence.
    func generate(_ call: GenerationCall, request: Request, context: GraftContext) async throws -> Response {
        let principal = context.principal
        let limit = min(engine.limits.maxTotalTokens, model.config.contextLength)
        let promptParam = call.kind == .chat ? "messages" : "prompt"
        if call.prompt.isEmpty { throw APIError.badRequest("the prompt is empty (0 tokens)", param: promptParam) }
        if call.prompt.count >= limit {
            throw APIError(.badRequest, "the prompt has \(call.prompt.count) tokens; the limit for prompt plus completion is \(limit)",
                           param: promptParam, code: "context_length_exceeded")
        }
        let maxTokens = call.maxTokens ?? (limit - call.prompt.count)
        let claim = try quotas.admit(tenant: principal.tenant, quotas: quotas(for: principal.tenant))
        let mix: AdapterMix, adapterName: String
        do {
            (mix, adapterName) = try await call.selection.load(self)
        } catch {
            claim.release()
            throw error
        }
        context.notes.set(adapter: adapterName)
        let submission: InferenceEngine.Submission
        do {
            submission = try engine.enqueue(InferenceJob(prompt: call.prompt, maxTokens: maxTokens, sampling: call.sampling,
                                                         stop: call.stop, adapters: mix, ignoreEOS: call.ignoreEOS))
        } catch let e as EngineError {
            claim.release()
            throw Self.apiError(e)
        }
        // A client that goes away closes its channel (see ClientCloseHandler): stop its sequence.
        let (engine, id) = (self.engine, submission.id)
        context.channel.closeFuture.whenComplete { _ in engine.cancel(id) }
        let events = submission.events
        metrics.inferenceRequest(tenant: principal.tenant)
        let reply = Reply(kind: call.kind, model: call.modelField, includeUsage: call.includeUsage)
        if !call.stream {
            defer { claim.release() }
            var text = ""
            for try await event in events {
                switch event {
                case .text(let piece, _):
                    text += piece
                case .finished(let completion):
                    metrics.completion(tenant: principal.tenant, completion)
                    context.notes.set(tokens: completion.completionTokens)
                    return Response(status: .ok, headers: [.contentType: "application/json"],
                                    body: .init(byteBuffer: ByteBuffer(bytes: reply.whole(text: text, completion))))
                }
            }
            throw APIError(.internalServerError, "generation ended without a result")
        }
        let metrics = self.metrics
        let notes = context.notes
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                        body: ResponseBody { writer in
            defer { claim.release() }
            do {
                try await writer.write(ByteBuffer(bytes: reply.event(reply.first())))
                for try await event in events {
                    switch event {
                    case .text(let piece, _):
                        try await writer.write(ByteBuffer(bytes: reply.event(reply.delta(piece))))
                    case .finished(let c):
                        metrics.completion(tenant: principal.tenant, c)
                        notes.set(tokens: c.completionTokens)
                        try await writer.write(ByteBuffer(bytes: reply.event(reply.last(c))))
                        if call.includeUsage { try await writer.write(ByteBuffer(bytes: reply.event(reply.usageChunk(c)))) }
                    }
                }
                try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
            } catch is CancellationError {
                engine.cancel(id)
                return  // the client went away
            } catch let error as EngineError {
                // Once the head is sent, an error travels as an event.
                try? await writer.write(ByteBuffer(bytes: reply.event(Self.apiError(error).json)))
                try? await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
            } catch {
                engine.cancel(id)  // a write failed: the client is gone
                throw error
            }
            try await writer.finish(nil)
        })
    }

    static func apiError(_ e: EngineError) -> APIError {
        switch e {
        case .queueFull(let after):
            return APIError(.tooManyRequests, e.description, code: "server_busy", retryAfter: after)
        case .draining:
            return APIError(.serviceUnavailable, e.description, code: "shutting_down", retryAfter: 5)
        case .tooLong, .emptyPrompt, .invalid:
            return APIError(.badRequest, e.description, param: "max_tokens", code: "context_length_exceeded")
        case .failed:
            return APIError(.internalServerError, e.description, shouldRetry: false)
        }
    }
}

/// The JSON shapes of one reply (OpenAI's chat.completion / text_completion objects and chunks).
struct Reply: Sendable {
    let kind: GenerationCall.Kind
    let id: String
    let created = Int(Date().timeIntervalSince1970)
    let model: String
    let includeUsage: Bool

    init(kind: GenerationCall.Kind, model: String, includeUsage: Bool) {
        self.kind = kind
        self.model = model
        self.includeUsage = includeUsage
        id = (kind == .chat ? "chatcmpl-" : "cmpl-") + randomID()
    }

    private var object: String { kind == .chat ? "chat.completion" : "text_completion" }
    private var chunkObject: String { kind == .chat ? "chat.completion.chunk" : "text_completion" }

    private func usage(_ c: Completion) -> [String: Any] {
        ["prompt_tokens": c.promptTokens, "completion_tokens": c.completionTokens,
         "total_tokens": c.promptTokens + c.completionTokens,
         "prompt_tokens_details": ["cached_tokens": c.cachedPromptTokens]]
    }

    func whole(text: String, _ c: Completion) -> [UInt8] {
        let choice: [String: Any] = kind == .chat
            ? ["index": 0, "message": ["role": "assistant", "content": text, "refusal": NSNull()] as [String: Any],
               "logprobs": NSNull(), "finish_reason": c.reason.rawValue]
            : ["index": 0, "text": text, "logprobs": NSNull(), "finish_reason": c.reason.rawValue]
        return encode(["id": id, "object": object, "created": created, "model": model, "choices": [choice],
                       "usage": usage(c), "system_fingerprint": NSNull()])
    }

    private func chunk(_ choices: [[String: Any]], usage: Any = NSNull()) -> [String: Any] {
        var o: [String: Any] = ["id": id, "object": chunkObject, "created": created, "model": model, "choices": choices]
        if includeUsage { o["usage"] = usage }
        return o
    }

    private func choice(_ piece: String?, role: Bool = false, finish: String? = nil) -> [String: Any] {
        if kind == .completion {
            return ["index": 0, "text": piece ?? "", "logprobs": NSNull(), "finish_reason": finish ?? NSNull()]
        }
        var delta: [String: Any] = [:]
        if role { delta["role"] = "assistant" }
        if let piece { delta["content"] = piece }
        return ["index": 0, "delta": delta, "logprobs": NSNull(), "finish_reason": finish ?? NSNull()]
    }

    func first() -> [String: Any] { chunk([choice(kind == .chat ? "" : "", role: true)]) }
    func delta(_ piece: String) -> [String: Any] { chunk([choice(piece)]) }
    func last(_ c: Completion) -> [String: Any] { chunk([choice(kind == .chat ? nil : "", finish: c.reason.rawValue)]) }
    func usageChunk(_ c: Completion) -> [String: Any] { chunk([], usage: usage(c)) }

    func event(_ object: [String: Any]) -> [UInt8] { Array("data: ".utf8) + encode(object) + Array("\n\n".utf8) }

    private func encode(_ object: [String: Any]) -> [UInt8] {
        Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data())
    }
}

/// 24 random characters from [A-Za-z0-9]: unguessable ids.
func randomID(_ length: Int = 24) -> String {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
    var rng = SystemRandomNumberGenerator()
    return String((0..<length).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &rng)] })
}
