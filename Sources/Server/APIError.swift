import Foundation
import HTTPTypes
import Hummingbird

/// An error as OpenAI's API reports it: `{"error": {"message", "type", "param", "code"}}`
/// with the matching HTTP status, plus the retry headers the official SDKs read.
public struct APIError: HTTPResponseError, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var message: String
    public var type: String
    public var param: String?
    public var code: String?
    /// Seconds after which a retry may succeed (429, 503).
    public var retryAfter: Int?
    /// False when retrying cannot help (a permanent conflict or server failure).
    public var shouldRetry: Bool?
    /// The methods a path allows (405).
    var allow: String?

    public init(_ status: HTTPResponse.Status, _ message: String, type: String? = nil, param: String? = nil,
                code: String? = nil, retryAfter: Int? = nil, shouldRetry: Bool? = nil) {
        self.status = status
        self.message = message
        self.type = type ?? Self.defaultType(status)
        self.param = param; self.code = code; self.retryAfter = retryAfter; self.shouldRetry = shouldRetry
    }

    public var description: String { "\(status.code) \(message)" }

    static func defaultType(_ status: HTTPResponse.Status) -> String {
        switch status.code {
        case 401: return "authentication_error"
        case 403: return "permission_error"
        case 404: return "not_found_error"
        case 409: return "conflict_error"
        case 413: return "request_too_large"
        case 429: return "rate_limit_error"
        case 500...: return "server_error"
        default: return "invalid_request_error"
        }
    }

    static func badRequest(_ message: String, param: String? = nil) -> APIError {
        APIError(.badRequest, message, param: param)
    }

    static func notFound(_ message: String, param: String? = nil) -> APIError {
        APIError(.notFound, message, param: param, code: "not_found")
    }

    /// The JSON body, for responses and for an error event inside a stream.
    var json: [String: Any] {
        ["error": ["message": message, "type": type, "param": param ?? NSNull(), "code": code ?? NSNull()] as [String: Any]]
    }

    var jsonBytes: [UInt8] { Array((try? JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])) ?? Data()) }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        if let allow { headers[.allow] = allow }
        if let shouldRetry { headers[HTTPField.Name("x-should-retry")!] = shouldRetry ? "true" : "false" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: jsonBytes)))
    }
}
