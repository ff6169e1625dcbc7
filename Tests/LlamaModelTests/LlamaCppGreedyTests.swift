import Foundation
import LlamaModel
import TestSupport
import Testing

/// Greedy generation on real requantized weights against llama.cpp. SmolLM2-135M-Instruct's Q4_1
/// file is requantized by llama.cpp's llama-quantize into Q4_K_M, Q5_K_M, Q6_K, Q8_0 and F16
/// (Tests/Fixtures/realquant/make_quants.sh); llama.cpp's own greedy continuations of ten chat
/// prompts on each file are in Tests/Fixtures/realquant/llamacpp_greedy.json. GRAFT_REALQUANT_MODELS
/// names the folder of the five files; GRAFT_REQUIRE_SDIST=1 makes the test mandatory.
@Suite("Greedy generation on requantized SmolLM2 against llama.cpp", .serialized)
struct LlamaCppGreedyTests {
    struct Recording: Decodable {
        struct Prompt: Decodable {
            var name: String
            var text: String
            var prompt_ids: [Int]
        }
        struct Model: Decodable {
            var type: String
            var file: String
            var sha256: String
            var greedy: [Run]
        }
        struct Run: Decodable {
            var ids: [Int]
            var top1: [Float]
            var margins: [Float]
        }
        var new_tokens: Int
        var prompts: [Prompt]
        var models: [Model]
    }

    /// How far apart, in Graft's logits, two candidates may be and still be ordered differently by
    /// llama.cpp, and how far Graft's logit of llama.cpp's token may be from llama.cpp's own.
    /// For F16 weights llama.cpp rounds the activations to F16 before each product: a near-tie is
    /// a near-tie. For the quantized types it rounds them to 8 bits (Q8_0 blocks of 32, Q8_K
    /// blocks of 256), which moves logits by up to about 1 on this model; Graft keeps them in float.
    struct Tolerance {
        var nearTie: Float
        var logit: Float
    }

    static func tolerance(_ type: String) -> Tolerance {
        type == "F16" ? Tolerance(nearTie: 0.02, logit: 0.1) : Tolerance(nearTie: 0.5, logit: 1.5)
    }

    static func folder() throws -> URL? {
        if let dir = ProcessInfo.processInfo.environment["GRAFT_REALQUANT_MODELS"], !dir.isEmpty {
            return URL(fileURLWithPath: dir)
        }
        if ProcessInfo.processInfo.environment["GRAFT_REQUIRE_SDIST"] == "1" {
            throw TestFailure("GRAFT_REQUIRE_SDIST=1 but GRAFT_REALQUANT_MODELS is not set")
        }
        return nil
    }

    struct TestFailure: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    static func recording() throws -> Recording {
        try JSONDecoder().decode(Recording.self, from: Data(contentsOf: TestData.fixture("realquant/llamacpp_greedy.json")))
    }

    /// Where Graft's continuation first leaves llama.cpp's, and whether a near-tie explains it.
    struct Comparison {
        var generated: [Int]
        var fullMatch: Bool
        var divergence: Int?
        var gap: Float = 0          // Graft's logit of its token minus that of llama.cpp's, at the divergence
        var llamaMargin: Float = 0  // llama.cpp's top-1 minus top-2 there
        var worstLogit: Float = 0   // largest |Graft − llama.cpp| of the chosen token's logit before it
    }

    @Test("prompt ids equal llama.cpp's; greedy tokens equal llama.cpp's up to a near-tie, per type")
    func greedyMatchesLlamaCpp() throws {
        guard let folder = try Self.folder() else { return }
        let recording = try Self.recording()
        #expect(recording.models.count == 5 && recording.prompts.count == 10)
        var summary: [String] = []
        let prompts = recording.prompts
        for recorded in recording.models {
            let path = folder.appendingPathComponent(recorded.file).path
            guard FileManager.default.fileExists(atPath: path) else {
                Issue.record("\(path): missing (make it with Tests/Fixtures/realquant/make_quants.sh)")
                continue
            }
            if let digest = sha256(path), digest != recorded.sha256 {
                // llama-quantize built for another CPU may round differently: the recording is of
                // other bytes, so this file is not compared (record it with record_greedy.py).
                print("\(recorded.file): SHA-256 \(digest) is not the recorded \(recorded.sha256); not compared on this host")
                continue
            }
            let model = try LlamaModel(path: path)
            var matches = 0, sameAsF16 = 0
            var worstLogit: Float = 0
            var notes: [String] = []
            let tolerance = Self.tolerance(recorded.type)
            let f16 = recording.models.first { $0.type == "F16" }
            for (prompt, run) in zip(recording.prompts, recorded.greedy) {
                let ids = model.tokenizer.encode(prompt.text)
                #expect(ids == prompt.prompt_ids, "\(recorded.type) \(prompt.name): prompt ids differ from llama.cpp's")
                let c = try compare(model, prompt: prompt.prompt_ids, run: run)
                let label = "\(recorded.type) \(prompt.name)"
                worstLogit = max(worstLogit, c.worstLogit)
                if let f16, c.generated == f16.greedy[prompts.firstIndex { $0.name == prompt.name }!].ids { sameAsF16 += 1 }
                #expect(c.worstLogit <= tolerance.logit, "\(label): logit differs from llama.cpp's by \(c.worstLogit)")
                if c.fullMatch {
                    matches += 1
                } else if let k = c.divergence {
                    #expect(c.gap <= tolerance.nearTie,
                            "\(label): token \(k) differs, Graft's logit gap \(c.gap) is not a near-tie (llama.cpp's margin \(c.llamaMargin))")
                    notes.append("\(prompt.name)@\(k) (gap \(fmt(c.gap)), llama.cpp margin \(fmt(c.llamaMargin)))")
                }
            }
            summary.append("\(recorded.type): \(matches)/\(recording.prompts.count) match all \(recording.new_tokens) tokens"
                           + ", worst logit difference \(fmt(worstLogit)) before any divergence"
                           + ", \(sameAsF16)/\(recording.prompts.count) equal llama.cpp's F16 continuation"
                           + " (llama.cpp's own: \(zip(recorded.greedy, f16?.greedy ?? []).filter { $0.ids == $1.ids }.count))"
                           + (notes.isEmpty ? "" : "; first divergences: " + notes.joined(separator: ", ")))
        }
        print(summary.joined(separator: "\n"))
    }

    /// Runs Graft's greedy generation and, teacher-forced on llama.cpp's tokens, Graft's logits at
    /// every step, to find the first step where the two choose differently and how close it was.
    func compare(_ model: LlamaModel, prompt: [Int], run: Recording.Run) throws -> Comparison {
        let n = run.ids.count
        let generated = try model.generate(GenerationRequest(prompt: prompt, maxTokens: n, sampling: .greedy,
                                                             stopAtEOS: false)).tokens
        let vocab = model.config.vocabularySize
        let logits = try model.forward(prompt + run.ids.dropLast(), cache: model.makeCache(), logits: .last(n))
        var c = Comparison(generated: generated, fullMatch: generated == run.ids)
        for k in 0..<n {
            let row = logits[k * vocab..<(k + 1) * vocab]
            let expected = run.ids[k]
            let diverged = k < generated.count ? generated[k] != expected : true
            if diverged {
                // Graft's own choice after the shared prefix (the teacher-forced row sees the same prefix).
                let mine = k < generated.count ? generated[k] : row.indices.max { row[$0] < row[$1] }! - row.startIndex
                c.divergence = k
                c.gap = row[row.startIndex + mine] - row[row.startIndex + expected]
                c.llamaMargin = run.margins[k]
                break
            }
            c.worstLogit = max(c.worstLogit, abs(row[row.startIndex + expected] - run.top1[k]))
        }
        return c
    }

    /// The file's SHA-256 from coreutils' sha256sum; nil where that is not installed.
    func sha256(_ path: String) -> String? {
        let tool = "/usr/bin/sha256sum"
        guard FileManager.default.isExecutableFile(atPath: tool) else { return nil }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = [path]
        let pipe = Pipe()
        process.standardOutput = pipe
        guard (try? process.run()) != nil else { return nil }
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: out, as: UTF8.self).split(separator: " ").first.map(String.init)
    }

    func fmt(_ x: Float) -> String { String(format: "%.3f", x) }
}
