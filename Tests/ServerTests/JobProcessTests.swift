import AdapterFormat
import DaemonClient
import Foundation
import Hub
import LlamaModel
import Server
import TestSupport
import Testing

/// graftd on the real model in a fresh hub, as a child process with its log in the hub.
final class DaemonProcess {
    let dir: URL
    let socket: String
    private(set) var process = Process()

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("graftd-jobs-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        socket = dir.appendingPathComponent("d.sock").path
    }

    func start(model: String) async throws {
        process = Process()
        process.executableURL = GraftdBinary.url!
        process.arguments = ["--registry", dir.path, "--model", model, "--socket", socket]
        let log = dir.appendingPathComponent("graftd.log")
        if !FileManager.default.fileExists(atPath: log.path) { _ = FileManager.default.createFile(atPath: log.path, contents: nil) }
        let handle = try FileHandle(forWritingTo: log)
        handle.seekToEndOfFile()
        process.standardError = handle
        process.standardOutput = handle
        try process.run()
        for _ in 0..<3000 where !socketAnswers(socket) { try await Task.sleep(for: .milliseconds(10)) }
        #expect(socketAnswers(socket), "graftd did not start: \(self.log())")
    }

    func log() -> String { (try? String(contentsOf: dir.appendingPathComponent("graftd.log"), encoding: .utf8)) ?? "" }

    func stop() {
        if process.isRunning { process.terminate(); process.waitUntilExit() }
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: dir)
    }
}

@Suite("graftd jobs as a process: kill -9 and resume, the SDK fine-tuning loop", .serialized,
       .enabled(if: GraftdBinary.url != nil && TestData.runRealModelTests))
struct JobProcessTests {
    @Test("after kill -9 a running job resumes from its checkpoint and ends equal to an uninterrupted run; a queued job stays queued; no file is half-written")
    func killAndResume() async throws {
        let model = try #require(TestData.realModelPath)
        let daemon = try DaemonProcess()
        try await daemon.start(model: model)
        let client = DaemonClient(socketPath: daemon.socket)
        let rows = try String(contentsOf: TestData.root.appendingPathComponent("docs/examples/facts/train.jsonl"), encoding: .utf8)
            .split(separator: "\n").prefix(16).joined(separator: "\n") + "\n"
        let data = daemon.dir.appendingPathComponent("facts16.jsonl")
        try rows.write(to: data, atomically: true, encoding: .utf8)
        let uploaded = try await client.upload("/v1/files?purpose=fine-tune&filename=facts16.jsonl", file: data.path)
        let file = try #require(uploaded["id"] as? String)
        func create(_ suffix: String) async throws -> String {
            let job = try await client.call(.POST, "/v1/fine_tuning/jobs", json: [
                "model": "SmolLM2-135M-Instruct.Q4_1", "training_file": file, "suffix": suffix, "seed": 42,
                "hyperparameters": ["n_epochs": 2, "batch_size": 4]])
            return try #require(job["id"] as? String)
        }
        let interrupted = try await create("interrupted")
        let queued = try await create("uninterrupted")
        // Kill as soon as the first checkpoint (end of epoch 1, step 4 of 8) exists.
        let checkpoints = Hub(root: daemon.dir).jobsDirectory(tenant: "default")
            .appendingPathComponent(interrupted).appendingPathComponent("checkpoints/step-00000004").path
        for _ in 0..<6000 where !FileManager.default.fileExists(atPath: checkpoints) {
            try await Task.sleep(for: .milliseconds(10))
        }
        kill(daemon.process.processIdentifier, SIGKILL)
        daemon.process.waitUntilExit()

        let hub = Hub(root: daemon.dir)
        let jobA = try hub.job(interrupted), jobB = try hub.job(queued)
        let stateA = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: jobA.stateURL)) as? [String: Any])
        #expect(stateA["status"] as? String == "running")
        let stateB = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: jobB.stateURL)) as? [String: Any])
        #expect(stateB["status"] as? String == "queued")
        try expectNothingHalfWritten(hub.root)

        try await daemon.start(model: model)
        let afterRestart = try await client.call(.GET, "/v1/fine_tuning/jobs/\(queued)")
        #expect(afterRestart["status"] as? String == "queued", "the queued job stays queued")
        var a: [String: Any] = [:], b: [String: Any] = [:]
        for _ in 0..<1200 {
            a = try await client.call(.GET, "/v1/fine_tuning/jobs/\(interrupted)")
            b = try await client.call(.GET, "/v1/fine_tuning/jobs/\(queued)")
            if b["status"] as? String != "queued" && b["status"] as? String != "running" { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(a["status"] as? String == "succeeded" && b["status"] as? String == "succeeded", "\(a)\n\(b)\n\(daemon.log())")
        let events = try await client.call(.GET, "/v1/fine_tuning/jobs/\(interrupted)/events?limit=1000")["data"] as? [[String: Any]] ?? []
        #expect(events.contains { ($0["message"] as? String ?? "").hasPrefix("Fine-tuning job resumed at step 4 of 8") })
        let steps = events.compactMap { ($0["data"] as? [String: Any])?["step"] as? Int }
        #expect(steps.sorted() == Array(1...8), "each step recorded once, those after the checkpoint from the resumed run")

        func tensors(_ id: String) throws -> [LoRATarget: LoRAPair] {
            let stored = try hub.resolveAdapter(AdapterID(parsing: id))
            return try GraftFile.decode([UInt8](Data(contentsOf: stored.url))).0.pairs
        }
        let resumed = try tensors(try #require(a["fine_tuned_model"] as? String))
        let uninterrupted = try tensors(try #require(b["fine_tuned_model"] as? String))
        #expect(!resumed.isEmpty && resumed == uninterrupted, "the resumed run's adapter equals the uninterrupted run's, bit for bit")
        daemon.stop()
    }

    /// Every file the hub lists is whole: JSON parses, adapters and checkpoints decode, every
    /// event line parses.
    func expectNothingHalfWritten(_ root: URL) throws {
        let files = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)?.compactMap { $0 as? URL } ?? []
        for url in files where !url.lastPathComponent.hasPrefix(".") {
            switch url.pathExtension {
            case "json":
                #expect((try? JSONSerialization.jsonObject(with: Data(contentsOf: url))) != nil, "\(url.path) is whole")
            case "graft":
                #expect((try? GraftFile.decode([UInt8](Data(contentsOf: url)))) != nil, "\(url.path) decodes")
            case "jsonl" where url.lastPathComponent == "events.jsonl":
                for line in try Data(contentsOf: url).split(separator: 0x0A) {
                    #expect((try? JSONSerialization.jsonObject(with: Data(line))) != nil, "every event line of \(url.path) parses")
                }
            default: break
            }
        }
        for dir in files where dir.lastPathComponent.hasPrefix("step-") {
            for name in ["adapter.graft", "optimizer.bin"] {
                #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent(name).path),
                        "checkpoint \(dir.path) is complete")
            }
        }
    }

    @Test("graft train against the daemon uploads, creates and follows the job; Ctrl-C detaches and the job goes on")
    func cliThroughDaemon() async throws {
        let model = try #require(TestData.realModelPath)
        let daemon = try DaemonProcess()
        try await daemon.start(model: model)
        let rows = try String(contentsOf: TestData.root.appendingPathComponent("docs/examples/facts/train.jsonl"), encoding: .utf8)
            .split(separator: "\n").prefix(16).joined(separator: "\n") + "\n"
        let data = daemon.dir.appendingPathComponent("facts16.jsonl")
        try rows.write(to: data, atomically: true, encoding: .utf8)
        let graft = GraftdBinary.url!.deletingLastPathComponent().appendingPathComponent("graft")

        func train(_ name: String, epochs: Int) throws -> (Process, Pipe, LockedText) {
            let p = Process()
            p.executableURL = graft
            p.arguments = ["train", data.path, "--name", name, "--epochs", String(epochs), "--registry", daemon.dir.path,
                           "--socket", daemon.socket]
            let out = Pipe(), err = Pipe()
            p.standardOutput = out
            p.standardError = err
            let text = LockedText()
            err.fileHandleForReading.readabilityHandler = { text.append($0.availableData) }
            try p.run()
            return (p, out, text)
        }
        let (first, _, log) = try train("detached", epochs: 2)
        for _ in 0..<1200 where !log.value.contains("step 1/8") { try await Task.sleep(for: .milliseconds(50)) }
        #expect(log.value.contains("created in the daemon"), "\(log.value)")
        kill(first.processIdentifier, SIGINT)
        try await onOwnThread { first.waitUntilExit() }
        #expect(first.terminationStatus == 130)
        #expect(log.value.contains("detached") && log.value.contains("graft jobs events"), "\(log.value)")
        let jobID = try #require(log.value.split(separator: " ").first { $0.hasPrefix("ftjob-") }.map(String.init))

        let (second, out, _) = try train("attached", epochs: 1)
        let printed = try await onOwnThread {
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            second.waitUntilExit()
            return text
        }
        #expect(second.terminationStatus == 0 && printed == "default/attached@1\n", "\(printed)")
        let client = DaemonClient(socketPath: daemon.socket)
        let job = try await client.call(.GET, "/v1/fine_tuning/jobs/\(jobID)")
        #expect(job["status"] as? String == "succeeded", "the detached job went on and finished first: \(job)")
        daemon.stop()
    }

    @Test("the README's fine-tuning loop with the official SDK: upload, train with defaults, ask held-out questions")
    func sdkLoop() async throws {
        guard let python = OpenAISDKTests.python else {
            #expect(ProcessInfo.processInfo.environment["GRAFT_REQUIRE_SDK"] != "1", "no Python with the openai package")
            return
        }
        let daemon = try DaemonProcess()
        try await daemon.start(model: try #require(TestData.realModelPath))
        let (status, text) = try await OpenAISDKTests.runPython(python, "docs/examples/finetune_sdk.py", [
            daemon.socket, TestData.root.appendingPathComponent("docs/examples/facts").path])
        print(text)
        #expect(status == 0, "\(text)\n\(daemon.log().suffix(4000))")
        #expect(text.contains("held-out answers hold their fact"))
        daemon.stop()
    }
}

/// Text gathered from a pipe's handler thread.
final class LockedText: @unchecked Sendable {  // every access holds the lock
    private let lock = NSLock()
    private var data = Data()
    func append(_ d: Data) { lock.lock(); data.append(d); lock.unlock() }
    var value: String { lock.lock(); defer { lock.unlock() }; return String(decoding: data, as: UTF8.self) }
}
