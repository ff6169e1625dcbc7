import Foundation
import GGUF
import LlamaModel
import TestSupport
import Testing
@testable import AdapterFormat

/// PEFT module names per architecture: Phi-3's fused qkv_proj and gate_up_proj split on import
/// and rebuilt exactly on export; the others' seven projections as they are.
@Suite("PEFT adapters of every architecture")
struct PEFTArchitectureTests {
    static let architectures = LlamaConfig.supportedArchitectures

    /// The config of a tiny model of `architecture`, with query heads wider than the model
    /// (qDim 96 vs dim 64) so q and o shapes differ from the others.
    static func config(_ architecture: String) throws -> LlamaConfig {
        var spec = TinyModel.Spec(heads: 4, kvHeads: 2)
        spec.architecture = architecture
        spec.headDim = 24
        return try LlamaConfig(gguf: GGUFFile(data: TinyModel.gguf(spec)))
    }

    /// scale · B · A of every projection of every layer; zero where the adapter has no pair.
    static func deltas(_ adapter: LoRAAdapter, _ config: LlamaConfig) -> [LoRATarget: [Float]] {
        var out: [LoRATarget: [Float]] = [:]
        for l in 0..<config.layers {
            for p in Projection.allCases {
                let target = LoRATarget(layer: l, projection: p)
                let (rows, cols) = config.shape(of: p)
                var d = [Float](repeating: 0, count: rows * cols)
                if let pair = adapter.pairs[target] {
                    for i in 0..<rows {
                        for k in 0..<pair.rank {
                            let b = adapter.scale * pair.b[i * pair.rank + k]
                            for j in 0..<cols { d[i * cols + j] += b * pair.a[k * cols + j] }
                        }
                    }
                }
                out[target] = d
            }
        }
        return out
    }

    /// A random adapter with uneven ranks, a missing pair, and (layer 1) key sharing query's A.
    static func unevenAdapter(_ config: LlamaConfig, rsLoRA: Bool = false) -> LoRAAdapter {
        var adapter = randomAdapter(config, rank: 4, alpha: 8, seed: 11)
        adapter.useRSLoRA = rsLoRA
        adapter.pairs[LoRATarget(layer: 0, projection: .key)] = nil
        adapter.pairs[LoRATarget(layer: 1, projection: .gate)] = nil
        let other = randomAdapter(config, rank: 2, alpha: 8, seed: 12)
        for p in [Projection.value, .up, .down] { adapter.pairs[LoRATarget(layer: 1, projection: p)] = other.pairs[LoRATarget(layer: 1, projection: p)] }
        var key = adapter.pairs[LoRATarget(layer: 1, projection: .key)]!
        key.a = adapter.pairs[LoRATarget(layer: 1, projection: .query)]!.a
        adapter.pairs[LoRATarget(layer: 1, projection: .key)] = key
        return adapter
    }

    @Test("write then read gives the same scale · B · A for every projection", arguments: architectures)
    func productsRoundTrip(architecture: String) throws {
        let config = try Self.config(architecture)
        for rsLoRA in [false, true] {
            let adapter = Self.unevenAdapter(config, rsLoRA: rsLoRA)
            let files = try PEFTAdapter.encode(adapter, config: config, baseModelName: "tiny")
            let back = try PEFTAdapter.decode(configJSON: files.configJSON, safetensors: files.safetensors, config: config)
            #expect(back.scale == adapter.scale)
            let (want, got) = (Self.deltas(adapter, config), Self.deltas(back, config))
            for (target, w) in want {
                let g = got[target]!
                let worst = zip(w, g).map { abs($0 - $1) }.max()!, size = w.map(abs).max()!
                #expect(worst <= 1e-6 * max(size, 1e-3), "\(architecture) \(target): \(worst)")
            }
            if architecture != "phi3" { #expect(back == adapter) }
        }
    }

    @Test("phi3 exports fused qkv_proj and gate_up_proj: stacked distinct A's, block-diagonal B, rank and alpha patterns")
    func phi3FusedExport() throws {
        let config = try Self.config("phi3")
        let adapter = Self.unevenAdapter(config)
        let files = try PEFTAdapter.encode(adapter, config: config, baseModelName: "tiny")
        let json = try JSONSerialization.jsonObject(with: Data(files.configJSON)) as! [String: Any]
        #expect(json["target_modules"] as? [String] == ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"])
        // Layer 0: q and v (rank 4 each, distinct A's) → rank 8; layer 1: q and k share A (4), v has 2 → 6.
        // Layer 1 gate_up holds only up (rank 2).
        #expect(json["r"] as? Int == 4)
        #expect(json["rank_pattern"] as? [String: Int] == ["model.layers.0.self_attn.qkv_proj": 8,
                                                           "model.layers.1.self_attn.qkv_proj": 6,
                                                           "model.layers.0.mlp.gate_up_proj": 8,
                                                           "model.layers.1.mlp.gate_up_proj": 2,
                                                           "model.layers.1.mlp.down_proj": 2])
        #expect(json["alpha_pattern"] as? [String: Double] == ["model.layers.0.self_attn.qkv_proj": 16,
                                                               "model.layers.1.self_attn.qkv_proj": 12,
                                                               "model.layers.0.mlp.gate_up_proj": 16,
                                                               "model.layers.1.mlp.gate_up_proj": 4,
                                                               "model.layers.1.mlp.down_proj": 4])
        let tensors = try SafeTensors.decode(files.safetensors).tensors
        #expect(Set(tensors.keys.compactMap { PEFTName.parseModuleTensor($0)?.module }) == ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"])
        let module = PEFTModule.modules(for: "phi3")[0]
        let a = try #require(tensors[PEFTName.tensor(layer: 0, module, .a)]), b = try #require(tensors[PEFTName.tensor(layer: 0, module, .b)])
        #expect(a.shape == [8, 64] && b.shape == [96 + 48 + 48, 8])
        let q = adapter.pairs[LoRATarget(layer: 0, projection: .query)]!, v = adapter.pairs[LoRATarget(layer: 0, projection: .value)]!
        #expect(a.values == q.a + v.a)
        let bv = b.values
        for r in 0..<192 {
            let row = Array(bv[r * 8..<(r + 1) * 8])
            switch r {
            case ..<96: #expect(Array(row[..<4]) == Array(q.b[r * 4..<(r + 1) * 4]) && row[4...].allSatisfy { $0 == 0 })
            case ..<144: #expect(row.allSatisfy { $0 == 0 }, "key rows of layer 0 (no key pair) are zero")
            default: #expect(row[..<4].allSatisfy { $0 == 0 } && Array(row[4...]) == Array(v.b[(r - 144) * 4..<(r - 143) * 4]))
            }
        }
        // Layer 1 gate_up: only up, so A is up's and the gate rows are zero.
        let gateUp = PEFTModule.modules(for: "phi3")[2]
        let up = adapter.pairs[LoRATarget(layer: 1, projection: .up)]!
        #expect(tensors[PEFTName.tensor(layer: 1, gateUp, .a)]?.values == up.a)
        #expect(tensors[PEFTName.tensor(layer: 1, gateUp, .b)]?.values == [Float](repeating: 0, count: 96 * 2) + up.b)
    }

    @Test("the committed PEFT adapters read, write and read back unchanged, tensor for tensor", arguments: PEFTFixtures.names)
    func committedRoundTrip(name: String) throws {
        let fixture = try PEFTFixtures.load(name)
        let adapter = try PEFTAdapter.read(directory: fixture.directory, config: fixture.config)
        let modules = PEFTModule.modules(for: fixture.config.architecture)
        #expect(adapter.pairs.count == fixture.config.layers * Projection.allCases.count)
        #expect(adapter.rank == fixture.reference.rank && adapter.alpha == Float(fixture.reference.alpha))
        let files = try PEFTAdapter.encode(adapter, config: fixture.config, baseModelName: "tiny-\(name)")
        #expect(try PEFTAdapter.decode(configJSON: files.configJSON, safetensors: files.safetensors, config: fixture.config) == adapter)
        let original = try SafeTensors.decode(Data(contentsOf: fixture.directory.appendingPathComponent(PEFTAdapter.weightsFile)).map { $0 }).tensors
        #expect(try SafeTensors.decode(files.safetensors).tensors == original)
        #expect(original.count == fixture.config.layers * modules.count * 2)
        let json = try JSONSerialization.jsonObject(with: Data(files.configJSON)) as! [String: Any]
        #expect(json["target_modules"] as? [String] == modules.map(\.name))
    }

    @Test("a phi3 adapter on another architecture, or the reverse, names the tensor and the modules expected")
    func wrongArchitecture() throws {
        let phi3 = try PEFTFixtures.load("phi3-f32"), llama = try PEFTFixtures.load("llama-f32")
        var qwen2 = phi3.config
        qwen2.architecture = "qwen2"
        qwen2.ropeStyle = .neox
        let error = thrownError { _ = try PEFTAdapter.read(directory: phi3.directory, config: qwen2) }
        guard case .moduleMismatch(let tensor, "qwen2", let expected) = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(tensor == "base_model.model.model.layers.0.mlp.gate_up_proj.lora_A.weight")
        #expect(expected.contains("self_attn.q_proj") && expected.contains("mlp.gate_proj"))
        #expect(error!.description.contains("gate_up_proj") && error!.description.contains("maybe wrong base model?"))

        let reverse = thrownError { _ = try PEFTAdapter.read(directory: llama.directory, config: phi3.config) }
        guard case .moduleMismatch(let t2, "phi3", let e2) = reverse else { Issue.record("got \(String(describing: reverse))"); return }
        #expect(t2 == "base_model.model.model.layers.0.mlp.gate_proj.lora_A.weight")
        #expect(e2 == ["self_attn.qkv_proj", "self_attn.o_proj", "mlp.gate_up_proj", "mlp.down_proj"])

        // target_modules naming a module the architecture lacks, with weights that fit.
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: llama.directory.appendingPathComponent(PEFTAdapter.configFile))) as! [String: Any]
        config["target_modules"] = (config["target_modules"] as! [String]) + ["qkv_proj"]
        let weights = try [UInt8](Data(contentsOf: llama.directory.appendingPathComponent(PEFTAdapter.weightsFile)))
        let listed = thrownError {
            _ = try PEFTAdapter.decode(configJSON: [UInt8](JSONSerialization.data(withJSONObject: config)), safetensors: weights, config: llama.config)
        }
        guard case .unsupported(let what) = listed else { Issue.record("got \(String(describing: listed))"); return }
        #expect(what.contains("'qkv_proj' on a llama model") && what.contains("q_proj, k_proj"))
    }

    @Test("a fused tensor of the wrong size names the tensor and the shape the base model needs")
    func fusedShapeMismatch() throws {
        let phi3 = try PEFTFixtures.load("phi3-f32")
        var narrow = phi3.config
        narrow.kvHeads = 2  // qkv rows 64 + 2 · 32 instead of 64 + 2 · 64
        let error = thrownError { _ = try PEFTAdapter.read(directory: phi3.directory, config: narrow) }
        #expect(error == .shapeMismatch(tensor: "base_model.model.model.layers.0.self_attn.qkv_proj.lora_B.weight",
                                        expected: [128, 4], found: [192, 4]))
        #expect(error!.description.contains("maybe wrong base model?"))
        var wide = phi3.config
        wide.ffnDim = 128
        let ffn = thrownError { _ = try PEFTAdapter.read(directory: phi3.directory, config: wide) }
        #expect(ffn == .shapeMismatch(tensor: "base_model.model.model.layers.0.mlp.gate_up_proj.lora_B.weight",
                                      expected: [256, 4], found: [192, 4]))
    }
}

/// The PEFT adapters and references make_peft_references.py wrote under Tests/Fixtures/archs/peft.
enum PEFTFixtures {
    static let names = ["llama-f32", "qwen2-f32", "phi3-f32", "gemma2-f32"]

    struct Reference: Decodable {
        struct Shape: Decodable { var layers, dim, ffn, heads, kv, head_dim: Int }
        struct Gradient: Decodable { var shape: [Int]; var norm: Double }
        var gguf: String
        var architecture: String
        var rank: Int
        var alpha: Double
        var shape: Shape
        var tokens: [Int]
        var loss: Double
        var gradients: [String: Gradient]
    }

    struct Fixture {
        var directory: URL
        var reference: Reference
        /// The model's shape as its GGUF file gives it (enough to read the adapter without the file).
        var config: LlamaConfig
    }

    static func load(_ name: String) throws -> Fixture {
        let directory = TestData.fixture("archs/peft/\(name)")
        let reference = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: directory.appendingPathComponent("reference.json")))
        let s = reference.shape
        var config = LlamaConfig(architecture: reference.architecture, layers: s.layers, dim: s.dim, ffnDim: s.ffn, heads: s.heads,
                                 kvHeads: s.kv, headDim: s.head_dim, vocabularySize: 32000, contextLength: 256,
                                 ropeBase: 10000, normEps: 1e-6)
        config.ropeStyle = reference.architecture == "llama" ? .adjacent : .neox
        return Fixture(directory: directory, reference: reference, config: config)
    }
}
