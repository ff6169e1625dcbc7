import AdapterFormat
import Engine
import Foundation
import Hub
import Hummingbird
import HummingbirdTesting
import LinearMerge
import LlamaModel
import Server
import TestSupport
import Testing
import TensorKit

/// A server over a tiny random model and a fresh hub in a temporary directory.
struct Harness {
    /// On a pool of its own: the shared pool's lock is not fair, and a long training test
    /// holding it in a loop could keep this model's requests waiting past their deadlines.
    /// Its long context lets the cancellation tests ask for answers far longer than a hang-up
    /// takes to be noticed, however fast the machine decodes.
    static let model = try! TinyModel.model(TinyModel.Spec(context: 4096), pool: ThreadPool(threadCount: 2))
    let hub: Hub
    let server: GraftServer

    init(limits: EngineLimits = EngineLimits(), configure: (inout ServerConfiguration) -> Void = { _ in }) throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("graft-server-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        hub = Hub(root: root)
        var configuration = ServerConfiguration(baseModelName: "tiny")
        configuration.maxBodyBytes = 1 << 20
        configure(&configuration)
        server = GraftServer(hub: hub, engine: InferenceEngine(model: Self.model, limits: limits), configuration: configuration,
                             mergeMethods: [LinearMerge()])
    }

    func close() {
        server.engine.shutdown()
        try? FileManager.default.removeItem(at: hub.root)
    }

    /// Publishes a random adapter as `tenant/name` and returns its id.
    @discardableResult
    func publish(_ tenant: String, _ name: String, seed: UInt64) throws -> AdapterID {
        let adapter = randomAdapter(Self.model.config, rank: 4, seed: seed)
        let info = AdapterInfo(baseModel: "tiny", baseModelSHA256: "", tenant: tenant, name: name)
        return try hub.publishAdapter(try GraftFile.encode(adapter, info: info), tenant: tenant, name: name)
    }

    /// Runs `body` against a live HTTP server on this harness (then shuts the engine down).
    func test(_ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        defer { close() }
        let app = Application(router: makeRouter(server), server: httpServer(server, listen: ListenOptions(socketPath: "")))
        try await app.test(.ahc(.http), body)
    }
}

extension TestClientProtocol {
    /// POSTs a JSON object.
    func post(_ uri: String, _ object: [String: Any], headers: HTTPFields = [:]) async throws -> TestResponse {
        var h = headers
        h[.contentType] = "application/json"
        return try await execute(uri: uri, method: .post, headers: h,
                                 body: ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: object)))
    }

    func get(_ uri: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        try await execute(uri: uri, method: .get, headers: headers)
    }
}

extension TestResponse {
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any] ?? [:] }
    var text: String { String(buffer: body) }
    /// The `error` object of an OpenAI-shaped error body.
    var error: [String: Any] { json["error"] as? [String: Any] ?? [:] }
    /// The JSON payloads of an SSE body, up to `[DONE]`.
    var events: [[String: Any]] {
        text.components(separatedBy: "\n\n").compactMap { block in
            guard block.hasPrefix("data: "), !block.hasPrefix("data: [DONE]") else { return nil }
            return (try? JSONSerialization.jsonObject(with: Data(block.dropFirst(6).utf8))) as? [String: Any]
        }
    }
}

func bearer(_ key: String) -> HTTPFields { [.authorization: "Bearer \(key)"] }
