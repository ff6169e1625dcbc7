import Foundation
import LlamaModel
@testable import AdapterFormat
import TestSupport

/// SmolLM2-135M's shape, as its GGUF metadata gives it.
let smolConfig = LlamaConfig(layers: 30, dim: 576, ffnDim: 1536, heads: 9, kvHeads: 3, vocabularySize: 49152,
                             contextLength: 8192, ropeBase: 100000, normEps: 1e-5)

/// A tiny Llama shape for fast tests: head dimension 16, two key/value heads.
let tinyConfig = LlamaConfig(layers: 2, dim: 64, ffnDim: 96, heads: 4, kvHeads: 2, vocabularySize: 100,
                             contextLength: 64, ropeBase: 10000, normEps: 1e-5)

enum Fixture {
    static let adapterDirectory = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/smollm2/adapter")

    static func bytes(_ file: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: adapterDirectory.appendingPathComponent(file)))
    }
}

typealias SeededGenerator = SeededRandom

/// An adapter shaped like a trained one: A ~ U(-1/sqrt(in), 1/sqrt(in)) (PEFT's Kaiming-uniform
/// init), B ~ N(0, bStd^2). `ranks` overrides the rank of chosen targets.
func syntheticAdapter(config: LlamaConfig, rank: Int = 4, alpha: Float = 8, projections: [Projection] = Projection.allCases,
                      bStd: Float = 0.02, ranks: [LoRATarget: Int] = [:], seed: UInt64 = 1) -> LoRAAdapter {
    var rng = SeededGenerator(seed: seed)
    var pairs: [LoRATarget: LoRAPair] = [:]
    for layer in 0..<config.layers {
        for p in projections {
            let target = LoRATarget(layer: layer, projection: p)
            let r = ranks[target] ?? rank
            let (outF, inF) = config.shape(of: p)
            let bound = 1 / Float(inF).squareRoot()
            let a = (0..<(r * inF)).map { _ in Float.random(in: -bound..<bound, using: &rng) }
            let b = (0..<(outF * r)).map { _ in rng.normal() * bStd }
            pairs[target] = LoRAPair(rank: r, inFeatures: inF, outFeatures: outF, a: a, b: b)
        }
    }
    return LoRAAdapter(rank: rank, alpha: alpha, pairs: pairs)
}

let sampleInfo = AdapterInfo(baseModel: "smollm2-135m-instruct", baseModelSHA256: String(repeating: "ab", count: 32),
                             tenant: "acme", name: "support-bot", created: Date(timeIntervalSince1970: 1_760_000_000))

/// Rewrites the JSON header of a safetensors-layout file, keeping its data section.
func editHeader(_ bytes: [UInt8], _ edit: (inout [String: Any]) -> Void) throws -> [UInt8] {
    let header = try TensorHeader.parse(bytes, graft: true)
    var json = try JSONSerialization.jsonObject(with: Data(bytes[8..<header.dataStart])) as! [String: Any]
    edit(&json)
    let text = try JSONSerialization.data(withJSONObject: json)
    var out = withHeaderLength(UInt64(text.count))
    out += [UInt8](text)
    return out + bytes[header.dataStart...]
}

/// Modifies one tensor entry of a header dictionary.
func editEntry(_ json: inout [String: Any], _ name: String, _ edit: (inout [String: Any]) -> Void) {
    var entry = json[name] as! [String: Any]
    edit(&entry)
    json[name] = entry
}

/// The 8-byte little-endian header length field.
func withHeaderLength(_ n: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: n >> (8 * UInt64($0))) } }

/// The data section and parsed header of a file, for tests that look at stored bytes.
func layout(_ bytes: [UInt8]) throws -> (header: TensorHeader, entries: [String: TensorEntry]) {
    let header = try TensorHeader.parse(bytes, graft: true)
    return (header, Dictionary(uniqueKeysWithValues: header.entries.map { ($0.name, $0) }))
}

/// The error `body` throws, for checking its case and facts.
func thrownError(_ body: () throws -> Void) -> AdapterFormatError? {
    do { try body() } catch let e as AdapterFormatError { return e } catch { return nil }
    return nil
}
