import Foundation
import GGUF
import LlamaModel
import TensorKit
import TestSupport
import Testing

/// Every supported architecture's inference path on tiny random models: against the Double
/// reference, against itself decoding step by step, and its refusals.
@Suite("Architectures on tiny random models")
struct ArchitectureTests {
    static let architectures = ["llama", "llama3", "qwen2", "qwen3", "phi3", "gemma2", "gemma3"]
    static let tokens = [5, 40, 77, 12, 99, 3, 150, 61, 200, 17]

    /// Σ −log p(next token) over the sequence, from logits [T x vocab].
    static func nll(_ logits: [Float], tokens: [Int], vocab: Int) -> Double {
        var total = 0.0
        for t in 0..<tokens.count - 1 {
            let row = logits[t * vocab..<(t + 1) * vocab].map(Double.init)
            let m = row.max()!
            total += m + log(row.reduce(0) { $0 + exp($1 - m) }) - row[tokens[t + 1]]
        }
        return total
    }

    @Test("the inference forward's loss equals the Double reference's", arguments: architectures)
    func forwardMatchesReference(architecture: String) throws {
        let gguf = try GGUFFile(data: TinyModel.gguf(TrainingGradientTests.spec(architecture)))
        let model = try LlamaModel(gguf: gguf)
        let logits = try model.forward(Self.tokens, cache: model.makeCache(), logits: .all)
        let got = Self.nll(logits, tokens: Self.tokens, vocab: model.config.vocabularySize)
        let seq = TrainingSequence(tokens: Self.tokens, targets: Self.tokens.indices.map { $0 + 1 < Self.tokens.count ? Self.tokens[$0 + 1] : -1 })
        let expected = try ReferenceTraining(gguf: gguf).loss([seq], lora: [:], scale: 1)
        #expect(abs(got - expected) / expected < 1e-5, "\(architecture): loss \(got) vs reference \(expected)")
    }

    @Test("decoding one token at a time equals one forward over the prompt", arguments: architectures)
    func stepwiseEqualsFull(architecture: String) throws {
        let model = try TinyModel.model(TrainingGradientTests.spec(architecture))
        let full = try model.forward(Self.tokens, cache: model.makeCache(), logits: .all)
        let cache = model.makeCache()
        var stepwise: [Float] = []
        _ = try model.forward(Array(Self.tokens[..<6]), cache: cache, logits: .none)
        for t in Self.tokens[6...] { stepwise += try model.forward([t], cache: cache, logits: .last(1)) }
        let v = model.config.vocabularySize
        let tail = Array(full[(6 - 1) * v + v..<full.count])
        let scale = tail.map(abs).max() ?? 1
        #expect(maxAbsDifference(tail, stepwise) < 1e-5 * max(1, scale))
    }

    @Test("an adapter folded into the file (fused Phi-3 tensors included) equals it unmerged", arguments: architectures)
    func foldedFileEqualsUnmerged(architecture: String) throws {
        let bytes = TinyModel.gguf(TrainingGradientTests.spec(architecture))
        let model = try LlamaModel(gguf: GGUFFile(data: bytes))
        let adapter = randomAdapter(model.config)
        let mix = AdapterMix(try PreparedAdapter(adapter, config: model.config, precision: .float32))
        let unmerged = try model.forward(Self.tokens, cache: model.makeCache(), logits: .all, adapters: mix)
        let base = try model.forward(Self.tokens, cache: model.makeCache(), logits: .all)
        #expect(maxAbsDifference(unmerged, base) > 0.05, "the adapter must visibly change the logits")
        let folded = try LlamaModel(gguf: GGUFFile(data: LlamaModel.foldedGGUF(source: GGUFFile(data: bytes), adapter: adapter)))
        let got = try folded.forward(Self.tokens, cache: folded.makeCache(), logits: .all)
        let scale = unmerged.map(abs).max() ?? 1
        #expect(maxAbsDifference(unmerged, got) < 1e-4 * max(1, scale), "\(architecture)")
    }

    @Test("hyperparameters and layer kinds come from the metadata")
    func configuration() throws {
        let qwen3 = try TinyModel.model(TrainingGradientTests.spec("qwen3")).config
        #expect(qwen3.headDim == 32 && qwen3.qDim == 128 && qwen3.queryKeyNorm && qwen3.ropeStyle == .neox)
        let gemma2 = try TinyModel.model(TrainingGradientTests.spec("gemma2")).config
        #expect(gemma2.slidingLayers == [true, false] && gemma2.slidingWindow == 3)
        #expect(gemma2.attentionSoftcap == 1.5 && gemma2.finalSoftcap == 3 && gemma2.activation == .geluTanh)
        #expect(gemma2.embeddingScale == 8 && gemma2.postNorms)
        let gemma3 = try TinyModel.model(TrainingGradientTests.spec("gemma3")).config
        #expect(gemma3.slidingRopeBase == 1000 && gemma3.slidingLayers == [true, false] && gemma3.finalSoftcap == 0)
        let qwen2 = try TinyModel.model(TrainingGradientTests.spec("qwen2")).config
        #expect(qwen2.attentionBias && !qwen2.queryKeyNorm && qwen2.ropeStyle == .neox)
        let llama = try TinyModel.model(TrainingGradientTests.spec("llama3"))
        #expect(llama.config.ropeStyle == .adjacent && llama.weights.ropeFactors?.count == 8)
    }

    /// The default tiny model's file with extra metadata and tensors.
    static func rewritten(metadata: [(String, GGUFValue)] = [], tensors: [(String, [Float])] = []) throws -> GGUFFile {
        let base = try GGUFFile(data: TinyModel.gguf())
        var w = GGUFWriter()
        for key in base.metadataKeys { w.set(key, base.metadata[key]!) }
        for (key, value) in metadata { w.set(key, value) }
        for t in base.tensors { w.addTensor(t.name, dimensions: t.dimensions, type: t.type, data: Array(base.data(of: t))) }
        for (name, values) in tensors { w.addTensor(name, dimensions: [values.count], values: values) }
        return try GGUFFile(data: w.serialize())
    }

    @Test("a file with a tensor Graft would not compute, or an unsupported RoPE scaling, is refused by name")
    func refusals() throws {
        let bias = try Self.rewritten(tensors: [("blk.0.attn_output.bias", [Float](repeating: 0, count: 64))])
        #expect(throws: ModelError.invalidConfig("tensor 'blk.0.attn_output.bias' is not used by Graft's llama implementation")) {
            try LlamaModel(gguf: bias)
        }
        let yarn = try Self.rewritten(metadata: [("llama.rope.scaling.type", .string("yarn"))])
        #expect(throws: ModelError.invalidConfig("RoPE scaling 'yarn' is not supported (none, linear, and Phi-3's longrope are)")) {
            try LlamaModel(gguf: yarn)
        }
    }
}
