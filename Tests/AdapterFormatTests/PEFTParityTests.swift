import Foundation
import LlamaModel
import TestSupport
import Testing
@testable import AdapterFormat

/// One training pass of each committed PEFT adapter (Tests/Fixtures/archs/peft, written by
/// make_peft_references.py) on its tiny model against PEFT + transformers: the loss and the
/// gradient of every lora_A / lora_B tensor, mapped back through the import path. The tiny GGUF
/// files are made with llama.cpp's vocabularies (make_tiny_models.py): GRAFT_TINY_MODELS names
/// their folder, and GRAFT_REQUIRE_SDIST=1 makes the test mandatory.
@Suite("PEFT training parity on tiny models of each architecture")
struct PEFTParityTests {
    static func folder() throws -> URL? {
        let env = ProcessInfo.processInfo.environment
        if let dir = env["GRAFT_TINY_MODELS"], !dir.isEmpty { return URL(fileURLWithPath: dir) }
        if env["GRAFT_REQUIRE_SDIST"] == "1" { throw Failure(description: "GRAFT_REQUIRE_SDIST=1 but GRAFT_TINY_MODELS is not set") }
        return nil
    }

    struct Failure: Error, CustomStringConvertible { var description: String }

    @Test("loss within 1e-5 relative and every LoRA gradient within 1e-3 relative L2 of PEFT's", arguments: PEFTFixtures.names)
    func lossAndGradients(name: String) throws {
        guard let folder = try Self.folder() else { return }
        let fixture = try PEFTFixtures.load(name)
        let reference = fixture.reference
        let model = try LlamaModel(path: folder.appendingPathComponent(reference.gguf).path)
        let config = model.config
        #expect(config.architecture == reference.architecture)

        let adapter = try PEFTAdapter.read(directory: fixture.directory, config: config)
        let lora = try TrainableLoRA(adapter: adapter, config: config)
        // transformers' loss: the mean over the labelled (next-token) positions.
        let tokens = reference.tokens, labelled = tokens.count - 1
        let sequence = TrainingSequence(tokens: tokens, targets: Array(tokens.dropFirst()) + [-1], weight: 1 / Float(labelled))
        lora.zeroGradients()
        let losses = try model.trainingPass([sequence], lora: lora, backward: true)
        let loss = losses[0].nll / Double(labelled)
        let lossError = abs(loss - reference.loss) / reference.loss
        #expect(lossError <= 1e-5, "\(name): loss \(loss) vs PEFT's \(reference.loss)")

        let expected = try SafeTensors.decode([UInt8](Data(contentsOf: fixture.directory.appendingPathComponent("gradients.safetensors")))).tensors
        #expect(expected.count == reference.gradients.count && expected.count == 2 * config.layers * PEFTModule.modules(for: config.architecture).count)
        var worst = (name: "", error: 0.0)
        for (tensor, want) in expected.sorted(by: { $0.key < $1.key }) {
            let got = try #require(Self.gradient(of: tensor, lora, config), "\(tensor)")
            let values = want.values
            #expect(want.shape == reference.gradients[tensor]?.shape && got.count == values.count, "\(tensor)")
            var err = 0.0, norm = 0.0
            for (g, e) in zip(got, values) { err += Double(g - e) * Double(g - e); norm += Double(e) * Double(e) }
            let rel = (err / norm).squareRoot()
            // The stored float32 gradient agrees with the float64 norm PEFT reported.
            #expect(abs(norm.squareRoot() - reference.gradients[tensor]!.norm) <= 1e-6 * reference.gradients[tensor]!.norm)
            #expect(norm > 0 && rel <= 1e-3, "\(name) \(tensor): relative L2 error \(rel)")
            if rel > worst.error { worst = (tensor, rel) }
        }
        print("PEFT parity \(name): loss \(loss) vs \(reference.loss) (relative \(lossError)); "
              + "worst of \(expected.count) gradients \(worst.name) relative L2 \(worst.error)")
    }

    /// Graft's gradient for a PEFT tensor, in PEFT's layout. A fused module's A is shared by its
    /// parts, so its gradient is the sum of theirs; its B's gradient stacks theirs by rows.
    static func gradient(of tensor: String, _ lora: TrainableLoRA, _ config: LlamaConfig) -> [Float]? {
        guard let (layer, group, name, factor) = PEFTName.parseModuleTensor(tensor),
              let module = PEFTModule.modules(for: config.architecture).first(where: { $0.group == group && $0.name == name })
        else { return nil }
        var out: [Float] = []
        for p in module.parts {
            guard let g = lora.gradient(LoRATarget(layer: layer, projection: p), b: factor == .b) else { return nil }
            switch factor {
            case .a:
                out = out.isEmpty ? g : zip(out, g).map(+)
            case .b:
                let permuted = config.ropeStyle == .adjacent && (p == .query || p == .key)
                let rows = config.shape(of: p).out
                out += permuted ? LoRAPair.permuteRowsToHF(g, rows: rows, width: g.count / rows, headDim: config.headDim) : g
            }
        }
        return out
    }
}
