import Engine
import Foundation
import Hub
import Hummingbird
import LlamaModel
import Logging

/// Resolves the bearer key to a principal. With no tenants configured the daemon is
/// single-user: the socket's file mode is the protection and every request is `default`.
struct AuthMiddleware: RouterMiddleware {
    let server: GraftServer

    func handle(_ request: Request, context: GraftContext, next: (Request, GraftContext) async throws -> Response) async throws -> Response {
        if request.uri.path == "/health" { return try await next(request, context) }
        let tenants: [TenantRecord]
        do { tenants = try server.tenants.all() } catch {
            throw APIError(.internalServerError, "the tenants file cannot be read: \(error)", shouldRetry: false)
        }
        if tenants.isEmpty { return try await next(request, context) }
        guard let header = request.headers[.authorization] else {
            throw APIError(.unauthorized, "missing 'Authorization: Bearer <key>' header", code: "missing_api_key")
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer",
              let record = try server.tenants.authenticate(key: String(parts[1]).trimmingCharacters(in: .whitespaces)) else {
            throw APIError(.unauthorized, "the API key is not valid", code: "invalid_api_key")
        }
        var context = context
        context.principal = Principal(tenant: record.name, isAdmin: record.admin)
        return try await next(request, context)
    }
}

/// One log line per request (method, path, tenant, adapter, status, tokens, milliseconds),
/// written when the response body has been sent; counts requests by route and status.
struct RequestLogMiddleware: RouterMiddleware {
    let server: GraftServer

    func handle(_ request: Request, context: GraftContext, next: (Request, GraftContext) async throws -> Response) async throws -> Response {
        let start = Clock.now
        let notes = context.notes
        let logger = server.logger, metrics = server.metrics
        let method = request.method.rawValue, path = request.uri.path
        @Sendable func log(_ status: Int, principal: Principal) {
            let ms = Int((Clock.now - start) * 1000)
            let route = context.endpointPath ?? "unmatched"
            metrics.request(route: route, method: method, status: status)
            let tokens = notes.tokens.map(String.init) ?? "-"
            logger.info("\(method) \(path) tenant=\(principal.tenant) adapter=\(notes.adapter ?? "-") status=\(status) tokens=\(tokens) ms=\(ms)")
        }
        do {
            var response = try await next(request, context)
            let status = response.status.code
            let principal = context.principal
            let body = response.body
            response.body = ResponseBody(contentLength: body.contentLength) { writer in
                defer { log(status, principal: principal) }
                try await body.write(writer)
            }
            return response
        } catch let error as HTTPResponseError {
            log(error.status.code, principal: context.principal)
            throw error
        }
    }
}

/// Maps whatever a route throws to OpenAI's error shape; a path that exists under other
/// methods answers 405 with `Allow`.
struct APIErrorMiddleware: RouterMiddleware {
    let routes: RouteTable

    func handle(_ request: Request, context: GraftContext, next: (Request, GraftContext) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as HTTPError where error.status == .notFound {  // only the router throws HTTPError
            let allowed = routes.methods(for: request.uri.path)
            if !allowed.isEmpty {
                let methods = allowed.map(\.rawValue).joined(separator: ", ")
                var e = APIError(.methodNotAllowed, "\(request.method.rawValue) is not allowed on \(request.uri.path) (allowed: \(methods))")
                e.allow = methods
                throw e
            }
            throw APIError(.notFound, "no route \(request.method.rawValue) \(request.uri.path)", code: "unknown_url")
        } catch let error as HTTPError {
            throw APIError(error.status, error.body ?? error.status.reasonPhrase)
        } catch let error as HTTPResponseError {
            throw APIError(error.status, error.status.reasonPhrase)
        } catch let error as EngineError {
            throw GraftServer.apiError(error)
        } catch is CancellationError {
            throw APIError(.serviceUnavailable, "the request was cancelled", retryAfter: 1)
        } catch {
            throw APIMapping.apiError(error)
        }
    }
}

/// Library errors as API errors.
enum APIMapping {
    static func apiError(_ error: any Error) -> APIError {
        switch error {
        case let e as AdapterStoreError:
            switch e {
            case .notFound, .otherTenant: return APIError.notFound("\(e)")
            case .invalidID: return APIError.badRequest("\(e)")
            }
        case let e as TenantError:
            switch e {
            case .exists: return APIError(.conflict, "\(e)", code: "tenant_exists", shouldRetry: false)
            case .notFound: return APIError.notFound("\(e)")
            case .invalid: return APIError.badRequest("\(e)")
            }
        case let e as MergeError: return APIError.badRequest("\(e)")
        case let e as ModelError: return APIError.badRequest("\(e)")
        default: return APIError(.internalServerError, "\(error)", shouldRetry: false)
        }
    }
}
