import TestSupport
import GGUF
import LlamaModel
import TensorKit
import Testing

@Suite("Llama forward on tiny random models")
struct ForwardTests {
    static let tokens = [1, 40, 77, 200, 5, 99, 130, 7, 250, 2, 17]

    @Test("configuration comes from the metadata", arguments: [(2, 64, 4, 2), (3, 96, 6, 3), (1, 64, 2, 2)])
    func configFromMetadata(layers: Int, dim: Int, heads: Int, kvHeads: Int) throws {
        let spec = TinyModel.Spec(layers: layers, dim: dim, heads: heads, kvHeads: kvHeads)
        let model = try TinyModel.model(spec)
        #expect(model.config.layers == layers)
        #expect(model.config.dim == dim)
        #expect(model.config.heads == heads && model.config.kvHeads == kvHeads)
        #expect(model.config.headDim == dim / heads)
        #expect(model.config.vocabularySize == 259)
        #expect(model.config.ropeBase == 10000)
    }

    @Test("logits equal a plain Double reference forward", arguments: [
        (GGMLType.q4_1, GGMLType.q8_0, true), (.f32, .f32, false), (.q8_0, .f16, true), (.bf16, .q4_0, false),
    ])
    func matchesReference(matrix: GGMLType, embedding: GGMLType, tied: Bool) throws {
        let spec = TinyModel.Spec(matrixType: matrix, embeddingType: embedding, tiedOutput: tied)
        let bytes = TinyModel.gguf(spec)
        let model = try LlamaModel(gguf: GGUFFile(data: bytes))
        let got = try model.forward(Self.tokens, cache: model.makeCache(), logits: .all)
        let expected = try ReferenceLlama.logits(gguf: GGUFFile(data: bytes), tokens: Self.tokens)
        let diff = maxAbsDifference(got, expected)
        let scale = expected.map(abs).max() ?? 1
        #expect(diff <= 1e-4 * max(1, scale), "max abs difference \(diff) (logit scale \(scale))")
    }

    @Test("decoding token by token with the cache equals one full forward")
    func cacheEqualsFullForward() throws {
        let model = try TinyModel.model()
        let full = try model.forward(Self.tokens, cache: model.makeCache(), logits: .all)
        let cache = model.makeCache()
        var stepwise: [Float] = []
        for t in Self.tokens { stepwise += try model.forward([t], cache: cache, logits: .last(1)) }
        #expect(cache.count == Self.tokens.count)
        #expect(maxAbsDifference(full, stepwise) < 1e-4)
    }

    @Test("a prompt split into chunks equals one forward, and .last(n) is the tail of .all")
    func chunkedPrefill() throws {
        let model = try TinyModel.model()
        let full = try model.forward(Self.tokens, cache: model.makeCache(), logits: .all)
        let cache = model.makeCache()
        _ = try model.forward(Array(Self.tokens[..<4]), cache: cache, logits: .none)
        let tail = try model.forward(Array(Self.tokens[4...]), cache: cache, logits: .last(3))
        let v = model.config.vocabularySize
        let start = (Self.tokens.count - 3) * v
        #expect(maxAbsDifference(Array(full[start..<full.count]), tail) < 1e-4)
    }

    @Test("bad input is an error: token out of range, empty input, context overflow")
    func badInput() throws {
        let model = try TinyModel.model(TinyModel.Spec(context: 8))
        #expect(throws: ModelError.badToken(259, vocabularySize: 259)) { try model.forward([259], cache: model.makeCache()) }
        #expect(throws: ModelError.badToken(-1, vocabularySize: 259)) { try model.forward([-1], cache: model.makeCache()) }
        #expect(throws: ModelError.emptyInput) { try model.forward([], cache: model.makeCache()) }
        let cache = model.makeCache()
        _ = try model.forward(Array(repeating: 5, count: 6), cache: cache)
        #expect(throws: ModelError.contextFull(needed: 9, limit: 8)) { try model.forward([1, 2, 3], cache: cache) }
        #expect(cache.count == 6)
    }

    @Test("a missing tensor, a wrong shape or an unknown architecture is reported by name")
    func badFiles() throws {
        #expect(throws: GGUFError.missingTensor("blk.1.attn_k.weight")) {
            try LlamaModel(gguf: GGUFFile(data: TinyModel.gguf(omit: "blk.1.attn_k.weight")))
        }
        #expect(throws: GGUFError.missingKey("llama.block_count")) {
            try LlamaModel(gguf: GGUFFile(data: TinyModel.gguf(omit: "llama.block_count")))
        }
        #expect(throws: ModelError.unsupportedArchitecture("mamba")) {
            try LlamaModel(gguf: GGUFFile(data: TinyModel.gguf(override: ["general.architecture": .string("mamba")])))
        }
        // Claiming 8 heads for the same weights makes the key/value width 16, not 32.
        #expect(throws: GGUFError.shapeMismatch(tensor: "blk.0.attn_k.weight", expected: [64, 16], found: [64, 32])) {
            try LlamaModel(gguf: GGUFFile(data: TinyModel.gguf(override: ["llama.attention.head_count": .uint32(8)])))
        }
    }
}
