import Foundation
import LlamaModel
import Testing
@testable import AdapterFormat

@Suite("PEFT adapter interchange")
struct PEFTAdapterTests {
    private func fixtureAdapter() throws -> LoRAAdapter {
        try PEFTAdapter.read(directory: Fixture.adapterDirectory, config: smolConfig)
    }

    @Test("the fixture reads as 210 pairs of rank 8 with alpha 16 on all seven projections")
    func readsFixture() throws {
        let adapter = try fixtureAdapter()
        #expect(adapter.pairs.count == 210)
        #expect(adapter.rank == 8 && adapter.alpha == 16 && !adapter.useRSLoRA && adapter.scale == 2)
        #expect(adapter.projections == Projection.allCases)
        #expect(adapter.pairs.values.allSatisfy { $0.rank == 8 })
        #expect(adapter.parameterCount == 2_442_240)
        try adapter.validate(against: smolConfig)
    }

    @Test("values are the file's bf16 values widened; q and k rows of B move to Graft's order, others stay")
    func valuesAndPermutation() throws {
        let adapter = try fixtureAdapter()
        let raw = try SafeTensors.decode(Fixture.bytes("adapter_model.safetensors")).tensors
        for p in Projection.allCases {
            let target = LoRATarget(layer: 7, projection: p)
            let pair = try #require(adapter.pairs[target])
            let a = try #require(raw[PEFTName.tensor(target, .a)]), b = try #require(raw[PEFTName.tensor(target, .b)])
            #expect(a.dtype == .bf16)
            #expect(pair.a == a.values)
            if p == .query || p == .key {
                #expect(pair.b != b.values)
                #expect(pair.b == LoRAPair.permuteRowsFromHF(b.values, rows: pair.outFeatures, width: 8, headDim: 64))
            } else {
                #expect(pair.b == b.values)
            }
        }
        // GGUF row 2j + i of head h is HF row h * 64 + i * 32 + j: head 1, j = 5, i = 1.
        let q = adapter.pairs[LoRATarget(layer: 0, projection: .query)]!.b
        let hf = raw[PEFTName.tensor(LoRATarget(layer: 0, projection: .query), .b)]!.values
        #expect(Array(q[(75 * 8)..<(76 * 8)]) == Array(hf[(101 * 8)..<(102 * 8)]))
        #expect(Array(q[(75 * 8)..<(76 * 8)]) != Array(hf[(75 * 8)..<(76 * 8)]))
    }

    @Test("exporting and re-reading gives the identical adapter")
    func exportRoundTrip() throws {
        let adapter = try fixtureAdapter()
        let files = try PEFTAdapter.encode(adapter, config: smolConfig, baseModelName: "SmolLM2-135M-Instruct")
        let back = try PEFTAdapter.decode(configJSON: files.configJSON, safetensors: files.safetensors, config: smolConfig)
        #expect(back == adapter)
        let tensors = try SafeTensors.decode(files.safetensors).tensors
        #expect(tensors.values.allSatisfy { $0.dtype == .f32 })
    }

    @Test("a BF16 export is an exact safetensors file equal byte for byte to the fixture's")
    func bf16ExportIsExact() throws {
        let adapter = try fixtureAdapter()
        let files = try PEFTAdapter.encode(adapter, config: smolConfig, baseModelName: "x", dtype: .bf16)
        let original = try Fixture.bytes("adapter_model.safetensors")
        let n = try GraftFile.headerByteCount(files.safetensors)
        #expect(n % 8 == 0)
        let header = try TensorHeader.parse(files.safetensors, graft: false)
        var offset = 0
        for e in header.entries { #expect(e.begin == offset); offset = e.end }
        #expect(files.safetensors.count == n + offset)
        let tail = files.safetensors[..<n].reversed().prefix { $0 != UInt8(ascii: "}") }
        #expect(tail.allSatisfy { $0 == 0x20 })
        let (ours, theirs) = try (SafeTensors.decode(files.safetensors).tensors, SafeTensors.decode(original).tensors)
        for (name, t) in theirs where ours[name] != t { Issue.record("tensor \(name) differs") }
        #expect(files.safetensors == original)
    }

    @Test("the exported adapter_config.json carries PEFT's keys and values")
    func exportedConfig() throws {
        let adapter = try fixtureAdapter()
        let json = try PEFTAdapter.encode(adapter, config: smolConfig, baseModelName: "SmolLM2-135M-Instruct").configJSON
        let config = try JSONSerialization.jsonObject(with: Data(json)) as! [String: Any]
        #expect(config["peft_type"] as? String == "LORA" && config["task_type"] as? String == "CAUSAL_LM")
        #expect(config["r"] as? Int == 8 && config["lora_alpha"] as? Int == 16 && config["lora_dropout"] as? Double == 0)
        #expect(config["bias"] as? String == "none" && config["use_rslora"] as? Bool == false)
        #expect(config["fan_in_fan_out"] as? Bool == false && config["inference_mode"] as? Bool == true)
        #expect(config["init_lora_weights"] as? Bool == true && config["use_dora"] as? Bool == false)
        #expect(config["base_model_name_or_path"] as? String == "SmolLM2-135M-Instruct")
        #expect(config["target_modules"] as? [String] == Projection.allCases.map(\.rawValue))
        #expect((config["rank_pattern"] as? [String: Any])?.isEmpty == true)
        #expect(String(decoding: json, as: UTF8.self).hasPrefix("{\n  \"alpha_pattern\": {},\n  \"auto_mapping\": null,"))
    }

    @Test("an adapter for another base model is refused with the shape hint")
    func wrongBase() throws {
        let narrow = LlamaConfig(layers: 30, dim: 64, ffnDim: 1536, heads: 1, kvHeads: 1, vocabularySize: 49152,
                                 contextLength: 8192, ropeBase: 100000, normEps: 1e-5)
        let error = thrownError { _ = try PEFTAdapter.read(directory: Fixture.adapterDirectory, config: narrow) }
        guard case .shapeMismatch = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(error!.description.contains("maybe wrong base model?"))
        let shallow = LlamaConfig(layers: 12, dim: 576, ffnDim: 1536, heads: 9, kvHeads: 3, vocabularySize: 49152,
                                  contextLength: 8192, ropeBase: 100000, normEps: 1e-5)
        let layerError = thrownError { _ = try PEFTAdapter.read(directory: Fixture.adapterDirectory, config: shallow) }
        guard case .layerOutOfRange(_, _, 12) = layerError else { Issue.record("got \(String(describing: layerError))"); return }
    }

    @Test("keys with an adapter name before .weight read the same")
    func adapterNamedKeys() throws {
        let adapter = syntheticAdapter(config: tinyConfig)
        let files = try PEFTAdapter.encode(adapter, config: tinyConfig, baseModelName: "tiny")
        let tensors = try SafeTensors.decode(files.safetensors).tensors
        var renamed: [String: SafeTensor] = [:]
        for (k, v) in tensors { renamed[k.replacingOccurrences(of: ".weight", with: ".default.weight")] = v }
        let back = try PEFTAdapter.decode(configJSON: files.configJSON, safetensors: SafeTensors.encode(renamed), config: tinyConfig)
        #expect(back == adapter)
    }

    @Test("per-target ranks export as rank_pattern and alpha_pattern that keep the scale, and read back identically")
    func perTargetRanks() throws {
        for rsLoRA in [false, true] {
            var adapter = syntheticAdapter(config: tinyConfig, rank: 4, alpha: 8,
                                           ranks: [LoRATarget(layer: 1, projection: .key): 6, LoRATarget(layer: 0, projection: .up): 2])
            adapter.useRSLoRA = rsLoRA
            let files = try PEFTAdapter.encode(adapter, config: tinyConfig, baseModelName: "tiny")
            let config = try JSONSerialization.jsonObject(with: Data(files.configJSON)) as! [String: Any]
            let ranks = config["rank_pattern"] as! [String: Int], alphas = config["alpha_pattern"] as! [String: Double]
            #expect(ranks == ["model.layers.1.self_attn.k_proj": 6, "model.layers.0.mlp.up_proj": 2])
            let upAlpha = try #require(alphas["model.layers.0.mlp.up_proj"])
            #expect(abs(upAlpha - (rsLoRA ? 8 * (0.5).squareRoot() : 4)) < 1e-9)
            let back = try PEFTAdapter.decode(configJSON: files.configJSON, safetensors: files.safetensors, config: tinyConfig)
            #expect(back == adapter)
        }
    }

    @Test("writing a directory and reading it back gives the same adapter")
    func directoryRoundTrip() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("graft-peft-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let adapter = syntheticAdapter(config: tinyConfig, projections: [.query, .down])
        try PEFTAdapter.write(adapter, config: tinyConfig, baseModelName: "tiny", to: dir)
        #expect(try PEFTAdapter.read(directory: dir, config: tinyConfig) == adapter)
        let missing = thrownError { _ = try PEFTAdapter.read(directory: dir.appendingPathComponent("nope"), config: tinyConfig) }
        guard case .io = missing else { Issue.record("got \(String(describing: missing))"); return }
    }
}
