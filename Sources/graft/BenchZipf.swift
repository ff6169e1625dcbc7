import AdapterFormat
import DaemonClient
import Foundation
import GGUF
import Hub
import LlamaModel

/// Draws ranks 0..<n with probability proportional to 1/(rank+1)^s (Zipf), from a seeded
/// generator, so a run repeats its sequence of adapters exactly.
struct ZipfSampler {
    private let cumulative: [Double]
    private var rng: SeededGenerator

    init(count n: Int, exponent s: Double, seed: UInt64) {
        precondition(n >= 1)
        var sum = 0.0
        var c: [Double] = []
        for k in 1...n {
            sum += 1 / pow(Double(k), s)
            c.append(sum)
        }
        cumulative = c.map { $0 / sum }
        rng = SeededGenerator(seed: seed)
    }

    /// Probability of `rank`.
    func probability(_ rank: Int) -> Double { cumulative[rank] - (rank > 0 ? cumulative[rank - 1] : 0) }

    mutating func next() -> Int {
        let u = Double(rng.next() >> 11) / Double(1 << 53)
        // First rank whose cumulative probability exceeds u.
        var lo = 0, hi = cumulative.count - 1
        while lo < hi {
            let mid = (lo + hi) / 2
            if cumulative[mid] > u { hi = mid } else { lo = mid + 1 }
        }
        return lo
    }
}

extension Bench {
    /// One run of the many-adapter workload: every client's requests, all on one adapter or
    /// each on an adapter drawn Zipf.
    struct ZipfScenario: Encodable {
        var adapters_used: Int
        var requests: Int
        var tokens: Int
        var seconds: Double
        var tokens_per_second: Double
        var request_latency_p50_ms: Double
        var request_latency_p99_ms: Double
        var ttft_p50_ms: Double
        var ttft_p99_ms: Double
        var token_latency_p50_ms: Double
        var token_latency_p99_ms: Double
        /// The largest resident memory sampled (every 200 ms) while it ran.
        var daemon_rss_mib: Double
        /// Adapter files the daemon read while it ran (cache misses).
        var adapter_loads: Int
        /// The most key/value memory the active sequences reserved (sampled with the RSS).
        var kv_reserved_peak_mib: Double
    }

    /// S-LoRA's workload scaled down: `--zipf-adapters` rank-16 adapters, `--zipf-clients`
    /// clients each streaming short chat answers back to back, each request's adapter drawn
    /// Zipf(`--zipf-exponent`); and the same requests on one adapter.
    struct ZipfReport: Encodable {
        var adapters: Int
        var clients: Int
        var exponent: Double
        var requests_per_client: Int
        var tokens_per_request: Int
        var rounds: Int
        /// Probability of the most used adapter, and the share of the 8 most used.
        var top_adapter_share: Double
        var top8_share: Double
        var one_adapter: [ZipfScenario]
        var zipf: [ZipfScenario]
        var one_adapter_tokens_per_second: Double
        var zipf_tokens_per_second: Double
        var zipf_over_one_adapter: Double
        /// Resident memory: the daemon before the workload's adapters were made, its peak
        /// since it started (VmHWM), and that baseline plus the configured adapter and prefix
        /// caches plus the key/value memory the sequences reserved at most.
        var daemon_rss_before_mib: Double
        var daemon_peak_rss_mib: Double
        var adapter_cache_budget_mib: Double
        var prefix_cache_budget_mib: Double
        var kv_reserved_peak_mib: Double
        var budgeted_mib: Double
        var peak_within_budgets: Bool
        var adapter_prepared_mib: Double
        var adapter_file_mib: Double
    }

    /// The requests each client makes per scenario.
    var zipfRequestsPerClient: Int { serveOptions.zipfRequests ?? 4 * serveOptions.serveRequests }

    /// - Parameter rssBefore: the daemon's resident bytes before the bench made or loaded anything.
    func runZipf(_ client: DaemonClient, base: String, rssBefore bytesBefore: Int) async throws -> ZipfReport {
        let o = serveOptions
        let hub = modelOptions.registryOptions.hub
        let n = o.zipfAdapters, clients = o.zipfClients, perClient = zipfRequestsPerClient, tokens = o.zipfTokens
        let rssBefore = Double(bytesBefore) / 1048576
        Terminal.note("writing \(n) rank-16 adapters for the Zipf(\(o.zipfExponent)) workload")
        let config = try LlamaConfig(gguf: GGUFFile(path: try hub.modelPath(base).path))
        let sha = (try? hub.catalog().model(named: base).sha256) ?? ""
        var published: [String] = []
        var fileBytes = 0
        defer { for i in 0..<n { _ = try? hub.deleteAdapter(try AdapterID(tenant: "bench", name: "zipf-\(i)")) } }
        for i in 0..<n {
            let adapter = benchAdapterValues(config, rank: 16, seed: 1000 + UInt64(i))
            let info = AdapterInfo(baseModel: base, baseModelSHA256: sha, tenant: "bench", name: "zipf-\(i)")
            let bytes = try GraftFile.encode(adapter, info: info)
            fileBytes = bytes.count
            published.append(try hub.publishAdapter(bytes, tenant: "bench", name: "zipf-\(i)").description)
        }
        let ids = published
        let preparedBytes = try PreparedAdapter(benchAdapterValues(config, rank: 16, seed: 1000), config: config).byteCount

        // Every client's sequence of adapters (ranks: 0 is the most popular) and prompts.
        var plan: [[(rank: Int, prompt: String)]] = []
        for c in 0..<clients {
            var zipf = ZipfSampler(count: n, exponent: o.zipfExponent, seed: 7919 + UInt64(c))
            plan.append((0..<perClient).map { r in (zipf.next(), Self.zipfPrompt(client: c, request: r)) })
        }
        let probe = ZipfSampler(count: n, exponent: o.zipfExponent, seed: 0)
        let top8 = (0..<min(8, n)).map(probe.probability).reduce(0, +)

        // Each adapter answers once (one token) before anything is timed, so the scenarios
        // start from the steady state: the cache holds what it can, loads are of evictions.
        for id in ids {
            _ = try await client.call(.POST, "/v1/chat/completions", json: [
                "model": id, "messages": [["role": "user", "content": "Warm up."]], "max_tokens": 1])
        }

        var one: [ZipfScenario] = [], many: [ZipfScenario] = []
        for round in 0..<max(1, o.zipfRounds) {
            let single = try await zipfScenario(client, plan: plan, tokens: tokens) { _ in ids[0] }
            one.append(single)
            Terminal.note(Self.describe(single, "one adapter, round \(round + 1)"))
            let spread = try await zipfScenario(client, plan: plan, tokens: tokens) { ids[$0] }
            many.append(spread)
            Terminal.note(Self.describe(spread, "\(n) adapters drawn Zipf(\(o.zipfExponent)), round \(round + 1)"))
        }
        func rate(_ s: [ZipfScenario]) -> Double { Double(s.map(\.tokens).reduce(0, +)) / s.map(\.seconds).reduce(0, +) }
        let peak = try await Self.metricSum(client, "process_resident_memory_peak_bytes") / 1048576
        let cacheBudget = try await Self.metricSum(client, "graft_adapter_cache_budget_bytes") / 1048576
        let prefixBudget = try await Self.metricSum(client, "graft_prefix_cache_budget_bytes") / 1048576
        let kvPeak = (one + many).map(\.kv_reserved_peak_mib).max() ?? 0
        let budgeted = rssBefore + cacheBudget + prefixBudget + kvPeak
        let report = ZipfReport(
            adapters: n, clients: clients, exponent: o.zipfExponent, requests_per_client: perClient, tokens_per_request: tokens,
            rounds: max(1, o.zipfRounds), top_adapter_share: probe.probability(0), top8_share: top8,
            one_adapter: one, zipf: many, one_adapter_tokens_per_second: rate(one), zipf_tokens_per_second: rate(many),
            zipf_over_one_adapter: rate(many) / rate(one),
            daemon_rss_before_mib: rssBefore, daemon_peak_rss_mib: peak, adapter_cache_budget_mib: cacheBudget,
            prefix_cache_budget_mib: prefixBudget, kv_reserved_peak_mib: kvPeak, budgeted_mib: budgeted,
            peak_within_budgets: peak > 0 && peak <= budgeted,
            adapter_prepared_mib: Double(preparedBytes) / 1048576, adapter_file_mib: Double(fileBytes) / 1048576)
        Terminal.note(String(format: "Zipf over one adapter: %.1f / %.1f tok/s = %.2fx; daemon peak RSS %.0f MiB, "
                             + "budgeted %.0f MiB (%.0f before + adapter cache %.0f + prefix cache %.0f + key/values %.0f)",
                             report.zipf_tokens_per_second, report.one_adapter_tokens_per_second, report.zipf_over_one_adapter,
                             peak, budgeted, rssBefore, cacheBudget, prefixBudget, kvPeak))
        return report
    }

    /// A chat question of its own for every request, so no two requests share more than the
    /// chat template's opening (the prefix cache cannot favour either scenario by reusing answers).
    static func zipfPrompt(client: Int, request: Int) -> String {
        let subjects = ["a lighthouse keeper", "a baker", "a lost kite", "a mountain guide", "an old clock", "a river",
                        "a chess player", "a library cat", "a night train", "a beekeeper", "a glassblower", "a storm"]
        return "Request \(client * 1000 + request): write two sentences about \(subjects[(client * 7 + request) % subjects.count])."
    }

    private static func describe(_ s: ZipfScenario, _ what: String) -> String {
        String(format: "%@: %d requests on %d adapter(s), %.1f tok/s; request p50 %.0f p99 %.0f ms; first token p50 %.0f "
               + "p99 %.0f ms; per token p50 %.1f p99 %.1f ms; %d adapter loads; RSS %.0f MiB",
               what, s.requests, s.adapters_used, s.tokens_per_second, s.request_latency_p50_ms, s.request_latency_p99_ms,
               s.ttft_p50_ms, s.ttft_p99_ms, s.token_latency_p50_ms, s.token_latency_p99_ms, s.adapter_loads, s.daemon_rss_mib)
    }

    /// Every client streams its planned requests back to back; `model` names the adapter of a rank.
    private func zipfScenario(_ client: DaemonClient, plan: [[(rank: Int, prompt: String)]], tokens: Int,
                              model: @escaping @Sendable (Int) -> String) async throws -> ZipfScenario {
        let loadsBefore = Int(try await Self.metricSum(client, "graft_adapter_loads_total"))
        let sampler = Task {
            var peak = (rss: 0, kv: 0)
            while !Task.isCancelled {
                if let rss = try? await Self.daemonRSS(client) { peak.rss = max(peak.rss, rss) }
                if let kv = try? await Self.metricSum(client, "graft_kv_reserved_bytes") { peak.kv = max(peak.kv, Int(kv)) }
                try? await Task.sleep(for: .milliseconds(200))
            }
            return peak
        }
        let start = Date()
        let samples = try await withThrowingTaskGroup(of: [StreamSample].self) { group in
            for (c, requests) in plan.enumerated() {
                let requests = requests.map { (model($0.rank), $0.prompt) }
                group.addTask {
                    var out: [StreamSample] = []
                    for (r, (id, prompt)) in requests.enumerated() {
                        out.append(try await Self.timedStream(client, model: id, tokens: tokens, seed: c * 1000 + r,
                                                              messages: [["role": "user", "content": prompt]]))
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
        let peak = await sampler.value
        let loads = Int(try await Self.metricSum(client, "graft_adapter_loads_total")) - loadsBefore
        let total = samples.map(\.tokens).reduce(0, +)
        let ttft = samples.map(\.firstToken), gaps = samples.flatMap(\.gaps), latency = samples.map(\.total)
        return ZipfScenario(adapters_used: Set(plan.flatMap { $0.map { model($0.rank) } }).count, requests: samples.count,
                             tokens: total, seconds: elapsed, tokens_per_second: Double(total) / elapsed,
                             request_latency_p50_ms: percentile(latency, 0.5) * 1000,
                             request_latency_p99_ms: percentile(latency, 0.99) * 1000,
                             ttft_p50_ms: percentile(ttft, 0.5) * 1000, ttft_p99_ms: percentile(ttft, 0.99) * 1000,
                             token_latency_p50_ms: percentile(gaps, 0.5) * 1000, token_latency_p99_ms: percentile(gaps, 0.99) * 1000,
                             daemon_rss_mib: Double(peak.rss) / 1048576, adapter_loads: loads,
                             kv_reserved_peak_mib: Double(peak.kv) / 1048576)
    }
}
