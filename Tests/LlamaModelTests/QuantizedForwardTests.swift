import GGUF
import LlamaModel
import TensorKit
import TestSupport
import Testing

@Suite("Llama forward with the K quants and Q5 weights")
struct QuantizedForwardTests {
    static let tokens = [1, 40, 77, 200, 5, 99, 130, 7, 250, 2, 17]

    // Rows of 256 and 512 columns, as the K types need.
    @Test("logits equal a plain Double reference forward", arguments: [
        (GGMLType.q4_K, GGMLType.q6_K, true), (.q5_K, .q4_K, false), (.q6_K, .q5_K, true), (.q2_K, .q3_K, false),
        (.q3_K, .q2_K, true), (.q5_0, .q5_1, false), (.q5_1, .q5_0, true),
    ])
    func matchesReference(matrix: GGMLType, embedding: GGMLType, tied: Bool) throws {
        let spec = TinyModel.Spec(dim: 256, ffn: 512, matrixType: matrix, embeddingType: embedding, tiedOutput: tied)
        let bytes = TinyModel.gguf(spec)
        let model = try LlamaModel(gguf: GGUFFile(data: bytes))
        #expect(model.weights.layers[0].query.format.rawValue == matrix.name, "weights keep their type")
        let got = try model.forward(Self.tokens, cache: model.makeCache(), logits: .all)
        let expected = try ReferenceLlama.logits(gguf: GGUFFile(data: bytes), tokens: Self.tokens)
        let diff = maxAbsDifference(got, expected)
        let scale = expected.map(abs).max() ?? 1
        #expect(diff <= 1e-4 * max(1, scale), "max abs difference \(diff) (logit scale \(scale))")
    }
}
