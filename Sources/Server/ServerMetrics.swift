import Engine
import Foundation
import Hub
import Prometheus
import Synchronization

/// The daemon's Prometheus series. Each server has its own registry, so several servers can
/// live in one process (tests); `graftd` also routes swift-metrics into it.
public final class ServerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let firstToken: DurationHistogram
    private let perToken: DurationHistogram
    private let queueDepth: Gauge
    private let activeSequences: Gauge
    private let cacheBytes: Gauge
    private let prefixCacheBytes: Gauge
    private let residentBytes: Gauge
    private let residentPeakBytes: Gauge
    private let kvReservedBytes: Gauge
    private let adapterCacheBudget: Gauge
    private let prefixCacheBudget: Gauge
    private let kvBudget: Gauge
    private let weightsBytes: Gauge
    private let cacheHits: Counter
    private let cacheMisses: Counter
    private let cacheReads: Counter
    /// The loader's counts already added to the counters.
    private let reported = Mutex<(hits: Int, misses: Int, reads: Int)>((0, 0, 0))

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        let latencyBuckets: [Duration] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000].map { .milliseconds($0) }
        firstToken = registry.makeDurationHistogram(
            descriptor: Self.name("graft_time_to_first_token", "seconds", "Time from a request's arrival to its first generated token"),
            buckets: latencyBuckets)
        perToken = registry.makeDurationHistogram(
            descriptor: Self.name("graft_time_per_output_token", "seconds", "Mean time between generated tokens, per request"),
            buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500].map { .milliseconds($0) })
        queueDepth = registry.makeGauge(descriptor: Self.name("graft_queue_depth", "", "Requests waiting for a batch slot"))
        activeSequences = registry.makeGauge(descriptor: Self.name("graft_active_sequences", "", "Sequences being decoded"))
        cacheBytes = registry.makeGauge(descriptor: Self.name("graft_adapter_cache", "bytes", "Bytes of adapters held in memory"))
        prefixCacheBytes = registry.makeGauge(descriptor: Self.name("graft_prefix_cache", "bytes",
                                                                    "Bytes of prompt keys and values kept for reuse"))
        residentBytes = registry.makeGauge(descriptor: Self.name("process_resident_memory", "bytes", "Resident memory of the daemon"))
        residentPeakBytes = registry.makeGauge(descriptor: Self.name("process_resident_memory_peak", "bytes",
                                                                     "Highest resident memory of the daemon since it started"))
        kvReservedBytes = registry.makeGauge(descriptor: Self.name("graft_kv_reserved", "bytes",
                                                                   "Key/value memory reserved by the active sequences"))
        adapterCacheBudget = registry.makeGauge(descriptor: Self.name("graft_adapter_cache_budget", "bytes",
                                                                      "Configured memory for adapters kept loaded"))
        prefixCacheBudget = registry.makeGauge(descriptor: Self.name("graft_prefix_cache_budget", "bytes",
                                                                     "Configured memory for the prefix cache"))
        kvBudget = registry.makeGauge(descriptor: Self.name("graft_kv_budget", "bytes",
                                                            "Configured key/value memory for active sequences"))
        weightsBytes = registry.makeGauge(descriptor: Self.name("graft_model_weights", "bytes", "Bytes of the base model's weights in memory"))
        cacheHits = registry.makeCounter(descriptor: Self.name("graft_adapter_cache_hits", "total", "Adapter lookups served from memory"))
        cacheMisses = registry.makeCounter(descriptor: Self.name("graft_adapter_cache_misses", "total",
                                                                 "Adapter lookups that missed the cache"))
        cacheReads = registry.makeCounter(descriptor: Self.name("graft_adapter_loads", "total", "Adapter files read from the hub"))
    }

    private static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: metric, unitName: unit, helpText: help)
    }

    func request(route: String, method: String, status: Int) {
        registry.makeCounter(descriptor: Self.name("graft_requests", "total", "HTTP requests by route and status"),
                             labels: [("route", route), ("method", method), ("status", String(status))]).increment()
    }

    func completion(tenant: String, _ c: Completion) {
        registry.makeCounter(descriptor: Self.name("graft_tokens_generated", "total", "Completion tokens generated, per tenant"),
                             labels: [("tenant", tenant)]).increment(by: Int64(c.completionTokens))
        registry.makeCounter(descriptor: Self.name("graft_prompt_tokens", "total", "Prompt tokens processed, per tenant"),
                             labels: [("tenant", tenant)]).increment(by: Int64(c.promptTokens))
        registry.makeCounter(descriptor: Self.name("graft_prompt_tokens_cached", "total",
                                                   "Prompt tokens taken from the prefix cache instead of computed, per tenant"),
                             labels: [("tenant", tenant)]).increment(by: Int64(c.cachedPromptTokens))
        firstToken.record(.milliseconds(Int64(c.firstTokenSeconds * 1000)))
        if c.completionTokens > 1 {
            perToken.record(.microseconds(Int64(c.decodeSeconds * 1e6 / Double(c.completionTokens - 1))))
        }
    }

    func inferenceRequest(tenant: String) {
        registry.makeCounter(descriptor: Self.name("graft_inference_requests", "total", "Completion and chat requests accepted, per tenant"),
                             labels: [("tenant", tenant)]).increment()
    }

    /// The Prometheus text, with the gauges read from the engine and the adapter cache now.
    func exposition(engine: InferenceEngine, loader: AdapterLoader) -> [UInt8] {
        let s = engine.stats
        queueDepth.set(to: Double(s.queued))
        activeSequences.set(to: Double(s.active))
        cacheBytes.set(to: Double(loader.cachedBytes))
        prefixCacheBytes.set(to: Double(s.prefixCacheBytes))
        kvReservedBytes.set(to: Double(s.kvReservedBytes))
        if let rss = Self.residentMemory() { residentBytes.set(to: Double(rss)) }
        if let peak = Self.residentMemory(field: "VmHWM:") { residentPeakBytes.set(to: Double(peak)) }
        adapterCacheBudget.set(to: Double(loader.budgetBytes))
        prefixCacheBudget.set(to: Double(engine.limits.prefixCacheBytes))
        kvBudget.set(to: Double(engine.limits.kvBudgetBytes))
        weightsBytes.set(to: Double(engine.model.weights.byteCount))
        let counts = loader.counts
        reported.withLock { r in
            cacheHits.increment(by: Int64(counts.hits - r.hits))
            cacheMisses.increment(by: Int64(counts.misses - r.misses))
            cacheReads.increment(by: Int64(counts.reads - r.reads))
            r = counts
        }
        return registry.emitToBuffer()
    }

    /// VmRSS of this process (or another field of /proc/self/status given in kB, such as
    /// VmHWM, the peak), in bytes.
    static func residentMemory(field: String = "VmRSS:") -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix(field) {
            return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }.map { $0 * 1024 }
        }
        return nil
    }
}
