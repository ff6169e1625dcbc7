import Foundation
import GGUF
import LlamaModel
import TestSupport
import Testing

/// Tiny random models of every architecture, written by Tests/Fixtures/archs/make_tiny_models.py
/// with real tokenizer metadata, against the logits transformers computes from the same files
/// (Tests/Fixtures/archs/references.json). The models are made where the llama.cpp tree is:
/// GRAFT_TINY_MODELS names their folder; GRAFT_REQUIRE_SDIST=1 makes the test mandatory.
@Suite("Architecture parity with transformers on tiny models")
struct ArchitectureParityTests {
    struct Reference: Decodable {
        var tokens: [Int]
        var models: [String: Model]
        struct Model: Decodable {
            var sha256: String
            var vocab: Int
            var ids: [Int]
            var logits: [[Float]]
        }
    }

    static func folder() throws -> URL? {
        if let dir = ProcessInfo.processInfo.environment["GRAFT_TINY_MODELS"], !dir.isEmpty {
            return URL(fileURLWithPath: dir)
        }
        if ProcessInfo.processInfo.environment["GRAFT_REQUIRE_SDIST"] == "1" {
            throw TestFailure("GRAFT_REQUIRE_SDIST=1 but GRAFT_TINY_MODELS is not set")
        }
        return nil
    }

    struct TestFailure: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    @Test("logits within 1e-4 (relative to the row's largest) of transformers, per architecture and type")
    func logitsMatch() throws {
        guard let folder = try Self.folder() else { return }
        let data = try Data(contentsOf: TestData.fixture("archs/references.json"))
        let reference = try JSONDecoder().decode(Reference.self, from: data)
        #expect(reference.models.count >= 10)
        for (file, expected) in reference.models.sorted(by: { $0.key < $1.key }) {
            let model = try LlamaModel(path: folder.appendingPathComponent(file).path)
            #expect(model.config.vocabularySize == expected.vocab, "\(file)")
            let logits = try model.forward(reference.tokens, cache: model.makeCache(), logits: .all)
            var worst: Float = 0
            for (t, row) in expected.logits.enumerated() {
                let scale = row.map(abs).max() ?? 1
                for (j, id) in expected.ids.enumerated() {
                    worst = max(worst, abs(logits[t * expected.vocab + id] - row[j]) / scale)
                }
            }
            #expect(worst <= 1e-4, "\(file): worst relative difference \(worst)")
            print("\(file) (\(model.config.architecture)): worst relative logit difference to transformers \(worst)")
        }
    }
}
