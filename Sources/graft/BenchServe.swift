import AdapterFormat
import ArgumentParser
import DaemonClient
import Foundation
import GGUF
import Hub
import LlamaModel

struct BenchServeOptions: ParsableArguments {
    @Option(name: .customLong("serve-tokens"), help: "Tokens generated per streamed request (--serve).")
    var serveTokens = 64

    @Option(name: .customLong("serve-requests"), help: "Requests each client makes per scenario (--serve).")
    var serveRequests = 3

    @Option(help: ArgumentHelp("The daemon's socket (--serve; default: <registry>/graftd.sock).", valueName: "path"))
    var socket: String?

    @Flag(name: .customLong("with-job"),
          help: "With --serve: measure training while serving instead (time to first token without and with a job, job speed).")
    var withJob = false

    @Option(name: .customLong("job-requests"), help: "Short requests per phase (--with-job).")
    var jobRequests = 12

    @Option(name: .customLong("zipf-adapters"),
            help: "With --serve: rank-16 adapters of the many-adapter workload, whose requests draw their adapter Zipf (0: skip it).")
    var zipfAdapters = 64

    @Option(name: .customLong("zipf-clients"), help: "Clients streaming requests back to back in the many-adapter workload (--serve).")
    var zipfClients = 8

    @Option(name: .customLong("zipf-exponent"), help: "Exponent s of the Zipf law adapters are drawn from: rank k has weight 1/k^s (--serve).")
    var zipfExponent = 1.1

    @Option(name: .customLong("zipf-tokens"), help: "Tokens generated per request of the many-adapter workload (--serve).")
    var zipfTokens = 32

    @Option(name: .customLong("zipf-requests"),
            help: "Requests each client makes per run of the many-adapter workload (--serve; default: 4 x --serve-requests).")
    var zipfRequests: Int?

    @Option(name: .customLong("zipf-rounds"),
            help: "Runs of the many-adapter workload, each on one adapter then on the Zipf-drawn ones (--serve).")
    var zipfRounds = 1

    @Flag(name: .customLong("zipf-only"), help: "With --serve: run only the many-adapter workload.")
    var zipfOnly = false

    func validate() throws {
        guard zipfAdapters >= 0, zipfClients >= 1, zipfTokens >= 1, zipfRounds >= 1, (zipfRequests ?? 1) >= 1,
              zipfExponent >= 0, zipfExponent.isFinite else {
            throw ValidationError("--zipf-clients, --zipf-tokens, --zipf-requests and --zipf-rounds must be at least 1, "
                                  + "--zipf-adapters and --zipf-exponent at least 0")
        }
    }

    @Option(name: .customLong("job-request-interval"), help: "Seconds between short requests while the job runs (--with-job).")
    var jobRequestInterval = 3.0
}

/// What one streamed request measured.
struct StreamSample: Sendable {
    var firstToken: Double
    var gaps: [Double]
    var tokens: Int
    /// From sending the request to the end of its stream.
    var total: Double
}

/// Percentile (0...1) of `values`, by nearest rank.
func percentile(_ values: [Double], _ p: Double) -> Double {
    guard !values.isEmpty else { return 0 }
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1))]
}

extension Bench {
    struct ServeScenario: Encodable {
        var streams: Int
        var adapters: Int
        var tokens_per_second: Double
        /// First token of the streams themselves (their chat prompts are prefilled while the others decode).
        var ttft_p50_ms: Double
        var ttft_p99_ms: Double
        /// A short prompt sent every 250 ms while the streams run: time to its (single) token.
        var probe_ttft_p50_ms: Double
        var probe_ttft_p99_ms: Double
        var token_latency_p50_ms: Double
        var token_latency_p99_ms: Double
        var daemon_rss_mib: Double
    }

    struct ServeReport: Encodable {
        var model: String
        var tokens_per_request: Int
        var scenarios: [ServeScenario]
        var different_over_same_adapter_8: Double
        var streams8_over_single: Double
        var short_completions_per_second: Double
        /// Of all prompt tokens the daemon has seen, the share taken from its prefix cache.
        var prompt_tokens_cached_share: Double
        var daemon_peak_rss_mib: Double
        var rss_8_adapters_over_single: Double
        /// The many-adapter workload (`--zipf-adapters`), when run.
        var many_adapters: ZipfReport?
    }

    /// Drives a running daemon: 1, 4 and 8 concurrent streams on one adapter and on as many
    /// different adapters as streams, then many 4-token completions.
    func runServe() async throws {
        let hub = modelOptions.registryOptions.hub
        let (client, base) = try await runningDaemon()
        // Before this run made or loaded anything: the base of the memory budget.
        let rssBefore = try await Self.daemonRSS(client)
        if serveOptions.zipfOnly {
            guard serveOptions.zipfAdapters >= 1 else { throw CLIError("--zipf-only needs --zipf-adapters of 1 or more") }
            return try writeReport(try await runZipf(client, base: base, rssBefore: rssBefore))
        }
        // Eight rank-16 adapters on every projection, written into the hub the daemon serves.
        let config = try LlamaConfig(gguf: GGUFFile(path: try hub.modelPath(base).path))
        var ids: [String] = []
        for i in 0..<8 {
            let adapter = benchAdapterValues(config, rank: 16, seed: 100 + UInt64(i))
            let info = AdapterInfo(baseModel: base, baseModelSHA256: (try? hub.catalog().model(named: base).sha256) ?? "",
                                   tenant: "bench", name: "r16-\(i)")
            ids.append(try hub.publishAdapter(try GraftFile.encode(adapter, info: info), tenant: "bench", name: "r16-\(i)").description)
        }
        defer { for i in 0..<8 { _ = try? hub.deleteAdapter(try AdapterID(tenant: "bench", name: "r16-\(i)")) } }
        // Each adapter answers the streams' chat once (one token) before anything is timed, so
        // every scenario measures serving: not first loads, and not a first prefill that the
        // daemon's prefix cache keeps for the adapter's later requests (which would favour
        // scenarios whose adapters happened to be used before).
        for id in ids {
            _ = try await client.call(.POST, "/v1/chat/completions", json: ["model": id, "messages": Self.streamMessages, "max_tokens": 1])
        }

        var scenarios: [ServeScenario] = []
        for adapters in [1, 0] {  // 1: all streams on one adapter; 0: one adapter per stream
            for streams in [1, 4, 8] {
                let s = try await scenario(client, streams: streams, models: (0..<streams).map { adapters == 1 ? ids[0] : ids[$0] })
                scenarios.append(s)
                Terminal.note(String(format: "%d stream(s), %d adapter(s): %.1f tok/s; first token p50 %.0f ms p99 %.0f ms "
                                     + "(short probe p50 %.0f p99 %.0f); per token p50 %.1f ms p99 %.1f ms; RSS %.0f MiB",
                                     streams, s.adapters, s.tokens_per_second, s.ttft_p50_ms, s.ttft_p99_ms,
                                     s.probe_ttft_p50_ms, s.probe_ttft_p99_ms,
                                     s.token_latency_p50_ms, s.token_latency_p99_ms, s.daemon_rss_mib))
            }
        }
        let rate = try await shortCompletions(client, model: ids[0])
        Terminal.note(String(format: "4-token completions from 8 clients: %.1f requests/s", rate))
        let same8 = scenarios.first { $0.streams == 8 && $0.adapters == 1 }!
        let diff8 = scenarios.first { $0.streams == 8 && $0.adapters == 8 }!
        // Both single-stream scenarios run one stream on one adapter; the faster is the base, so
        // a daemon still warming up during the first cannot flatter the ratio.
        let single = scenarios.filter { $0.streams == 1 }.max { $0.tokens_per_second < $1.tokens_per_second }!
        let prompts = try await Self.promptTokenCounts(client)
        Terminal.note(String(format: "8 streams / 1 stream: %.2fx; 8 adapters / 1 adapter: %.2fx; prompt tokens from the prefix cache: %d of %d",
                             same8.tokens_per_second / single.tokens_per_second, diff8.tokens_per_second / same8.tokens_per_second,
                             prompts.cached, prompts.total))
        let zipf = serveOptions.zipfAdapters > 0 ? try await runZipf(client, base: base, rssBefore: rssBefore) : nil
        let report = ServeReport(model: base, tokens_per_request: serveOptions.serveTokens, scenarios: scenarios,
                                 different_over_same_adapter_8: diff8.tokens_per_second / same8.tokens_per_second,
                                 streams8_over_single: same8.tokens_per_second / single.tokens_per_second,
                                 short_completions_per_second: rate,
                                 prompt_tokens_cached_share: prompts.total > 0 ? Double(prompts.cached) / Double(prompts.total) : 0,
                                 daemon_peak_rss_mib: scenarios.map(\.daemon_rss_mib).max() ?? 0,
                                 // against the first scenario (one stream, before any other ran): the smallest base
                                 rss_8_adapters_over_single: diff8.daemon_rss_mib / scenarios[0].daemon_rss_mib,
                                 many_adapters: zipf)
        try writeReport(report)
    }

    /// A client of the daemon `--socket` names (default: the hub's) and its base model.
    func runningDaemon() async throws -> (DaemonClient, String) {
        let path = serveOptions.socket ?? modelOptions.registryOptions.hub.root.appendingPathComponent("graftd.sock").path
        let client = DaemonClient(socketPath: path, apiKey: ProcessInfo.processInfo.environment["GRAFT_API_KEY"])
        let models = try? await client.call(.GET, "/v1/models")
        guard let base = (models?["data"] as? [[String: Any]])?.first?["id"] as? String else {
            throw CLIError("no daemon answers at \(path); start one with `graftd` (or `graft serve`) first")
        }
        return (client, base)
    }

    /// Prints the JSON report and writes it to `--output` when given.
    func writeReport(_ report: some Encodable) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let json = try encoder.encode(report)
        print(String(decoding: json, as: UTF8.self))
        if let output { try json.write(to: URL(fileURLWithPath: output), options: .atomic) }
    }

    /// `streams` clients, each streaming `serveRequests` requests one after another.
    private func scenario(_ client: DaemonClient, streams: Int, models: [String]) async throws -> ServeScenario {
        let tokens = serveOptions.serveTokens, requests = serveOptions.serveRequests
        let sampler = Task {
            var peak = 0
            while !Task.isCancelled {
                if let rss = try? await Self.daemonRSS(client) { peak = max(peak, rss) }
                try? await Task.sleep(for: .milliseconds(200))
            }
            return peak
        }
        let probing = Task {
            var times: [Double] = []
            try? await Task.sleep(for: .milliseconds(400))
            while !Task.isCancelled {
                let t0 = Date()
                guard (try? await client.call(.POST, "/v1/completions", json: [
                    "model": models[0], "prompt": "Hello", "max_tokens": 1, "temperature": 0])) != nil else { break }
                times.append(Date().timeIntervalSince(t0))
                try? await Task.sleep(for: .milliseconds(250))
            }
            return times
        }
        let start = Date()
        let samples = try await withThrowingTaskGroup(of: [StreamSample].self) { group in
            for c in 0..<streams {
                group.addTask {
                    var out: [StreamSample] = []
                    // Staggered starts, so requests arrive spread out as they would from independent users.
                    try await Task.sleep(for: .milliseconds(137 * c))
                    for r in 0..<requests {
                        out.append(try await Self.timedStream(client, model: models[c], tokens: tokens, seed: c * 100 + r))
                    }
                    return out
                }
            }
            var all: [StreamSample] = []
            for try await s in group { all += s }
            return all
        }
        let elapsed = Date().timeIntervalSince(start)
        sampler.cancel()
        probing.cancel()
        let probes = await probing.value
        let peak = max(await sampler.value, (try? await Self.daemonRSS(client)) ?? 0)
        let ttft = samples.map(\.firstToken), gaps = samples.flatMap(\.gaps)
        return ServeScenario(streams: streams, adapters: Set(models).count,
                             tokens_per_second: Double(samples.map(\.tokens).reduce(0, +)) / elapsed,
                             ttft_p50_ms: percentile(ttft, 0.5) * 1000, ttft_p99_ms: percentile(ttft, 0.99) * 1000,
                             probe_ttft_p50_ms: percentile(probes, 0.5) * 1000, probe_ttft_p99_ms: percentile(probes, 0.99) * 1000,
                             token_latency_p50_ms: percentile(gaps, 0.5) * 1000, token_latency_p99_ms: percentile(gaps, 0.99) * 1000,
                             daemon_rss_mib: Double(peak) / 1048576)
    }

    /// The chat every stream sends.
    static let streamMessages = [["role": "user", "content": "Write a short story about a lighthouse keeper."]]

    static func timedStream(_ client: DaemonClient, model: String, tokens: Int, seed: Int,
                            messages: [[String: String]] = streamMessages) async throws -> StreamSample {
        let body: [String: Any] = ["model": model, "messages": messages,
                                   "max_tokens": tokens, "temperature": 0.8, "seed": seed, "ignore_eos": true, "stream": true,
                                   "stream_options": ["include_usage": true]]
        let start = Date()
        var first: Double?
        var last = start
        var gaps: [Double] = []
        var count = 0
        try await client.stream("/v1/chat/completions", json: body) { event in
            if let usage = event["usage"] as? [String: Any] { count = usage["completion_tokens"] as? Int ?? count }
            guard let delta = (event["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any],
                  let piece = delta["content"] as? String, !piece.isEmpty else { return }
            let now = Date()
            if first == nil { first = now.timeIntervalSince(start) } else { gaps.append(now.timeIntervalSince(last)) }
            last = now
        }
        let end = Date().timeIntervalSince(start)
        return StreamSample(firstToken: first ?? end, gaps: gaps, tokens: count, total: end)
    }

    /// Requests per second for 4-token completions from 8 clients.
    private func shortCompletions(_ client: DaemonClient, model: String) async throws -> Double {
        let perClient = 10
        let start = Date()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for c in 0..<8 {
                group.addTask {
                    for r in 0..<perClient {
                        _ = try await client.call(.POST, "/v1/completions", json: [
                            "model": model, "prompt": "Count: one, two,", "max_tokens": 4, "ignore_eos": true, "seed": c * 10 + r])
                    }
                }
            }
            try await group.waitForAll()
        }
        return Double(8 * perClient) / Date().timeIntervalSince(start)
    }

    /// The daemon's resident memory, from its metrics.
    static func daemonRSS(_ client: DaemonClient) async throws -> Int {
        Int(try await metricSum(client, "process_resident_memory_bytes"))
    }

    /// Prompt tokens the daemon has processed, and those it took from its prefix cache (all tenants).
    static func promptTokenCounts(_ client: DaemonClient) async throws -> (total: Int, cached: Int) {
        (Int(try await metricSum(client, "graft_prompt_tokens_total")), Int(try await metricSum(client, "graft_prompt_tokens_cached_total")))
    }

    /// The sum of a metric's samples over all its labels.
    static func metricSum(_ client: DaemonClient, _ name: String) async throws -> Double {
        let text = try await client.text("/metrics")
        var sum = 0.0
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") || line.hasPrefix(name + "{") {
            sum += Double(line.split(separator: " ").last ?? "") ?? 0
        }
        return sum
    }
}
