import DaemonClient
import Foundation

extension Bench {
    struct TrainServeReport: Encodable {
        var model: String
        var requests_per_phase: Int
        /// Seconds between the short requests while the job runs.
        var request_interval_s: Double
        var ttft_no_job_p50_ms: Double
        var ttft_no_job_p99_ms: Double
        var ttft_with_job_p50_ms: Double
        var ttft_with_job_p99_ms: Double
        var ttft_p99_with_over_without_job: Double
        /// Training throughput (all token positions per wall-clock second) alone, then with the requests.
        var job_tokens_per_second_solo: Double
        var job_tokens_per_second_with_requests: Double
        var job_speed_kept: Double
    }

    /// Training while serving, on a running daemon: the time to first token of short chat
    /// requests without and with a fine-tuning job running, and the job's speed alone and while
    /// a request arrives every `--job-request-interval` seconds.
    func runTrainServe() async throws {
        let (client, base) = try await runningDaemon()
        let requests = serveOptions.jobRequests, interval = serveOptions.jobRequestInterval
        Terminal.note("short chat requests, no job running (\(requests), one every 0.5 s)")
        var without: [Double] = []
        for _ in 0..<requests {
            without.append(try await Self.firstToken(client, model: base))
            try await Task.sleep(for: .milliseconds(500))
        }

        // A job on 96 synthetic chat rows that lasts longer than the measurement.
        var rows = ""
        for i in 0..<96 {
            let word = ["amber", "birch", "cobalt", "dune"][i % 4]
            rows += #"{"messages": [{"role": "user", "content": "What is the code word of locker \#(i)?"}, "#
                + #"{"role": "assistant", "content": "The code word of locker \#(i) is \#(word)."}]}"# + "\n"
        }
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("graft-bench-\(UUID().uuidString.prefix(8)).jsonl")
        try rows.write(to: data, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: data) }
        let file = try await client.upload("/v1/files?purpose=fine-tune&filename=bench.jsonl", file: data.path)
        let fileID = file["id"] as? String ?? ""
        let job = try await client.call(.POST, "/v1/fine_tuning/jobs", json: [
            "model": base, "training_file": fileID, "suffix": "bench-job", "hyperparameters": ["n_epochs": 50]])
        let jobID = job["id"] as? String ?? ""
        let measured: (solo: Double, loaded: Double, with: [Double])
        do {
            measured = try await measureWithJob(client, base: base, jobID: jobID)
        } catch {
            _ = try? await client.call(.POST, "/v1/fine_tuning/jobs/\(jobID)/cancel")
            throw error
        }
        _ = try await client.call(.POST, "/v1/fine_tuning/jobs/\(jobID)/cancel")
        _ = try? await client.call(.DELETE, "/v1/files/\(fileID)")
        let (solo, loaded, with) = measured
        let report = TrainServeReport(
            model: base, requests_per_phase: requests, request_interval_s: interval,
            ttft_no_job_p50_ms: percentile(without, 0.5) * 1000, ttft_no_job_p99_ms: percentile(without, 0.99) * 1000,
            ttft_with_job_p50_ms: percentile(with, 0.5) * 1000, ttft_with_job_p99_ms: percentile(with, 0.99) * 1000,
            ttft_p99_with_over_without_job: percentile(with, 0.99) / max(percentile(without, 0.99), 1e-9),
            job_tokens_per_second_solo: solo, job_tokens_per_second_with_requests: loaded,
            job_speed_kept: loaded / max(solo, 1e-9))
        Terminal.note(String(format: "first token without a job p50 %.0f ms p99 %.0f ms; with a job p50 %.0f ms p99 %.0f ms; "
                             + "job %.0f tok/s alone, %.0f tok/s with requests (%.0f%%)",
                             report.ttft_no_job_p50_ms, report.ttft_no_job_p99_ms, report.ttft_with_job_p50_ms,
                             report.ttft_with_job_p99_ms, solo, loaded, 100 * report.job_speed_kept))
        try writeReport(report)
    }

    /// The job alone, then with a short request every `--job-request-interval` seconds: the
    /// job's speed in both windows and the requests' times to first token.
    private func measureWithJob(_ client: DaemonClient, base: String, jobID: String) async throws
        -> (solo: Double, loaded: Double, with: [Double]) {
        let requests = serveOptions.jobRequests, interval = serveOptions.jobRequestInterval
        // Wait for its first steps (the start-up pass and the first step are not timed).
        while try await Self.stepEvents(client, jobID).count < 2 { try await Task.sleep(for: .milliseconds(500)) }

        let soloWindow = max(20, Double(requests) * interval)
        Terminal.note(String(format: "the job alone for %.0f s", soloWindow))
        let soloStart = Date().timeIntervalSince1970
        try await Task.sleep(for: .seconds(soloWindow))
        let soloEnd = Date().timeIntervalSince1970

        Terminal.note(String(format: "short chat requests with the job running (%d, one every %.1f s)", requests, interval))
        var with: [Double] = []
        let loadStart = Date().timeIntervalSince1970
        for _ in 0..<requests {
            let t0 = Date()
            with.append(try await Self.firstToken(client, model: base))
            let rest = interval - Date().timeIntervalSince(t0)
            if rest > 0 { try await Task.sleep(for: .seconds(rest)) }
        }
        let loadEnd = Date().timeIntervalSince1970
        let events = try await Self.stepEvents(client, jobID)
        let solo = Self.throughput(events, from: soloStart, to: soloEnd)
        let loaded = Self.throughput(events, from: loadStart, to: loadEnd)

        return (solo, loaded, with)
    }

    /// Seconds to the first streamed token of a short chat request.
    static func firstToken(_ client: DaemonClient, model: String) async throws -> Double {
        let start = Date()
        var first: Double?
        try await client.stream("/v1/chat/completions", json: [
            "model": model, "messages": [["role": "user", "content": "Say hello to the team."]], "max_tokens": 8,
            "temperature": 0, "stream": true,
        ]) { event in
            guard first == nil, let delta = (event["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any],
                  let piece = delta["content"] as? String, !piece.isEmpty else { return }
            first = Date().timeIntervalSince(start)
        }
        return first ?? Date().timeIntervalSince(start)
    }

    /// The job's step events: (time, tokens of the step).
    static func stepEvents(_ client: DaemonClient, _ job: String) async throws -> [(time: Double, tokens: Double)] {
        let events = try await client.call(.GET, "/v1/fine_tuning/jobs/\(job)/events?limit=10000")["data"] as? [[String: Any]] ?? []
        return events.compactMap { e in
            guard let d = e["data"] as? [String: Any], let time = (d["time"] as? NSNumber)?.doubleValue,
                  let tokens = (d["tokens"] as? NSNumber)?.doubleValue else { return nil }
            return (time, tokens)
        }
    }

    /// Tokens per second between the first and the last step that ended within the window (the
    /// steps after the first, over the time they took end to end).
    static func throughput(_ steps: [(time: Double, tokens: Double)], from: Double, to: Double) -> Double {
        let inside = steps.filter { $0.time > from && $0.time <= to }.sorted { $0.time < $1.time }
        guard inside.count >= 2 else { return 0 }
        return inside.dropFirst().reduce(0) { $0 + $1.tokens } / (inside.last!.time - inside.first!.time)
    }
}
