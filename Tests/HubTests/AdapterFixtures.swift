import AdapterFormat
import Foundation
import Hub
import LlamaModel
import TestSupport

typealias SplitMix = SeededRandom

/// Small adapters for a tiny Llama shape, encoded as `.graft` files.
enum AdapterFixtures {
    static let config = LlamaConfig(layers: 2, dim: 64, ffnDim: 96, heads: 4, kvHeads: 2, vocabularySize: 300,
                                    contextLength: 64, ropeBase: 10000, normEps: 1e-5)
    static let baseSHA = "aaaa1111bbbb2222cccc3333dddd4444eeee5555ffff6666aaaa7777bbbb8888"
    static let otherSHA = "9999000088887777666655554444333322221111000099998888777766665555"

    /// Random factors for `projections` of every layer of `config`.
    static func adapter(seed: UInt64, config: LlamaConfig = config, rank: Int = 2,
                        projections: [Projection] = [.query, .value, .down]) -> LoRAAdapter {
        var rng = SplitMix(seed: seed)
        func values(_ n: Int) -> [Float] { (0..<n).map { _ in Float.random(in: -0.5...0.5, using: &rng) } }
        var pairs: [LoRATarget: LoRAPair] = [:]
        for layer in 0..<config.layers {
            for p in projections {
                let (out, inF) = config.shape(of: p)
                pairs[LoRATarget(layer: layer, projection: p)] = LoRAPair(
                    rank: rank, inFeatures: inF, outFeatures: out, a: values(rank * inF), b: values(out * rank))
            }
        }
        return LoRAAdapter(rank: rank, alpha: Float(2 * rank), pairs: pairs)
    }

    static func info(tenant: String = "acme", name: String = "support", sha: String = baseSHA) -> AdapterInfo {
        AdapterInfo(baseModel: "tiny-llama", baseModelSHA256: sha, tenant: tenant, name: name,
                    created: Date(timeIntervalSince1970: 1_700_000_000))
    }

    /// The `.graft` bytes of `adapter(seed:...)`.
    static func graft(seed: UInt64, tenant: String = "acme", name: String = "support", sha: String = baseSHA,
                      config: LlamaConfig = config) throws -> [UInt8] {
        try GraftFile.encode(adapter(seed: seed, config: config), info: info(tenant: tenant, name: name, sha: sha))
    }

    /// Names in `dir`, hidden ones included, sorted; empty when it does not exist.
    static func entries(_ dir: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted()
    }

    /// Every regular file under `dir`, as paths relative to it, sorted.
    static func allFiles(_ dir: URL) -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: dir.path) else { return [] }
        var out: [String] = []
        while let path = walker.nextObject() as? String {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent(path).path, isDirectory: &isDirectory),
               !isDirectory.boolValue {
                out.append(path)
            }
        }
        return out.sorted()
    }

    static func adapterDirectory(_ hub: Hub, tenant: String = "acme", name: String = "support") -> URL {
        hub.tenantsDirectory.appendingPathComponent(tenant).appendingPathComponent("adapters").appendingPathComponent(name)
    }

    /// Whether `loaded` holds exactly the values of `adapter(seed:)`; a Bool, so a failure
    /// prints one line rather than every weight.
    static func holds(_ loaded: AdapterLoader.Loaded, seed: UInt64) -> Bool {
        guard let expected = try? PreparedAdapter(adapter(seed: seed), config: config) else { return false }
        return loaded.adapter.hasSameFactors(as: expected)
    }

    static func read(_ url: URL) throws -> [UInt8] { try [UInt8](Data(contentsOf: url)) }
}

/// Runs `body` with a hub rooted in a fresh temporary directory.
func withTemporaryHub<T>(_ body: (Hub) throws -> T) throws -> T {
    try withTemporaryDirectory { dir in try body(Hub(root: dir.appendingPathComponent("hub", isDirectory: true))) }
}

/// Parses an id the test knows to be valid.
func adapterID(_ text: String) throws -> AdapterID { try AdapterID(parsing: text) }
