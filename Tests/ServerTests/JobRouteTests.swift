import Foundation
import Hub
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Server
import Testing

let shouldRetryHeader = HTTPField.Name("x-should-retry")!

/// A job on `file` long enough (50 epochs, one row per step) to be queued, cancelled or
/// watched while it runs.
func longJob(_ file: String, epochs: Int = 50) -> [String: Any] {
    ["model": "tiny", "training_file": file, "hyperparameters": ["n_epochs": epochs, "batch_size": 1]]
}

/// Chat rows teaching the tiny model one answer.
func chatRows(_ n: Int, answer: String = "blue", padding: Int = 0) -> [UInt8] {
    var out = ""
    let filler = String(repeating: "so ", count: padding)
    for i in 0..<n {
        out += #"{"messages": [{"role": "user", "content": "\#(filler)What colour is the sky, question \#(i)?"}, "#
            + #"{"role": "assistant", "content": "\#(answer)"}]}"# + "\n"
    }
    return Array(out.utf8)
}

extension TestClientProtocol {
    func fileID(_ bytes: [UInt8], headers: HTTPFields = [:]) async throws -> String {
        let r = try await uploadFile(bytes, headers: headers)
        return try #require(r.json["id"] as? String, "\(r.text)")
    }

    /// Creates a job and returns its id.
    func createJob(_ body: [String: Any]) async throws -> String {
        let r = try await post("/v1/fine_tuning/jobs", body)
        return try #require(r.json["id"] as? String, "\(r.text)" as Comment)
    }

    /// Polls the job until its status is final (or `until` says stop).
    func waitForJob(_ id: String, headers: HTTPFields = [:], until: ([String: Any]) -> Bool = { _ in false })
        async throws -> [String: Any] {
        for _ in 0..<3000 {
            let job = try await get("/v1/fine_tuning/jobs/\(id)", headers: headers).json
            if ["succeeded", "failed", "cancelled"].contains(job["status"] as? String ?? "") || until(job) { return job }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("job \(id) did not finish")
        return [:]
    }
}

@Suite("Fine-tuning jobs over the API", .serialized)
struct JobRouteTests {
    @Test("a job validates, queues, trains, publishes an adapter that serves at once, with events and checkpoints")
    func lifecycle() async throws {
        let h = try Harness()
        try await h.test { client in
            let file = try await client.fileID(chatRows(12))
            let created = try await client.post("/v1/fine_tuning/jobs", [
                "model": "tiny", "training_file": file, "suffix": "sky", "seed": 7, "metadata": ["team": "a"],
                "method": ["type": "supervised", "supervised": ["hyperparameters": ["n_epochs": 3, "batch_size": 4,
                                                                                    "learning_rate_multiplier": "auto"]]],
                "lora": ["rank": 4, "target_modules": ["q_proj", "v_proj"]],
            ])
            #expect(created.status == .ok, "\(created.text)")
            let job = created.json
            let id = try #require(job["id"] as? String)
            #expect(id.hasPrefix("ftjob-") && id.count == 30)
            #expect(["validating_files", "queued", "running"].contains(job["status"] as? String ?? ""))
            #expect(job["object"] as? String == "fine_tuning.job" && job["seed"] as? Int == 7)
            for key in ["error", "fine_tuned_model", "finished_at", "trained_tokens", "validation_file"] {
                #expect(job.keys.contains(key), "the job object always has \(key)")
            }
            let hyper = try #require(job["hyperparameters"] as? [String: Any])
            #expect(hyper["n_epochs"] as? Int == 3 && hyper["batch_size"] as? Int == 4)
            #expect(hyper["learning_rate_multiplier"] as? Double == 1, "auto resolves to the default, reported as a number")
            #expect((job["lora"] as? [String: Any])?["target_modules"] as? [String] == ["q_proj", "v_proj"])

            let done = try await client.waitForJob(id)
            #expect(done["status"] as? String == "succeeded", "\(done)")
            #expect(done["fine_tuned_model"] as? String == "default/sky@1")
            #expect((done["trained_tokens"] as? Int ?? 0) > 0 && done["finished_at"] is Int)

            let chat = try await client.post("/v1/chat/completions", [
                "model": "default/sky@1", "messages": [["role": "user", "content": "What colour is the sky?"]], "max_tokens": 3,
            ])
            #expect(chat.status == .ok, "the tuned adapter serves as soon as the job succeeds")

            let events = try await client.get("/v1/fine_tuning/jobs/\(id)/events?limit=100").json["data"] as? [[String: Any]] ?? []
            #expect(events.first?["message"] as? String == "The job has successfully completed", "newest first")
            let metrics = events.filter { $0["type"] as? String == "metrics" }
            #expect(metrics.count == 9, "one metrics event per step (3 epochs of 3 steps)")
            #expect(((metrics.first?["data"] as? [String: Any])?["step"] as? Int) == 9)
            #expect(events.allSatisfy { $0["object"] as? String == "fine_tuning.job.event" && $0["created_at"] is Int })
            let page = try await client.get("/v1/fine_tuning/jobs/\(id)/events?limit=2").json
            #expect(page["has_more"] as? Bool == true)
            let last = try #require((page["data"] as? [[String: Any]])?.last?["id"] as? String)
            let next = try await client.get("/v1/fine_tuning/jobs/\(id)/events?limit=2&after=\(last)").json
            #expect((next["data"] as? [[String: Any]])?.first?["id"] as? String == events[2]["id"] as? String)

            let checkpoints = try await client.get("/v1/fine_tuning/jobs/\(id)/checkpoints").json
            let items = checkpoints["data"] as? [[String: Any]] ?? []
            #expect(items.map { $0["step_number"] as? Int } == [9, 6], "the last two checkpoints, newest first")
            #expect((items.first?["metrics"] as? [String: Any])?["train_loss"] is Double)
            #expect(items.first?["fine_tuning_job_id"] as? String == id && checkpoints["first_id"] as? String == items.first?["id"] as? String)
        }
    }

    @Test("a bad training file fails the job with file:line and the field, and bad requests name their parameter")
    func failures() async throws {
        let h = try Harness()
        try await h.test { client in
            var bad = chatRows(2)
            bad += Array(#"{"messages": [{"role": "robot", "content": "x"}]}"#.utf8) + [0x0A]
            let file = try await client.fileID(bad)
            let created = try await client.post("/v1/fine_tuning/jobs", ["model": "tiny", "training_file": file])
            #expect(created.status == .ok)
            let job = try await client.waitForJob(try #require(created.json["id"] as? String))
            #expect(job["status"] as? String == "failed")
            let error = job["error"] as? [String: Any] ?? [:]
            #expect(error["code"] as? String == "invalid_training_file" && error["param"] as? String == "training_file")
            let message = error["message"] as? String ?? ""
            #expect(message.contains("train.jsonl:3") && message.contains("role"), "\(message)")

            let good = try await client.fileID(chatRows(4))
            func refused(_ body: [String: Any], _ status: HTTPResponse.Status, param: String) async throws {
                let r = try await client.post("/v1/fine_tuning/jobs", body)
                #expect(r.status == status && r.error["param"] as? String == param, "\(body): \(r.text)")
                #expect(r.headers[shouldRetryHeader] != "true")
            }
            try await refused(["model": "gpt-4o", "training_file": good], .notFound, param: "model")
            try await refused(["model": "tiny", "training_file": "file-nope"], .notFound, param: "training_file")
            try await refused(["model": "tiny", "training_file": good, "validation_file": "file-nope"], .notFound, param: "validation_file")
            try await refused(["model": "tiny"], .badRequest, param: "training_file")
            try await refused(["model": "tiny", "training_file": good, "hyperparameters": ["n_epochs": 0]], .badRequest,
                              param: "hyperparameters.n_epochs")
            try await refused(["model": "tiny", "training_file": good, "method": ["type": "reinforcement"]], .badRequest,
                              param: "method.type")
            try await refused(["model": "tiny", "training_file": good, "suffix": "../x"], .badRequest, param: "suffix")
            try await refused(["model": "tiny", "training_file": good, "seed": -1], .badRequest, param: "seed")
            let other = try await client.uploadFile(chatRows(4), purpose: "batch")
            try await refused(["model": "tiny", "training_file": try #require(other.json["id"] as? String)], .badRequest,
                              param: "training_file")
            #expect(try await client.get("/v1/fine_tuning/jobs/ftjob-000000000000000000000000").status == .notFound)
        }
    }

    @Test("jobs queue in order, list with pagination; cancel works queued and running; a file in use cannot be deleted")
    func queueAndCancel() async throws {
        let h = try Harness()
        try await h.test { client in
            // Long rows: the first job takes far longer than the test needs to queue and cancel.
            let long = try await client.fileID(chatRows(64, padding: 50))
            let a = try await client.createJob(longJob(long))
            let b = try await client.createJob(longJob(long, epochs: 1))
            let c = try await client.createJob(longJob(long, epochs: 1))
            let running = try await client.waitForJob(a) { $0["status"] as? String == "running" }
            #expect(running["status"] as? String == "running")
            let queued = try await client.waitForJob(b) { $0["status"] as? String == "queued" }
            #expect(queued["status"] as? String == "queued", "one training slot: the second job waits")

            let page = try await client.get("/v1/fine_tuning/jobs?limit=2").json
            #expect((page["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == [c, b])
            #expect(page["has_more"] as? Bool == true)
            let rest = try await client.get("/v1/fine_tuning/jobs?limit=2&after=\(b)").json
            #expect((rest["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == [a])
            #expect(rest["has_more"] as? Bool == false)

            let inUse = try await client.execute(uri: "/v1/files/\(long)", method: .delete)
            #expect(inUse.status == .conflict && inUse.headers[shouldRetryHeader] == "false")

            let cancelB = try await client.post("/v1/fine_tuning/jobs/\(b)/cancel", [:])
            #expect(cancelB.json["status"] as? String == "cancelled")
            let cancelA = try await client.post("/v1/fine_tuning/jobs/\(a)/cancel", [:])
            #expect(cancelA.json["status"] as? String == "cancelled", "\(cancelA.text)")
            let checkpoints = try await client.get("/v1/fine_tuning/jobs/\(a)/checkpoints").json["data"] as? [Any] ?? []
            #expect(!checkpoints.isEmpty, "a cancelled job keeps its last checkpoint")
            let again = try await client.post("/v1/fine_tuning/jobs/\(a)/cancel", [:])
            #expect(again.status == .conflict && again.headers[shouldRetryHeader] == "false")
            let third = try await client.waitForJob(c)
            #expect(third["status"] as? String == "succeeded", "the next queued job runs once the slot is free")
            #expect(try await client.execute(uri: "/v1/files/\(long)", method: .delete).status == .ok)
        }
    }

    @Test("a tenant's waiting jobs are limited (429 that says so, not retried)")
    func waitingLimit() async throws {
        let h = try Harness { $0.maxQueuedJobsPerTenant = 1 }
        try await h.test { client in
            let long = try await client.fileID(chatRows(64, padding: 50))
            let first = try await client.createJob(longJob(long))
            _ = try await client.waitForJob(first) { $0["status"] as? String == "running" }
            let second = try await client.createJob(longJob(long))
            let third = try await client.post("/v1/fine_tuning/jobs", longJob(long))
            #expect(third.status == .tooManyRequests && third.error["code"] as? String == "too_many_queued_jobs")
            #expect(third.headers[shouldRetryHeader] == "false")
            for id in [second, first] { _ = try await client.post("/v1/fine_tuning/jobs/\(id)/cancel", [:]) }
        }
    }

    @Test("with two training slots two jobs run at once, taking turns on the engine")
    func twoSlots() async throws {
        let h = try Harness { $0.trainingSlots = 2 }
        try await h.test { client in
            let long = try await client.fileID(chatRows(64, padding: 50))
            let a = try await client.createJob(longJob(long))
            let b = try await client.createJob(longJob(long))
            _ = try await client.waitForJob(a) { $0["status"] as? String == "running" }
            let second = try await client.waitForJob(b) {
                ($0["progress"] as? [String: Any])?["step"] as? Int ?? 0 > 0
            }
            #expect(second["status"] as? String == "running", "the second job trains beside the first")
            let first = try await client.get("/v1/fine_tuning/jobs/\(a)").json
            #expect(first["status"] as? String == "running")
            for id in [a, b] {
                #expect(try await client.post("/v1/fine_tuning/jobs/\(id)/cancel", [:]).json["status"] as? String == "cancelled")
            }
        }
    }
}
