import Engine
import Foundation
import Hub
import LlamaModel
import Logging

/// Settings of one daemon.
public struct ServerConfiguration: Sendable {
    /// The name clients use for the base model (`model` field).
    public var baseModelName: String
    /// SHA-256 of the base model file, recorded in adapters made here and checked on load.
    public var baseModelSHA256: String?
    /// Request bodies above this are refused with 413 (checked against Content-Length first).
    public var maxBodyBytes = 64 << 20
    /// Bytes of adapters kept in memory.
    public var adapterCacheBytes = 512 << 20
    /// Quotas for tenants whose record sets none.
    public var defaultQuotas = TenantQuotas()
    /// Seconds a connection may stay silent while a request is read.
    public var idleTimeoutSeconds: Int64 = 30
    /// Seconds shutdown waits for requests in flight before ending them.
    public var drainSeconds = 30.0
    /// Uploaded files above this are refused with 413.
    public var maxFileBytes = 512 << 20
    /// Fine-tuning jobs trained at the same time (their steps take turns on the engine).
    public var trainingSlots = 1
    /// Jobs one tenant may have waiting (validating or queued); more are refused with 429.
    public var maxQueuedJobsPerTenant = 8

    public init(baseModelName: String, baseModelSHA256: String? = nil) {
        self.baseModelName = baseModelName
        self.baseModelSHA256 = baseModelSHA256
    }
}

/// Everything the routes share: the hub, the engine, the adapter cache, tenants, quotas and
/// metrics. Handlers stay thin and call into these.
public final class GraftServer: Sendable {
    public let hub: Hub
    public let engine: InferenceEngine
    public let loader: AdapterLoader
    public let tenants: TenantStore
    public let configuration: ServerConfiguration
    public let metrics: ServerMetrics
    public let mergeMethods: [any MergeMethod]
    let quotas: QuotaTracker
    let logger: Logger
    /// Fine-tuning jobs: validation, the queue, and training through the engine.
    public let training: TrainingService

    public init(hub: Hub, engine: InferenceEngine, configuration: ServerConfiguration,
                mergeMethods: [any MergeMethod] = [], metrics: ServerMetrics = ServerMetrics(),
                logger: Logger = Logger(label: "graftd")) {
        self.hub = hub
        self.engine = engine
        self.configuration = configuration
        self.mergeMethods = mergeMethods
        self.metrics = metrics
        self.logger = logger
        loader = AdapterLoader(hub: hub, config: engine.model.config, baseModelSHA256: configuration.baseModelSHA256,
                               budgetBytes: configuration.adapterCacheBytes)
        tenants = TenantStore(hub: hub)
        quotas = QuotaTracker()
        training = TrainingService(hub: hub, engine: engine, slots: configuration.trainingSlots, logger: logger)
    }

    var model: LlamaModel { engine.model }

    /// The quotas that apply to `tenant`.
    func quotas(for tenant: String) -> TenantQuotas {
        let record = (try? tenants.all())?.first { $0.name == tenant }
        var q = configuration.defaultQuotas
        if let r = record?.quotas {
            q.adapterBytes = r.adapterBytes ?? q.adapterBytes
            q.requestsPerMinute = r.requestsPerMinute ?? q.requestsPerMinute
            q.concurrentStreams = r.concurrentStreams ?? q.concurrentStreams
            q.fileBytes = r.fileBytes ?? q.fileBytes
        }
        return q
    }
}
