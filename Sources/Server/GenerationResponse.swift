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
        if call.prompt.isEmpty { throw APIError.badRequest("the prompt is empty (0 tokens)", param: call.kind == .chat ? "messages" : "prompt") }
        if call.prompt.count >= limit {
            throw APIError(.badRequest, "the prompt has \(call.prompt.count) tokens; the limit for prompt plus completion is \(limit)",
                           param: call.kind == .chat ? "messages" : "prompt", code: "context_length_exceeded")
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
        let events: AsyncThrowingStream<EngineEvent, any Error>
        do {
            events = try engine.submit(InferenceJob(prompt: call.prompt, maxTokens: maxTokens, sampling: call.sampling,
                                                    stop: call.stop, adapters: mix, ignoreEOS: call.ignoreEOS))
        } catch let e as EngineError {
            claim.release()
            throw Self.apiError(e)
        }
        metrics.inferenceRequest(tenant: principal.tenant)
        let reply = Reply(kind: call.kind, model: call.modelField, includeUsage: call.includeUsage)
        if !call.stream {
            defer { claim.release() }
            let (text, completion) = try await request.body.consumeWithCancellationOnInboundClose { _ in
                var text = ""
                for try await event in events {
                    switch event {
                    case .text(let piece, _): text += piece
                    case .finished(let c): return (text, c)
                    }
                }
                throw APIError(.internalServerError, "generation ended without a result")
            }
            metrics.completion(tenant: principal.tenant, completion)
            context.notes.set(tokens: completion.completionTokens)
            // The connection closes after a response that watched for the client's disconnect.
            return Response(status: .ok, headers: [.contentType: "application/json", .connection: "close"],
                            body: .init(byteBuffer: ByteBuffer(bytes: reply.whole(text: text, completion))))
        }
        let metrics = self.metrics
        let notes = context.notes
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache", .connection: "close"],
                        body: ResponseBody { writer in
            defer { claim.release() }
            do {
                try await request.body.consumeWithCancellationOnInboundClose { _ in
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
                }
            } catch is CancellationError {
                return  // the client went away; the engine has dropped the sequence
            } catch {
                // Once the head is sent, an error travels as an event.
                let apiError = (error as? EngineError).map(Self.apiError) ?? APIError(.internalServerError, "\(error)")
                try? await writer.write(ByteBuffer(bytes: reply.event(apiError.json)))
                try? await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
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
         "total_tokens": c.promptTokens + c.completionTokens]
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
