import AdapterFormat
import Engine
import Foundation
import Hub
import Hummingbird
import HummingbirdTesting
import LlamaModel
import Server
import TestSupport
import Testing
import Tokenizer

@Suite("OpenAI-compatible inference routes", .serialized)
struct InferenceRouteTests {
    /// What `graft generate` gives for the same chat, alone.
    static func expectedChat(_ user: String, maxTokens: Int, adapter: PreparedAdapter? = nil) throws -> String {
        let model = Harness.model
        let prompt = model.tokenizer.encode(try model.tokenizer.chatTemplate!.render([ChatMessage(role: "user", content: user)],
                                                                                addGenerationPrompt: true))
        return try model.generate(GenerationRequest(prompt: prompt, maxTokens: maxTokens, sampling: .greedy,
                                                    adapters: adapter.map { AdapterMix($0) } ?? .none)).text
    }

    @Test("chat completion: OpenAI's shape, the same text as a solo greedy run, usage counted")
    func chat() async throws {
        let h = try Harness()
        let id = try h.publish("default", "support", seed: 7)
        let prepared = try PreparedAdapter(randomAdapter(Harness.model.config, rank: 4, seed: 7), config: Harness.model.config)
        let expectedBase = try Self.expectedChat("hello there", maxTokens: 9)
        let expectedAdapter = try Self.expectedChat("hello there", maxTokens: 9, adapter: prepared)
        try await h.test { client in
            for (i, (model, expected)) in [("tiny", expectedBase), ("default/support", expectedAdapter), ("support", expectedAdapter),
                                           ("\(id)", expectedAdapter)].enumerated() {
                let r = try await client.post("/v1/chat/completions", [
                    "model": model, "messages": [["role": "user", "content": "hello there"]], "max_tokens": 9, "temperature": 0,
                ])
                #expect(r.status == .ok, "\(model): \(r.text)")
                let o = r.json
                #expect(o["object"] as? String == "chat.completion")
                #expect((o["id"] as? String)?.hasPrefix("chatcmpl-") == true)
                #expect(o["model"] as? String == model)
                let choice = try #require((o["choices"] as? [[String: Any]])?.first)
                let message = try #require(choice["message"] as? [String: Any])
                #expect(message["role"] as? String == "assistant")
                #expect(message["content"] as? String == expected, "\(model)")
                let usage = try #require(o["usage"] as? [String: Any])
                let prompt = try #require(usage["prompt_tokens"] as? Int)
                #expect(usage["total_tokens"] as? Int == prompt + (usage["completion_tokens"] as? Int ?? -1))
                // The third and fourth name the adapter of the second: its prompt's keys and values are reused.
                let cached = (usage["prompt_tokens_details"] as? [String: Any])?["cached_tokens"] as? Int
                #expect(cached == (i >= 2 ? prompt - 1 : 0), "\(model)")
                #expect(["stop", "length"].contains(choice["finish_reason"] as? String))
            }
            let metrics = try await client.get("/metrics").text
            #expect(metrics.contains("graft_prompt_tokens_cached_total{tenant=\"default\"}"))
            #expect(metrics.contains("graft_prefix_cache_bytes"))
        }
    }

    @Test("streamed chat: chunks that add up to the whole answer, a finish reason, usage when asked, then [DONE]")
    func streaming() async throws {
        let h = try Harness()
        let expected = try Self.expectedChat("stream me", maxTokens: 12)
        try await h.test { client in
            let r = try await client.post("/v1/chat/completions", [
                "model": "tiny", "messages": [["role": "user", "content": "stream me"]], "max_completion_tokens": 12,
                "temperature": 0, "stream": true, "stream_options": ["include_usage": true],
            ])
            #expect(r.status == .ok)
            #expect(r.headers[.contentType] == "text/event-stream")
            #expect(r.text.hasSuffix("data: [DONE]\n\n"))
            let events = r.events
            #expect(events.allSatisfy { $0["object"] as? String == "chat.completion.chunk" })
            let choices = events.compactMap { ($0["choices"] as? [[String: Any]])?.first }
            let text = choices.compactMap { ($0["delta"] as? [String: Any])?["content"] as? String }.joined()
            #expect(text == expected)
            #expect((choices.first?["delta"] as? [String: Any])?["role"] as? String == "assistant")
            #expect(choices.last?["finish_reason"] as? String != nil)
            let usage = try #require(events.last?["usage"] as? [String: Any])
            #expect(usage["completion_tokens"] as? Int ?? 0 > 0)
            #expect((events.last?["choices"] as? [Any])?.isEmpty == true)
        }
    }

    @Test("legacy completions take a string or token ids and honour stop and seed")
    func completions() async throws {
        let h = try Harness()
        try await h.test { client in
            let a = try await client.post("/v1/completions", ["model": "tiny", "prompt": "abc", "max_tokens": 8, "temperature": 0])
            #expect(a.status == .ok, "\(a.text)")
            #expect(a.json["object"] as? String == "text_completion")
            let ids = Harness.model.tokenizer.encode("abc")
            let b = try await client.post("/v1/completions", ["model": "tiny", "prompt": ids, "max_tokens": 8, "temperature": 0])
            let text = { (r: TestResponse) in ((r.json["choices"] as? [[String: Any]])?.first?["text"] as? String) ?? "?" }
            #expect(text(a) == text(b))
            // Sampling with a seed is reproducible.
            let s1 = try await client.post("/v1/completions", ["model": "tiny", "prompt": "abc", "max_tokens": 10, "seed": 5, "temperature": 1.2])
            let s2 = try await client.post("/v1/completions", ["model": "tiny", "prompt": "abc", "max_tokens": 10, "seed": 5, "temperature": 1.2])
            #expect(text(s1) == text(s2))
        }
    }

    @Test("bad requests get OpenAI-shaped errors with the right status and the field named")
    func badRequests() async throws {
        let h = try Harness(limits: { var l = EngineLimits(); l.maxTotalTokens = 100; return l }(),
                            configure: { $0.baseModelSHA256 = String(repeating: "a", count: 64) })
        // An adapter trained on another base model (another SHA-256).
        let foreign = AdapterInfo(baseModel: "other", baseModelSHA256: String(repeating: "b", count: 64), tenant: "acme", name: "foreign")
        try h.hub.publishAdapter(try GraftFile.encode(randomAdapter(Harness.model.config, rank: 4, seed: 3), info: foreign),
                                 tenant: "acme", name: "foreign")
        try await h.test { client in
            let chat = "/v1/chat/completions"
            let msgs: [[String: Any]] = [["role": "user", "content": "x"]]
            func check(_ r: TestResponse, _ status: HTTPResponse.Status, param: String? = nil, contains: String,
                       sourceLocation: SourceLocation = #_sourceLocation) {
                #expect(r.status == status, "\(r.text)", sourceLocation: sourceLocation)
                let e = r.error
                #expect((e["message"] as? String)?.contains(contains) == true, "\(e)", sourceLocation: sourceLocation)
                #expect(e["type"] is String, sourceLocation: sourceLocation)
                if let param { #expect(e["param"] as? String == param, "\(e)", sourceLocation: sourceLocation) }
            }
            check(try await client.post(chat, ["model": "acme/foreign", "messages": [["role": "user", "content": "x"]]]),
                  .badRequest, param: "model", contains: "was made for base model other")
            let badJSON = try await client.execute(uri: chat, method: .post, headers: [.contentType: "application/json"],
                                                   body: ByteBuffer(string: "{\"model\": \"tiny\", "))
            check(badJSON, .badRequest, contains: "not valid JSON")
            let badUTF8 = try await client.execute(uri: chat, method: .post, body: ByteBuffer(bytes: [0x7B, 0xFF, 0xFE, 0x7D]))
            check(badUTF8, .badRequest, contains: "UTF-8")
            check(try await client.post(chat, ["messages": msgs]), .badRequest, param: "model", contains: "model")
            check(try await client.post(chat, ["model": "tiny"]), .badRequest, param: "messages", contains: "messages")
            check(try await client.post(chat, ["model": "nobody/nothing", "messages": msgs]), .notFound, param: "model",
                  contains: "does not exist")
            check(try await client.post(chat, ["model": "../../etc", "messages": msgs]), .notFound, param: "model",
                  contains: "does not exist")
            check(try await client.post(chat, ["model": "tiny", "messages": msgs, "temperature": -1]), .badRequest,
                  param: "temperature", contains: "between 0 and 2")
            check(try await client.post(chat, ["model": "tiny", "messages": msgs, "temperature": "hot"]), .badRequest,
                  param: "temperature", contains: "a number")
            check(try await client.post(chat, ["model": "tiny", "messages": msgs, "max_tokens": 0]), .badRequest,
                  param: "max_tokens", contains: "integer from 1")
            check(try await client.post(chat, ["model": "tiny", "messages": msgs, "n": 2]), .badRequest, param: "n", contains: "n=1")
            check(try await client.post(chat, ["model": "tiny", "messages": [["role": "robot", "content": "x"]]]), .badRequest,
                  param: "messages[0].role", contains: "robot")
            check(try await client.post("/v1/completions", ["model": "tiny", "prompt": ""]), .badRequest, param: "prompt",
                  contains: "0 tokens")
            check(try await client.post("/v1/completions", ["model": "tiny", "prompt": String(repeating: "word ", count: 150)]),
                  .badRequest, param: "prompt", contains: "limit for prompt plus completion is 100")
            check(try await client.post("/v1/completions", ["model": "tiny", "prompt": "hi", "max_tokens": 150]),
                  .badRequest, contains: "limit per request of 100")
            check(try await client.post("/v1/completions", ["model": "tiny", "prompt": [1, 99_999]]), .badRequest, param: "prompt",
                  contains: "outside the vocabulary")
            check(try await client.get("/v1/nothing"), .notFound, contains: "no route")
            let wrongMethod = try await client.get(chat)
            check(wrongMethod, .methodNotAllowed, contains: "POST")
            #expect(wrongMethod.headers[.allow] == "POST")
            let huge = try await client.execute(uri: chat, method: .post, headers: [.contentType: "application/json"],
                                                body: ByteBuffer(bytes: [UInt8](repeating: 0x20, count: 2 << 20)))
            check(huge, .contentTooLarge, contains: "over the limit")
        }
    }

    @Test("a tenant's request-rate quota answers 429 with Retry-After")
    func rateQuota() async throws {
        let h = try Harness { $0.defaultQuotas = TenantQuotas(requestsPerMinute: 2) }
        try await h.test { client in
            for _ in 0..<2 {
                #expect(try await client.post("/v1/completions", ["model": "tiny", "prompt": "a", "max_tokens": 1]).status == .ok)
            }
            let r = try await client.post("/v1/completions", ["model": "tiny", "prompt": "a", "max_tokens": 1])
            #expect(r.status == .tooManyRequests)
            #expect(Int(r.headers[.retryAfter] ?? "") ?? 0 >= 1)
            #expect((r.error["message"] as? String)?.contains("2 requests per minute") == true)
        }
    }

    @Test("health, models and metrics")
    func serviceRoutes() async throws {
        let h = try Harness()
        try h.publish("default", "one", seed: 1)
        try await h.test { client in
            let health = try await client.get("/health")
            #expect(health.status == .ok)
            #expect(health.json["status"] as? String == "ok")
            let models = try await client.get("/v1/models")
            let ids = (models.json["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String } ?? []
            #expect(ids == ["tiny", "default/one"])
            #expect(try await client.get("/v1/models/default%2Fone").json["owned_by"] as? String == "default")
            #expect(try await client.get("/v1/models/default/one").status == .ok)
            #expect(try await client.get("/v1/models/tiny").json["object"] as? String == "model")
            #expect(try await client.get("/v1/models/default/missing").status == .notFound)
            _ = try await client.post("/v1/completions", ["model": "default/one", "prompt": "a", "max_tokens": 3])
            let metrics = try await client.get("/metrics").text
            #expect(metrics.contains("graft_requests_total"))
            #expect(metrics.contains("graft_time_to_first_token_seconds_bucket"))
            #expect(metrics.contains("graft_tokens_generated_total{tenant=\"default\"}"))
            #expect(metrics.contains("graft_adapter_loads_total 1"))
            // Memory: the peak is at least the current resident size; the budgets are the configured ones.
            func value(_ name: String) -> Double? {
                metrics.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
            }
            let rss = try #require(value("process_resident_memory_bytes"))
            let peak = try #require(value("process_resident_memory_peak_bytes"))
            #expect(rss > 0 && peak >= rss)
            #expect(value("graft_adapter_cache_budget_bytes") == Double(512 << 20))
            #expect(value("graft_prefix_cache_budget_bytes") == Double(EngineLimits().prefixCacheBytes))
            #expect(value("graft_kv_budget_bytes") == Double(EngineLimits().kvBudgetBytes))
            #expect(value("graft_kv_reserved_bytes") == 0)
            #expect((value("graft_model_weights_bytes") ?? 0) > 0)
        }
    }
}
