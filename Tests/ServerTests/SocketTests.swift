import AsyncHTTPClient
import Engine
import Foundation
import Hub
import NIOCore
import Server
import TestSupport
import Testing

/// A daemon in this process on a real Unix socket.
final class LiveDaemon: Sendable {
    let harness: Harness
    let path: String
    let task: Task<Void, any Error>
    let handle = DaemonHandle()

    init(idleTimeout: Int64 = 30, configure: @escaping @Sendable (inout ServerConfiguration) -> Void = { _ in }) async throws {
        harness = try Harness { c in c.idleTimeoutSeconds = idleTimeout; configure(&c) }
        path = harness.hub.root.appendingPathComponent("graftd.sock").path
        let (server, path, handle) = (harness.server, path, handle)
        task = Task { try await runDaemon(server, listen: ListenOptions(socketPath: path), handle: handle) }
        for _ in 0..<500 where !socketAnswers(path) { try await Task.sleep(for: .milliseconds(10)) }
    }

    func stop() async {
        await handle.stop()
        _ = try? await task.value
        harness.close()
    }

    /// Sends raw bytes and returns what the server answers until it closes or `timeout` passes.
    func raw(_ bytes: [UInt8], timeout: Double = 5, closeAfterWrite: Bool = false) -> (text: String, closed: Bool) {
        let fd = RawSocket.connect(path)
        defer { close(fd) }
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if closeAfterWrite { return ("", true) }
        return RawSocket.readAll(fd, timeout: timeout)
    }
}

enum RawSocket {
    static func connect(_ path: String) -> Int32 {
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() { raw[i] = b }
        }
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        return s
    }

    /// Reads until EOF or the timeout; `closed` tells which.
    static func readAll(_ fd: Int32, timeout: Double) -> (text: String, closed: Bool) {
        var out: [UInt8] = []
        let deadline = Date().addingTimeInterval(timeout)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while Date() < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 50) > 0 else { continue }
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 { return (String(decoding: out, as: UTF8.self), true) }
            out += buffer[0..<n]
        }
        return (String(decoding: out, as: UTF8.self), false)
    }
}

@Suite("The daemon on a real Unix socket", .serialized)
struct SocketTests {
    @Test("the socket is owner-only, answers HTTP clients, refuses a second daemon and is removed on stop")
    func socketBasics() async throws {
        let d = try await LiveDaemon()
        var st = stat()
        #expect(lstat(d.path, &st) == 0)
        #expect(st.st_mode & 0o777 == 0o600)
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        var request = HTTPClientRequest(url: "http+unix://\(d.path.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)/v1/chat/completions")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: #"{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}"#))
        let response = try await client.execute(request, timeout: .seconds(30))
        #expect(response.status == .ok)
        let body = try await response.body.collect(upTo: 1 << 20)
        #expect(String(buffer: body).contains("chat.completion"))
        try await client.shutdown()

        await #expect(throws: DaemonError.self) {
            try await runDaemon(d.harness.server, listen: ListenOptions(socketPath: d.path))
        }
        await d.stop()
        #expect(!FileManager.default.fileExists(atPath: d.path))
    }

    @Test("a stale socket file left by a crash is replaced")
    func staleSocket() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("graft-stale-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("s.sock").path
        // Bind and close without unlinking: what a killed daemon leaves.
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, b) in path.utf8.enumerated() { raw[i] = b } }
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        close(s)
        #expect(FileManager.default.fileExists(atPath: path) && !socketAnswers(path))
        let h = try Harness()
        let handle = DaemonHandle()
        let task = Task { try await runDaemon(h.server, listen: ListenOptions(socketPath: path), handle: handle) }
        for _ in 0..<500 where !socketAnswers(path) { try await Task.sleep(for: .milliseconds(10)) }
        #expect(socketAnswers(path))
        await handle.stop()
        _ = try? await task.value
        h.close()
    }

    @Test("hostile clients: malformed HTTP, oversized headers and body, a byte-at-a-time client, a client that hangs up mid-stream")
    func hostileClients() async throws {
        let d = try await LiveDaemon(idleTimeout: 1)
        let garbage = d.raw(Array("NOT HTTP AT ALL\r\n\r\n".utf8))
        #expect(garbage.text.hasPrefix("HTTP/1.1 400"))
        #expect(garbage.closed)
        let bigHeader = d.raw(Array("GET /health HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 100_000))\r\n\r\n".utf8))
        #expect(bigHeader.text.hasPrefix("HTTP/1.1 400"))
        let manyHeaders = (0..<500).map { "X-H\($0): v\r\n" }.joined()
        #expect(d.raw(Array("GET /health HTTP/1.1\r\nHost: x\r\n\(manyHeaders)\r\n".utf8)).text.hasPrefix("HTTP/1.1 400"))
        let declared = d.raw(Array("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 999999999\r\n\r\n{".utf8))
        #expect(declared.text.hasPrefix("HTTP/1.1 413"))
        // A client that sends part of its headers and then nothing is cut off by the idle timeout.
        let slow = d.raw(Array("GET /health HTTP/1.1\r\nHo".utf8), timeout: 4)
        #expect(slow.closed)
        #expect(slow.text.isEmpty)
        // Hanging up during a long stream cancels the sequence within a step or two.
        let fd = RawSocket.connect(d.path)
        let body = #"{"model": "tiny", "prompt": "go", "max_tokens": 4000, "stream": true, "temperature": 0, "ignore_eos": true}"#
        let head = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n"
        _ = Array((head + body).utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        var buffer = [UInt8](repeating: 0, count: 512)
        _ = read(fd, &buffer, buffer.count)
        close(fd)
        #expect(await d.harness.server.engine.waitUntilIdle(timeout: 5))
        #expect(d.harness.server.engine.stats.tokensGenerated < 4000)
        // A client that sends a request for a long answer and closes its side at once (FIN):
        // the sequence is cancelled rather than generated in full, and nothing crashes.
        let before = d.harness.server.engine.stats.tokensGenerated
        let quiet = #"{"model": "tiny", "prompt": "go", "max_tokens": 4000, "ignore_eos": true}"#
        let quietHead = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(quiet.utf8.count)\r\n\r\n"
        _ = d.raw(Array((quietHead + quiet).utf8), closeAfterWrite: true)
        try await Task.sleep(for: .milliseconds(20))
        #expect(await d.harness.server.engine.waitUntilIdle(timeout: 5))
        #expect(d.harness.server.engine.stats.tokensGenerated - before < 4000)
        // The daemon still serves.
        #expect(d.raw(Array("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8)).text.hasPrefix("HTTP/1.1 200"))
        await d.stop()
    }
}
