import Foundation
import LlamaModel
import Testing
@testable import AdapterFormat

/// PEFT adapters Graft cannot serve faithfully are refused with a message saying why.
@Suite("PEFT adapters that must be rejected")
struct PEFTRejectionTests {
    /// A tiny rank-8 adapter's weights with the fixture's adapter_config.json, edited by `edit`.
    private func decode(_ edit: (inout [String: Any]) -> Void,
                        tensors: (inout [String: SafeTensor]) -> Void = { _ in }) throws -> LoRAAdapter {
        var config = try JSONSerialization.jsonObject(with: Data(Fixture.bytes("adapter_config.json"))) as! [String: Any]
        edit(&config)
        let json = [UInt8](try JSONSerialization.data(withJSONObject: config))
        let adapter = syntheticAdapter(config: tinyConfig, rank: 8, alpha: 16)
        var weights = try SafeTensors.decode(PEFTAdapter.encode(adapter, config: tinyConfig, baseModelName: "t").safetensors).tensors
        tensors(&weights)
        return try PEFTAdapter.decode(configJSON: json, safetensors: SafeTensors.encode(weights), config: tinyConfig)
    }

    @Test("the unedited fixture config reads a matching adapter")
    func baseline() throws {
        #expect(try decode { _ in } == syntheticAdapter(config: tinyConfig, rank: 8, alpha: 16))
    }

    @Test("unsupported PEFT options are refused with 'not supported'", arguments: [
        ("use_dora", "true", "DoRA"),
        ("fan_in_fan_out", "true", "fan_in_fan_out"),
        ("peft_type", #""PREFIX_TUNING""#, "PREFIX_TUNING"),
        ("bias", #""all""#, "bias"),
        ("modules_to_save", #"["lm_head"]"#, "modules_to_save"),
        ("lora_bias", "true", "lora_bias"),
        ("target_modules", #"".*proj""#, "regular expression"),
        ("target_modules", #"["q_proj", "lm_head"]"#, "lm_head"),
        ("rank_pattern", #"{".*\\.q_proj": 4}"#, "rank_pattern key"),
        ("alpha_pattern", #"{"q_proj": 32}"#, "scales by"),
    ])
    func unsupportedOptions(key: String, json: String, mention: String) throws {
        let value = try JSONSerialization.jsonObject(with: Data(json.utf8), options: .fragmentsAllowed)
        let error = thrownError { _ = try decode { $0[key] = value } }
        guard case .unsupported(let what) = error else { Issue.record("\(key): got \(String(describing: error))"); return }
        #expect(what.contains(mention))
        #expect(error!.description.hasPrefix("not supported"))
    }

    @Test("missing or mistyped required keys are named", arguments: ["r", "lora_alpha", "peft_type", "target_modules"])
    func missingKeys(key: String) {
        let error = thrownError { _ = try decode { $0[key] = nil } }
        guard case .invalidConfig(key, _) = error else { Issue.record("got \(String(describing: error))"); return }
    }

    @Test("a rank that disagrees with r is refused; a matching rank_pattern makes it acceptable")
    func rankAgainstConfig() throws {
        let error = thrownError { _ = try decode { $0["r"] = 4 } }
        guard case .invalidConfig("r", _) = error else { Issue.record("got \(String(describing: error))"); return }
        // Every module at rank 8 and alpha 16 keeps the scale of r = 4, alpha = 8.
        let names = Projection.allCases.map(\.rawValue)
        let adapter = try decode {
            $0["r"] = 4; $0["lora_alpha"] = 8
            $0["rank_pattern"] = Dictionary(uniqueKeysWithValues: names.map { ($0, 8) })
            $0["alpha_pattern"] = Dictionary(uniqueKeysWithValues: names.map { ($0, 16) })
        }
        #expect(adapter.rank == 4 && adapter.alpha == 8 && adapter.scale == 2)
        #expect(adapter.pairs.values.allSatisfy { $0.rank == 8 })
        let partial = thrownError { _ = try decode { $0["r"] = 4; $0["rank_pattern"] = ["model.layers.1.self_attn.q_proj": 8] } }
        guard case .invalidConfig("rank_pattern", _) = partial else { Issue.record("got \(String(describing: partial))"); return }
    }

    @Test("string target_modules accept a single name and all-linear")
    func stringTargets() throws {
        #expect(try decode { $0["target_modules"] = "all-linear" }.pairs.count == 14)
        let error = thrownError { _ = try decode { $0["target_modules"] = "q_proj" } }
        guard case .invalidConfig("target_modules", _) = error else { Issue.record("got \(String(describing: error))"); return }
    }

    @Test("tensor problems are reported by name: missing partner, unknown key, bad shapes")
    func tensorProblems() {
        let qA = PEFTName.tensor(LoRATarget(layer: 0, projection: .query), .a)
        let qB = PEFTName.tensor(LoRATarget(layer: 0, projection: .query), .b)
        #expect(thrownError { _ = try decode({ _ in }, tensors: { $0[qB] = nil }) } == .missingPartner(tensor: qA, partner: qB))
        #expect(thrownError { _ = try decode({ _ in }, tensors: { $0["base_model.model.lm_head.weight"] = $0[qA] }) }
                == .unknownTensor("base_model.model.lm_head.weight"))
        let wrong = SafeTensor(values: [Float](repeating: 0, count: 8 * 32), shape: [8, 32], dtype: .f32)!
        let error = thrownError { _ = try decode({ _ in }, tensors: { $0[qA] = wrong }) }
        #expect(error == .shapeMismatch(tensor: qA, expected: [8, 64], found: [8, 32]))
        let mismatched = SafeTensor(values: [Float](repeating: 0, count: 4 * 64), shape: [4, 64], dtype: .f32)!
        guard case .inconsistentShapes = thrownError({ _ = try decode({ _ in }, tensors: { $0[qA] = mismatched }) }) else {
            Issue.record("a rank-4 A with a rank-8 B was accepted"); return
        }
    }

    @Test("malformed JSON in adapter_config.json is reported with its offset")
    func badJSON() {
        let error = thrownError {
            _ = try PEFTAdapter.decode(configJSON: Array(#"{"r": 8,}"#.utf8), safetensors: SafeTensors.encode([:]), config: tinyConfig)
        }
        guard case .invalidJSON(8, _) = error else { Issue.record("got \(String(describing: error))"); return }
    }
}
