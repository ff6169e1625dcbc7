import AdapterFormat
import Foundation
import GGUF
import LlamaModel
import TestSupport
import Testing

/// The reference PEFT adapter on the real model: unmerged, folded into the weights, and
/// folded into a GGUF file, against PyTorch/PEFT logits.
@Suite("SmolLM2 + PEFT adapter parity with the reference fixtures", .enabled(if: TestData.runRealModelTests), .serialized)
struct AdapterParityTests {
    struct Fixtures: Decodable {
        struct Prompt: Decodable {
            var name: String
            var file_adapter: String
            var file_merged: String
            var prompt_ids: [Int]
            var greedy_ids_adapter: [Int]
        }
        var adapter_logits: [Prompt]
    }

    static func fixtures() throws -> [Fixtures.Prompt] {
        try JSONDecoder().decode(Fixtures.self, from: Data(contentsOf: TestData.fixture("smollm2/fixtures.json"))).adapter_logits
    }

    static func check(_ got: [Float], _ expected: [Float], vocab: Int, _ what: String) -> Float {
        let diff = maxAbsDifference(got, expected)
        #expect(diff <= 2e-3, "\(what): max abs difference \(diff)")
        for r in 0..<got.count / vocab {
            let row = got[r * vocab..<(r + 1) * vocab], ref = expected[r * vocab..<(r + 1) * vocab]
            #expect(row.firstIndex(of: row.max()!) == ref.firstIndex(of: ref.max()!), "\(what) row \(r): argmax differs")
        }
        return diff
    }

    @Test("unmerged, folded and folded-file logits are within 2e-3 of PEFT's, with the same argmax and greedy tokens")
    func adapterLogits() throws {
        let model = try ParityTests.model.get()
        let adapter = try PEFTAdapter.read(directory: TestData.fixture("smollm2/adapter"), config: model.config)
        #expect(adapter.rank == 8 && adapter.alpha == 16 && adapter.pairs.count == 210)
        let mix = AdapterMix(try PreparedAdapter(adapter, config: model.config))
        let folded = try model.folding(adapter)
        let vocab = model.config.vocabularySize
        var worst: (unmerged: Float, folded: Float) = (0, 0)
        for p in try Self.fixtures() {
            let unmerged = try model.forward(p.prompt_ids, cache: model.makeCache(), logits: .last(4), adapters: mix)
            worst.unmerged = max(worst.unmerged, Self.check(unmerged, try TestData.floats("smollm2/\(p.file_adapter)"), vocab: vocab, "\(p.name) unmerged"))
            let merged = try folded.forward(p.prompt_ids, cache: folded.makeCache(), logits: .last(4))
            worst.folded = max(worst.folded, Self.check(merged, try TestData.floats("smollm2/\(p.file_merged)"), vocab: vocab, "\(p.name) folded"))
            let greedy = try model.generate(GenerationRequest(prompt: p.prompt_ids, maxTokens: 8, sampling: .greedy,
                                                              stopAtEOS: false, adapters: mix))
            #expect(greedy.tokens == Array(p.greedy_ids_adapter.prefix(8)), "\(p.name): greedy tokens with the adapter")
        }
        print("adapter logits: max abs difference unmerged \(worst.unmerged), folded \(worst.folded)")
    }

    @Test("a GGUF file with the adapter folded in loads as a plain model with the merged logits")
    func foldedFile() throws {
        let path = try #require(TestData.realModelPath)
        let source = try GGUFFile(path: path)
        let config = try LlamaConfig(gguf: source)
        let adapter = try PEFTAdapter.read(directory: TestData.fixture("smollm2/adapter"), config: config)
        let bytes = try LlamaModel.foldedGGUF(source: source, adapter: adapter)
        let folded = try LlamaModel(gguf: GGUFFile(data: bytes))
        let p = try Self.fixtures()[0]
        let logits = try folded.forward(p.prompt_ids, cache: folded.makeCache(), logits: .last(4))
        _ = Self.check(logits, try TestData.floats("smollm2/\(p.file_merged)"), vocab: config.vocabularySize, "\(p.name) folded file")
    }
}
