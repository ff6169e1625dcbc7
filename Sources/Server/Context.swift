import Hub
import Hummingbird
import NIOCore
import Logging
import Synchronization

/// Who is calling: a tenant (possibly an admin), resolved from the bearer key, or the single
/// user of a daemon with no tenants.
public struct Principal: Sendable, Equatable {
    public var tenant: String
    public var isAdmin: Bool

    /// The caller when no tenants are configured: everything is allowed.
    public static let singleUser = Principal(tenant: "default", isAdmin: true)

    /// The tenant a request acts for: the caller's own, or, for admins only, the one named.
    func acting(for named: String?) throws -> String {
        guard let named, named != tenant else { return tenant }
        guard isAdmin else {
            throw APIError(.forbidden, "only an admin can act for tenant '\(named)'", param: "tenant", code: "permission_denied")
        }
        do { try AdapterID.validate(named, what: "tenant") } catch { throw APIError.badRequest("\(error)", param: "tenant") }
        return named
    }
}

/// What a handler learned about a request, for the one log line written when it ends.
final class RequestNotes: Sendable {
    private let state = Mutex<(adapter: String?, tokens: Int?)>((nil, nil))

    func set(adapter: String? = nil, tokens: Int? = nil) {
        state.withLock { s in
            if let adapter { s.adapter = adapter }
            if let tokens { s.tokens = tokens }
        }
    }

    var adapter: String? { state.withLock { $0.adapter } }
    var tokens: Int? { state.withLock { $0.tokens } }
}

/// The request context of every route. Bodies are read by the routes themselves, against
/// the daemon's configured limit (checked against Content-Length before reading).
public struct GraftContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by the authentication middleware before any route runs.
    public var principal = Principal.singleUser
    let notes = RequestNotes()
    /// The connection, to notice a client that goes away.
    let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}
