import Foundation
import TestSupport
import Testing

/// `graft train --method dpo`, `graft eval` and `graft dataset` as processes on a tiny model.
@Suite("graft train (DPO), eval and dataset commands", .serialized, .enabled(if: Graft.binary != nil))
struct ToolCommandTests {
    func write(_ dir: URL, _ name: String, _ lines: [String]) throws -> URL {
        let url = dir.appendingPathComponent(name)
        try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    @Test("DPO is chosen for a preference file, its events carry TRL's metrics, and eval reports them and SFT rows")
    func dpoTrainAndEval() async throws {
        let s = try TrainCommandTests.Setup()
        let prefs = try write(s.dir, "prefs.jsonl", (0..<8).map {
            #"{"prompt": "item \#($0)?", "chosen": "value \#($0 * 7 % 10)", "rejected": "value \#(($0 * 7 + 3) % 10)"}"#
        })
        let common = ["--model", s.model.path, "--registry", s.hub("h").path]
        let train = try await s.run(["train", prefs.path, "--tenant", "t", "--name", "p", "--epochs", "3", "--batch-size", "2",
                               "--lr", "0.01", "--rank", "4", "--json"] + common)
        #expect(train.status == 0, "\(train.err)")
        #expect(train.err.contains("dpo, 8 training and 0 validation pairs") && train.err.contains("reference log-probabilities: 8/8"))
        let job = try #require(s.job("h"))
        let events = try String(contentsOf: job.appendingPathComponent("events.jsonl"), encoding: .utf8).split(separator: "\n")
        let last = try #require(try JSONSerialization.jsonObject(with: Data(events.last(where: { $0.contains("\"step\"") && $0.contains("rewards") })!.utf8)) as? [String: Any])
        for key in ["rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "logps/chosen", "logps/rejected"] {
            #expect(last[key] is Double, "\(key) missing from \(last.keys.sorted())")
        }
        let result = try #require(try JSONSerialization.jsonObject(with: Data(train.out.utf8)) as? [String: Any])
        #expect((result["train_rewards/accuracies"] as? Double ?? 0) > 0.5, "\(result)")

        // Preference data: DPO metrics against the base.
        let evalPrefs = try await s.run(["eval", "t/p", prefs.path, "--json"] + common)
        #expect(evalPrefs.status == 0, "\(evalPrefs.err)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(evalPrefs.out.utf8)) as? [String: Any])
        let metrics = try #require(report["preference"] as? [[String: Any]])
        #expect(metrics.contains { $0["name"] as? String == "rewards/accuracies" && ($0["value"] as? Double ?? 0) > 0.5 })
        let margins = try #require(report["pairs"] as? [[String: Any]]).map { ($0["chosenReward"] as! Double) - ($0["rejectedReward"] as! Double) }
        #expect(margins.count == 8 && margins == margins.sorted(), "pairs worst first: \(margins)")

        // SFT-then-DPO: a run starting from that adapter has it as its frozen reference, and eval uses it too.
        let chained = try await s.run(["train", prefs.path, "--method", "dpo", "--tenant", "t", "--name", "q", "--init-adapter", "t/p",
                                 "--epochs", "1", "--batch-size", "4", "--lr", "0.01", "--json"] + common)
        #expect(chained.status == 0, "\(chained.err)")
        let evalChained = try await s.run(["eval", "t/q", prefs.path] + common)
        #expect(evalChained.status == 0 && evalChained.out.contains("reference: t/p@1"), "\(evalChained.out)\(evalChained.err)")

        // SFT rows beside the base, with an HTML report.
        let sft = try write(s.dir, "sft.jsonl", (0..<3).map {
            #"{"prompt": "item \#($0)?", "completion": "value \#($0 * 7 % 10)", "must_contain": ["value"]}"#
        })
        let html = s.dir.appendingPathComponent("r.html")
        let evalSFT = try await s.run(["eval", "t/p", sft.path, "--base-too", "--max-new-tokens", "4", "--report", html.path, "--json"] + common)
        #expect(evalSFT.status == 0, "\(evalSFT.err)")
        let sftReport = try #require(try JSONSerialization.jsonObject(with: Data(evalSFT.out.utf8)) as? [String: Any])
        #expect((sftReport["rows"] as? [Any])?.count == 3 && sftReport["base"] != nil && sftReport["job"] != nil)
        let page = try String(contentsOf: html, encoding: .utf8)
        #expect(page.contains("<svg") && page.contains("item 1?"))
        let bad = try await s.run(["eval", "t/p", sft.path, "--report", s.dir.appendingPathComponent("r.pdf").path] + common)
        #expect(bad.status != 0 && bad.err.contains("unknown extension '.pdf'"))
    }

    @Test("dataset check lists every bad line and exits 1; split and from-text write their files")
    func datasetCommands() async throws {
        let s = try TrainCommandTests.Setup()
        let data = try write(s.dir, "d.jsonl", [#"{"prompt": "a", "completion": "b"}"#, "oops", #"{"prompt": "a", "completion": "b"}"#,
                                                #"{"prompt": "x"}"#] + (0..<16).map { #"{"prompt": "p\#($0)", "completion": "c"}"# })
        let check = try await s.run(["dataset", "check", data.path, "--model", s.model.path, "--max-seq-len", "30"])
        #expect(check.status == 1)
        #expect(check.out.contains("format:      completions") && check.out.contains("rows:        18 valid, 2 bad"))
        #expect(check.out.contains("d.jsonl:2: not valid JSON") && check.out.contains("d.jsonl:4:"))
        #expect(check.out.contains("line 3 repeats line 1") && check.out.contains("estimate:"))

        let split = try await s.run(["dataset", "split", data.path, "--validation", "0.25", "--seed", "9"])
        #expect(split.status == 0, "\(split.err)")
        let train = try String(contentsOf: s.dir.appendingPathComponent("d.train.jsonl"), encoding: .utf8).split(separator: "\n")
        let valid = try String(contentsOf: s.dir.appendingPathComponent("d.validation.jsonl"), encoding: .utf8).split(separator: "\n")
        #expect(train.count == 15 && valid.count == 5)

        let md = try write(s.dir, "notes.md", ["# The Bridge", "", "It has 143 arches. Dr. Fen built it in 1771. It is 3.5 km long. Few cross it."])
        let out = s.dir.appendingPathComponent("pairs.jsonl")
        let fromText = try await s.run(["dataset", "from-text", md.path, "--every", "2", "--output", out.path])
        #expect(fromText.status == 0, "\(fromText.err)")
        let pairs = try String(contentsOf: out, encoding: .utf8).split(separator: "\n")
            .map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: String] }
        #expect(pairs.count == 3)
        #expect(pairs[0]["prompt"] == "The Bridge")
        #expect(pairs[1] == ["prompt": "It has 143 arches.", "completion": "Dr. Fen built it in 1771."])
        #expect(pairs[2] == ["prompt": "It is 3.5 km long.", "completion": "Few cross it."])
        let binary = s.dir.appendingPathComponent("b.txt")
        try Data([0x41, 0x00, 0x42]).write(to: binary)
        let refused = try await s.run(["dataset", "from-text", binary.path])
        #expect(refused.status != 0 && refused.err.contains("is binary"))
    }
}
