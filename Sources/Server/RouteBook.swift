import Hummingbird
import Synchronization

/// The registered path patterns and their methods, so a request whose path exists under
/// another method gets 405 (with `Allow`) instead of 404.
final class RouteTable: Sendable {
    private let patterns = Mutex<[(method: HTTPRequest.Method, parts: [Substring])]>([])

    func add(_ method: HTTPRequest.Method, _ path: String) {
        patterns.withLock { $0.append((method, path.split(separator: "/"))) }
    }

    /// The methods registered for paths matching `path`.
    func methods(for path: String) -> [HTTPRequest.Method] {
        let parts = path.split(separator: "/")
        return patterns.withLock { $0.filter { Self.matches($0.parts, parts) }.map(\.method) }
    }

    private static func matches(_ pattern: [Substring], _ parts: [Substring]) -> Bool {
        var i = 0
        for (n, p) in pattern.enumerated() {
            if p == "**" { return parts.count > n }
            guard i < parts.count else { return false }
            if !(p == "*" || p.hasPrefix("{") || p.hasPrefix(":") || p == parts[i]) { return false }
            i += 1
        }
        return i == parts.count
    }
}

/// Registers routes on the router and records them in the table.
struct RouteBook {
    let router: Router<GraftContext>
    let table: RouteTable

    typealias Handler = @Sendable (Request, GraftContext) async throws -> Response

    func add(_ method: HTTPRequest.Method, _ path: String, _ handler: @escaping Handler) {
        table.add(method, path)
        router.on(RouterPath(path), method: method) { request, context in try await handler(request, context) }
    }
}
