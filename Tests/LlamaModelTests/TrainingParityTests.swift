import AdapterFormat
import Foundation
import LlamaModel
import TestSupport
import Testing

/// One SFT step on the real model against PyTorch + PEFT: loss and LoRA gradients.
@Suite("SmolLM2 training gradients against the PyTorch reference", .enabled(if: TestData.runRealModelTests), .serialized)
struct TrainingParityTests {
    struct Fixtures: Decodable {
        struct SFT: Decodable {
            struct Grad: Decodable { var shape: [Int] }
            var input_ids: [[Int]]
            var labels: [[Int]]
            var seq_lengths: [Int]
            var n_target_tokens: Int
            var loss: Double
            var grads: [String: Grad]
        }
        var sft: SFT
    }

    @Test("loss within 1e-4 relative and every gradient file within 1e-3 relative L2 error")
    func sftStep() throws {
        let model = try ParityTests.model.get()
        let sft = try JSONDecoder().decode(Fixtures.self, from: Data(contentsOf: TestData.fixture("smollm2/fixtures.json"))).sft
        let adapter = try PEFTAdapter.read(directory: TestData.fixture("smollm2/adapter"), config: model.config)
        let lora = try TrainableLoRA(adapter: adapter, config: model.config)
        var batch: [TrainingSequence] = []
        for (i, n) in sft.seq_lengths.enumerated() {
            let tokens = Array(sft.input_ids[i].prefix(n))
            let targets = (0..<n).map { t in t + 1 < n && sft.labels[i][t + 1] != -100 ? sft.labels[i][t + 1] : -1 }
            batch.append(TrainingSequence(tokens: tokens, targets: targets, weight: 1 / Float(sft.n_target_tokens)))
        }
        #expect(batch.reduce(0) { $0 + $1.labelCount } == sft.n_target_tokens)
        lora.zeroGradients()
        let losses = try model.trainingPass(batch, lora: lora, backward: true)
        let loss = losses.reduce(0) { $0 + $1.nll } / Double(sft.n_target_tokens)
        #expect(abs(loss - sft.loss) / sft.loss < 1e-4, "loss \(loss) vs \(sft.loss)")

        var worst = (name: "", error: 0.0)
        for (file, info) in sft.grads.sorted(by: { $0.key < $1.key }) {
            // grads/L0_q_proj_lora_A.f32
            let stem = file.dropFirst("grads/L".count).dropLast(".f32".count)
            let layer = Int(stem.prefix { $0.isNumber })!
            let rest = stem.drop { $0.isNumber }.dropFirst()  // q_proj_lora_A
            let projection = Projection(rawValue: String(rest.dropLast("_lora_A".count)))!
            let isB = rest.hasSuffix("lora_B")
            var got = try #require(lora.gradient(LoRATarget(layer: layer, projection: projection), b: isB))
            if isB && (projection == .query || projection == .key) {
                got = LoRAPair.permuteRowsToHF(got, rows: info.shape[0], width: info.shape[1], headDim: model.config.headDim)
            }
            let expected = try TestData.floats("smollm2/\(file)")
            #expect(got.count == expected.count)
            var err = 0.0, norm = 0.0
            for (g, e) in zip(got, expected) { err += Double(g - e) * Double(g - e); norm += Double(e) * Double(e) }
            let rel = (err / norm).squareRoot()
            #expect(rel <= 1e-3, "\(file): relative L2 error \(rel)")
            if rel > worst.error { worst = (file, rel) }
        }
        print("SFT parity: loss \(loss) vs \(sft.loss); worst gradient \(worst.name) relative L2 error \(worst.error)")
    }
}
