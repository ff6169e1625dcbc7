import AdapterFormat
import Foundation
import LlamaModel
import TestSupport
import Testing

/// The `graft` executable built beside the test bundle.
enum Graft {
    static let binary: URL? = {
        let url = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("graft")
        return FileManager.default.isExecutableFile(atPath: url.path) ? url : nil
    }()
}

/// `graft train` as a process on a tiny model: interruption by signal or kill, and resume.
@Suite("graft train: checkpoints, signals and resume", .serialized, .enabled(if: Graft.binary != nil))
struct TrainCommandTests {
    struct Setup {
        let dir: URL
        let model: URL
        let data: URL

        init() throws {
            dir = FileManager.default.temporaryDirectory.appendingPathComponent("graft-train-\(UInt32.random(in: 0...UInt32.max))")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            model = dir.appendingPathComponent("tiny.gguf")
            try Data(TinyModel.gguf()).write(to: model)
            data = dir.appendingPathComponent("data.jsonl")
            let lines = (0..<12).map { #"{"question": "item \#($0)?", "answer": "value \#($0 * 7 % 10)"}"# }
            try lines.joined(separator: "\n").write(to: data, atomically: true, encoding: .utf8)
        }

        func hub(_ name: String) -> URL { dir.appendingPathComponent(name) }

        func arguments(hub: String, extra: [String] = []) -> [String] {
            ["train", data.path, "--tenant", "t", "--name", "a", "--model", model.path, "--registry", self.hub(hub).path,
             "--epochs", "150", "--batch-size", "4", "--save-every", "1", "--lr", "0.003", "--rank", "4", "--seed", "3",
             "--json"] + extra
        }

        func start(_ args: [String]) throws -> (Process, Pipe, Pipe) {
            let p = Process()
            p.executableURL = Graft.binary!
            p.arguments = args
            let out = Pipe(), err = Pipe()
            p.standardOutput = out
            p.standardError = err
            try p.run()
            return (p, out, err)
        }

        /// Runs graft to the end, waiting on a thread of its own (see `onOwnThread`).
        func run(_ args: [String]) async throws -> (status: Int32, out: String, err: String) {
            let (p, out, err) = try start(args)
            return try await onOwnThread {
                let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
                p.waitUntilExit()
                return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
            }
        }

        /// The only job directory in a hub.
        func job(_ hub: String) -> URL? {
            let jobs = self.hub(hub).appendingPathComponent("tenants/t/jobs")
            return (try? FileManager.default.contentsOfDirectory(at: jobs, includingPropertiesForKeys: nil))?.first
        }

        func checkpointCount(_ hub: String) -> Int {
            guard let job = job(hub) else { return 0 }
            return ((try? FileManager.default.contentsOfDirectory(atPath: job.appendingPathComponent("checkpoints").path)) ?? [])
                .filter { $0.hasPrefix("step-") }.count
        }

        /// Waits until the run has written a few checkpoints, then sends `signal`.
        func interrupt(_ p: Process, hub: String, signal: Int32) throws {
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline && p.isRunning {
                if let job = job(hub), FileManager.default.fileExists(atPath: job.appendingPathComponent("checkpoints").path),
                   ((try? FileManager.default.contentsOfDirectory(atPath: job.appendingPathComponent("checkpoints").path)) ?? [])
                       .contains(where: { $0.hasPrefix("step-") }) {
                    break
                }
                usleep(2000)
            }
            try #require(p.isRunning, "the run ended before it could be interrupted")
            kill(p.processIdentifier, signal)
        }

        func publishedAdapter(_ hub: String) throws -> LoRAAdapter {
            let url = self.hub(hub).appendingPathComponent("tenants/t/adapters/a/1.graft")
            return try GraftFile.decode([UInt8](Data(contentsOf: url))).0
        }
    }

    @Test("kill -9 mid-run, then --resume: the published adapter equals an uninterrupted run's")
    func killAndResume() async throws {
        let s = try Setup()
        defer { try? FileManager.default.removeItem(at: s.dir) }
        let whole = try await s.run(s.arguments(hub: "whole"))
        #expect(whole.status == 0, "\(whole.err)")
        #expect(whole.out.contains("\"id\":\"t\\/a@1\"") || whole.out.contains("\"id\":\"t/a@1\""), "\(whole.out)")

        let (p, _, _) = try s.start(s.arguments(hub: "killed"))
        try s.interrupt(p, hub: "killed", signal: SIGKILL)
        p.waitUntilExit()
        #expect(p.terminationReason == .uncaughtSignal)
        let job = try #require(s.job("killed"))
        let state = try String(contentsOf: job.appendingPathComponent("state.json"), encoding: .utf8)
        #expect(state.contains("running"))
        let resumed = try await s.run(["train", "--resume", job.lastPathComponent, "--model", s.model.path,
                                 "--registry", s.hub("killed").path, "--json"])
        #expect(resumed.status == 0, "\(resumed.err)")
        #expect(resumed.err.contains("resuming job \(job.lastPathComponent) at step "))
        let a = try s.publishedAdapter("whole"), b = try s.publishedAdapter("killed")
        #expect(a.pairs == b.pairs && a.rank == b.rank && a.alpha == b.alpha)
        // At most the newest two checkpoints are kept.
        #expect(s.checkpointCount("killed") <= 2)
    }

    @Test("SIGINT writes a checkpoint, exits 130 naming the job, and the job resumes")
    func interruptAndResume() async throws {
        let s = try Setup()
        defer { try? FileManager.default.removeItem(at: s.dir) }
        let (p, _, err) = try s.start(s.arguments(hub: "int"))
        try s.interrupt(p, hub: "int", signal: SIGINT)
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 130)
        let job = try #require(s.job("int"))
        #expect(message.contains("graft train --resume \(job.lastPathComponent)"), "\(message)")
        #expect(try String(contentsOf: job.appendingPathComponent("state.json"), encoding: .utf8).contains("interrupted"))
        let resumed = try await s.run(["train", "--resume", job.lastPathComponent, "--model", s.model.path,
                                 "--registry", s.hub("int").path])
        #expect(resumed.status == 0 && resumed.out.trimmingCharacters(in: .whitespacesAndNewlines) == "t/a@1", "\(resumed.err)")
        let again = try await s.run(["train", "--resume", job.lastPathComponent, "--model", s.model.path, "--registry", s.hub("int").path])
        #expect(again.status != 0 && again.err.contains("already succeeded"))
    }

    @Test("bad data stops before any job starts, naming the file, line and field")
    func badData() async throws {
        let s = try Setup()
        defer { try? FileManager.default.removeItem(at: s.dir) }
        try "{\"question\": \"q\", \"answer\": \"a\"}\n{\"question\": 5, \"answer\": \"a\"}\n".write(to: s.data, atomically: true, encoding: .utf8)
        let r = try await s.run(s.arguments(hub: "bad"))
        #expect(r.status != 0)
        #expect(r.err.contains("data.jsonl:2: field 'question': expected a string, got a number"), "\(r.err)")
        #expect(s.job("bad") == nil)
    }
}
