import AdapterFormat
import Foundation
import Hub
import Server
import TestSupport
import Testing

/// The `graftd` executable built beside the test bundle.
enum GraftdBinary {
    static let url: URL? = {
        let url = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("graftd")
        return FileManager.default.isExecutableFile(atPath: url.path) ? url : nil
    }()
}

@Suite("graftd as a process: start, serve, drain on SIGTERM", .serialized, .enabled(if: GraftdBinary.url != nil))
struct DaemonProcessTests {
    @Test("SIGTERM lets a stream in flight finish, refuses nothing half-done, removes the socket and exits 0")
    func gracefulDrain() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("graftd-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = dir.appendingPathComponent("tiny.gguf")
        try Data(TinyModel.gguf(TinyModel.Spec(context: 512))).write(to: model)
        let socket = dir.appendingPathComponent("d.sock").path
        let p = Process()
        p.executableURL = GraftdBinary.url!
        p.arguments = ["--registry", dir.path, "--model", model.path, "--socket", socket, "--drain-seconds", "20"]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = err
        try p.run()
        defer { if p.isRunning { p.terminate() } }
        for _ in 0..<1000 where !socketAnswers(socket) { try await Task.sleep(for: .milliseconds(10)) }
        #expect(socketAnswers(socket))

        // A second daemon on the same socket is refused with a clear message.
        let second = Process()
        second.executableURL = GraftdBinary.url!
        second.arguments = ["--registry", dir.path, "--model", model.path, "--socket", socket]
        let secondErr = Pipe()
        second.standardError = secondErr
        second.standardOutput = secondErr
        try second.run()
        second.waitUntilExit()
        #expect(second.terminationStatus != 0)
        #expect(String(decoding: secondErr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).contains("already serving"))

        // Start a long stream, then ask the daemon to stop while it runs.
        let fd = RawSocket.connect(socket)
        defer { close(fd) }
        let body = #"{"model": "tiny", "prompt": "go", "max_tokens": 300, "stream": true, "temperature": 0, "stop": []}"#
        let head = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n"
        _ = Array((head + body).utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        var first = [UInt8](repeating: 0, count: 256)
        _ = read(fd, &first, first.count)
        kill(p.processIdentifier, SIGTERM)
        let (rest, closed) = try await onOwnThread { RawSocket.readAll(fd, timeout: 30) }
        let stream = String(decoding: first, as: UTF8.self) + rest
        #expect(closed)
        #expect(stream.contains("data: [DONE]"), "the stream in flight was finished")
        #expect(stream.contains("\"finish_reason\":\"length\"") || stream.contains("\"finish_reason\":\"stop\""))
        p.waitUntilExit()
        let log = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(p.terminationStatus == 0, "\(log)")
        #expect(!FileManager.default.fileExists(atPath: socket))
        #expect(log.contains("POST /v1/completions tenant=default adapter=tiny status=200"), "one log line per request")
    }
}

/// The official `openai` Python SDK against graftd: $GRAFT_PYTHON names a Python with `openai`
/// and `httpx` (CI makes one); with GRAFT_REQUIRE_SDK=1 its absence is a failure.
@Suite("The official OpenAI SDK, unchanged, over the socket", .serialized, .enabled(if: GraftdBinary.url != nil))
struct OpenAISDKTests {
    static var python: String? {
        let env = ProcessInfo.processInfo.environment
        if let p = env["GRAFT_PYTHON"], FileManager.default.isExecutableFile(atPath: p) { return p }
        let venv = TestData.root.appendingPathComponent(".build/venv/bin/python").path
        return FileManager.default.isExecutableFile(atPath: venv) ? venv : nil
    }

    @Test("models, completions, chat (plain and streamed), mixes and errors through the SDK")
    func sdk() async throws {
        guard let python = Self.python else {
            #expect(ProcessInfo.processInfo.environment["GRAFT_REQUIRE_SDK"] != "1", "no Python with the openai package")
            return
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("graftd-sdk-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let modelFile = dir.appendingPathComponent("tiny.gguf")
        try Data(TinyModel.gguf(TinyModel.Spec(context: 512))).write(to: modelFile)
        let hub = Hub(root: dir)
        let model = try TinyModel.model(TinyModel.Spec(context: 512))
        let info = AdapterInfo(baseModel: "tiny", baseModelSHA256: "", tenant: "acme", name: "support")
        try hub.publishAdapter(try GraftFile.encode(randomAdapter(model.config, rank: 4, seed: 9), info: info),
                               tenant: "acme", name: "support")
        let socket = dir.appendingPathComponent("d.sock").path
        let daemon = Process()
        daemon.executableURL = GraftdBinary.url!
        daemon.arguments = ["--registry", dir.path, "--model", modelFile.path, "--socket", socket]
        daemon.standardError = FileHandle.nullDevice
        daemon.standardOutput = FileHandle.nullDevice
        try daemon.run()
        defer { daemon.terminate(); daemon.waitUntilExit() }
        for _ in 0..<1000 where !socketAnswers(socket) { try await Task.sleep(for: .milliseconds(10)) }
        let (status, text) = try await Self.runPython(python, "Tests/ServerTests/openai_sdk_check.py",
                                                      [socket, "tiny", "acme/support"])
        #expect(status == 0, "\(text)")
        #expect(text.contains("all SDK checks passed"), "\(text)")
    }

    /// Runs a script of the repository with `python` and returns its exit status and output.
    static func runPython(_ python: String, _ script: String, _ arguments: [String]) async throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [TestData.root.appendingPathComponent(script).path] + arguments
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        return try await onOwnThread {
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            return (p.terminationStatus, text)
        }
    }
}
