import AsyncHTTPClient
import Foundation
import NIOCore

/// A client of a running `graftd` over its Unix socket (HTTP on `http+unix`).
public struct DaemonClient: Sendable {
    public let socketPath: String
    public let apiKey: String?

    public init(socketPath: String, apiKey: String? = nil) {
        self.socketPath = socketPath
        self.apiKey = apiKey
    }

    /// An error answer of the daemon: its status and OpenAI-shaped message.
    public struct Failure: Error, CustomStringConvertible {
        public let status: Int
        public let message: String
        public var description: String { "the daemon answered \(status): \(message)" }
    }

    /// One client for the process, allowing many connections at once (the shared client's
    /// default of 8 per host would queue a ninth concurrent request behind long streams).
    private static let http: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 256
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    private func url(_ path: String) -> String {
        let encoded = socketPath.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? socketPath
        return "http+unix://\(encoded)\(path)"
    }

    public enum Method: Sendable { case GET, POST, DELETE }

    private func makeRequest(_ method: Method, _ path: String, json: [String: Any]?) throws -> HTTPClientRequest {
        var request = HTTPClientRequest(url: url(path))
        switch method {
        case .GET: request.method = .GET
        case .POST: request.method = .POST
        case .DELETE: request.method = .DELETE
        }
        if let apiKey { request.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: json)))
        }
        return request
    }

    /// Sends a request and returns the decoded JSON object; an error status throws `Failure`.
    public func call(_ method: Method, _ path: String, json: [String: Any]? = nil) async throws -> [String: Any] {
        let response = try await Self.http.execute(try makeRequest(method, path, json: json), timeout: .seconds(600))
        let body = try await response.body.collect(upTo: 256 << 20)
        let object = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] ?? [:]
        guard (200..<300).contains(Int(response.status.code)) else {
            let message = (object["error"] as? [String: Any])?["message"] as? String ?? String(decoding: body.readableBytesView, as: UTF8.self)
            throw Failure(status: Int(response.status.code), message: message)
        }
        return object
    }

    /// POSTs a file's bytes as the raw body (`POST /v1/files?...`) and returns the JSON answer.
    public func upload(_ path: String, file: String) async throws -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw Failure(status: 0, message: "cannot read \(file)")
        }
        var request = try makeRequest(.POST, path, json: nil)
        request.headers.add(name: "Content-Type", value: "application/octet-stream")
        request.body = .bytes(ByteBuffer(bytes: data))
        let response = try await Self.http.execute(request, timeout: .seconds(600))
        let body = try await response.body.collect(upTo: 16 << 20)
        let object = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] ?? [:]
        guard (200..<300).contains(Int(response.status.code)) else {
            let message = (object["error"] as? [String: Any])?["message"] as? String
                ?? String(decoding: body.readableBytesView, as: UTF8.self)
            throw Failure(status: Int(response.status.code), message: message)
        }
        return object
    }

    /// GETs a plain-text route (e.g. /metrics).
    public func text(_ path: String) async throws -> String {
        let response = try await Self.http.execute(try makeRequest(.GET, path, json: nil), timeout: .seconds(60))
        let body = try await response.body.collect(upTo: 64 << 20)
        let text = String(decoding: body.readableBytesView, as: UTF8.self)
        guard response.status.code == 200 else { throw Failure(status: Int(response.status.code), message: text) }
        return text
    }

    /// Sends a streaming request and calls `onEvent` with each server-sent event's JSON.
    public func stream(_ path: String, json: [String: Any], onEvent: ([String: Any]) throws -> Void) async throws {
        let response = try await Self.http.execute(try makeRequest(.POST, path, json: json), timeout: .seconds(3600))
        guard response.status.code == 200 else {
            let body = try await response.body.collect(upTo: 1 << 20)
            let object = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] ?? [:]
            let text = String(decoding: body.readableBytesView, as: UTF8.self)
            throw Failure(status: Int(response.status.code),
                          message: (object["error"] as? [String: Any])?["message"] as? String ?? text)
        }
        var pending: [UInt8] = []
        for try await chunk in response.body {
            pending += chunk.readableBytesView
            while let end = Self.eventEnd(pending) {
                let event = String(decoding: pending[..<end], as: UTF8.self)
                pending.removeFirst(end + 2)
                guard event.hasPrefix("data: ") else { continue }
                let payload = event.dropFirst(6)
                if payload.hasPrefix("[DONE]") { return }
                guard let object = (try? JSONSerialization.jsonObject(with: Data(payload.utf8))) as? [String: Any] else { continue }
                if let error = object["error"] as? [String: Any] {
                    throw Failure(status: 200, message: error["message"] as? String ?? "error event")
                }
                try onEvent(object)
            }
        }
    }

    private static func eventEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 2 else { return nil }
        for i in 0..<(bytes.count - 1) where bytes[i] == 0x0A && bytes[i + 1] == 0x0A { return i }
        return nil
    }
}
