import Hub
import LlamaModel
import Synchronization

/// Per-tenant request rate and concurrency, counted in memory.
final class QuotaTracker: Sendable {
    private struct TenantUse { var recent: [Double] = []; var streams = 0 }
    private let state = Mutex<[String: TenantUse]>([:])

    /// A claim on one concurrent stream; `release` gives it back (once).
    final class Claim: Sendable {
        private let tracker: QuotaTracker
        private let tenant: String
        private let released = Atomic<Bool>(false)
        init(_ tracker: QuotaTracker, _ tenant: String) { self.tracker = tracker; self.tenant = tenant }
        func release() {
            if !released.exchange(true, ordering: .relaxed) { tracker.state.withLock { $0[tenant]?.streams -= 1 } }
        }
    }

    /// Counts an inference request against `quotas`, or throws 429 saying which limit it hit.
    func admit(tenant: String, quotas: TenantQuotas, now: Double = Clock.now) throws -> Claim {
        try state.withLock { s in
            var use = s[tenant] ?? TenantUse()
            use.recent.removeAll { $0 <= now - 60 }
            if let limit = quotas.requestsPerMinute, use.recent.count >= limit {
                let wait = Int((use.recent.first! + 60 - now).rounded(.up))
                throw APIError(.tooManyRequests, "tenant '\(tenant)' is over its quota of \(limit) requests per minute",
                               code: "rate_limit_exceeded", retryAfter: max(1, min(wait, 60)))
            }
            if let limit = quotas.concurrentStreams, use.streams >= limit {
                throw APIError(.tooManyRequests,
                               "tenant '\(tenant)' already has \(use.streams) requests running, its quota of concurrent streams",
                               code: "concurrency_limit_exceeded", retryAfter: 1)
            }
            use.recent.append(now)
            use.streams += 1
            s[tenant] = use
        }
        return Claim(self, tenant)
    }
}
