import Foundation
import LlamaModel

/// Interchange with PEFT adapter directories (`adapter_config.json` + `adapter_model.safetensors`).
///
/// PEFT stores rows of lora_B in HuggingFace order; for q_proj and k_proj that order splits
/// each head's RoPE halves, while Graft (like GGUF) interleaves them. Import permutes those
/// rows into Graft's order and export permutes them back; nothing else is reordered.
public enum PEFTAdapter {
    public static let configFile = "adapter_config.json"
    public static let weightsFile = "adapter_model.safetensors"

    /// Reads and validates the PEFT adapter in `directory` against the base model `config`.
    /// - Throws: `AdapterFormatError` (bad files, unsupported PEFT options, or shapes that do
    ///   not fit the base model).
    public static func read(directory: URL, config: LlamaConfig) throws -> LoRAAdapter {
        try decode(configJSON: readFile(directory.appendingPathComponent(configFile)),
                   safetensors: readFile(directory.appendingPathComponent(weightsFile)), config: config)
    }

    /// Writes `adapter` as a PEFT adapter into `directory` (created if needed), replacing the
    /// two files. `dtype` is the safetensors element type (F32 keeps every value exact).
    public static func write(_ adapter: LoRAAdapter, config: LlamaConfig, baseModelName: String, to directory: URL,
                             dtype: StorageType = .f32) throws {
        let files = try encode(adapter, config: config, baseModelName: baseModelName, dtype: dtype)
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try Data(files.safetensors).write(to: directory.appendingPathComponent(weightsFile), options: .atomic)
            try Data(files.configJSON).write(to: directory.appendingPathComponent(configFile), options: .atomic)
        } catch {
            throw AdapterFormatError.io(path: directory.path, message: "\(error)")
        }
    }

    /// The adapter held in the bytes of a PEFT adapter's two files.
    public static func decode(configJSON: [UInt8], safetensors: [UInt8], config: LlamaConfig) throws -> LoRAAdapter {
        let peft = try PEFTConfig.parse(configJSON)
        let tensors = try SafeTensors.decode(safetensors).tensors

        var a: [LoRATarget: (name: String, tensor: SafeTensor)] = [:]
        var b: [LoRATarget: (name: String, tensor: SafeTensor)] = [:]
        for (name, tensor) in tensors {
            guard let (target, factor) = PEFTName.parseTensor(name) else { throw AdapterFormatError.unknownTensor(name) }
            guard target.layer < config.layers else {
                throw AdapterFormatError.layerOutOfRange(tensor: name, layer: target.layer, layers: config.layers)
            }
            guard peft.targetModules.contains(target.projection) else {
                throw AdapterFormatError.invalidConfig(key: "target_modules",
                    reason: "does not list \(target.projection.rawValue) but the weights hold '\(name)'")
            }
            let previous = factor == .a ? a.updateValue((name, tensor), forKey: target)
                                        : b.updateValue((name, tensor), forKey: target)
            if previous != nil { throw AdapterFormatError.duplicateTensor(PEFTName.tensor(target, factor)) }
        }
        guard !a.isEmpty || !b.isEmpty else {
            throw AdapterFormatError.invalidConfig(key: "target_modules", reason: "\(weightsFile) holds no LoRA tensors")
        }

        let nominalScale = scale(alpha: peft.alpha, rank: peft.rank, rsLoRA: peft.useRSLoRA)
        var pairs: [LoRATarget: LoRAPair] = [:]
        for target in Set(a.keys).union(b.keys).sorted() {
            guard let ea = a[target] else {
                throw AdapterFormatError.missingPartner(tensor: b[target]!.name, partner: PEFTName.tensor(target, .a))
            }
            guard let eb = b[target] else {
                throw AdapterFormatError.missingPartner(tensor: ea.name, partner: PEFTName.tensor(target, .b))
            }
            let (outF, inF) = config.shape(of: target.projection)
            let rank = ea.tensor.shape.first ?? 0
            guard ea.tensor.shape.count == 2, ea.tensor.shape[1] == inF else {
                throw AdapterFormatError.shapeMismatch(tensor: ea.name, expected: [rank, inF], found: ea.tensor.shape)
            }
            guard eb.tensor.shape.count == 2, eb.tensor.shape[0] == outF else {
                throw AdapterFormatError.shapeMismatch(tensor: eb.name, expected: [outF, rank], found: eb.tensor.shape)
            }
            guard rank > 0, eb.tensor.shape[1] == rank else {
                throw AdapterFormatError.inconsistentShapes(target: target.description, a: ea.tensor.shape, b: eb.tensor.shape)
            }
            let expectedRank = peft.rank(of: target)
            guard rank == expectedRank else {
                throw AdapterFormatError.invalidConfig(key: peft.rankPattern.isEmpty ? "r" : "rank_pattern",
                    reason: "gives rank \(expectedRank) for \(target) but '\(ea.name)' has rank \(rank)")
            }
            // Graft applies one scale to every pair; PEFT's per-module alpha must agree with it.
            let s = scale(alpha: peft.alpha(of: target), rank: rank, rsLoRA: peft.useRSLoRA)
            guard abs(s - nominalScale) <= 1e-6 * abs(nominalScale) else {
                throw AdapterFormatError.unsupported(
                    "\(target) scales by \(s) but the adapter by \(nominalScale) (per-module scaling via alpha_pattern)")
            }
            let av = ea.tensor.values, bHF = eb.tensor.values
            guard av.allSatisfy(\.isFinite) else { throw AdapterFormatError.nonFiniteValue(tensor: ea.name) }
            guard bHF.allSatisfy(\.isFinite) else { throw AdapterFormatError.nonFiniteValue(tensor: eb.name) }
            let bv = ropePermuted(target.projection, config)
                ? LoRAPair.permuteRowsFromHF(bHF, rows: outF, width: rank, headDim: config.headDim) : bHF
            pairs[target] = LoRAPair(rank: rank, inFeatures: inF, outFeatures: outF, a: av, b: bv)
        }
        return LoRAAdapter(rank: peft.rank, alpha: Float(peft.alpha), useRSLoRA: peft.useRSLoRA, pairs: pairs)
    }

    /// The bytes of the two files of a PEFT adapter for `adapter` (see `write`).
    public static func encode(_ adapter: LoRAAdapter, config: LlamaConfig, baseModelName: String,
                              dtype: StorageType = .f32) throws -> (configJSON: [UInt8], safetensors: [UInt8]) {
        guard adapter.rank > 0 else { throw AdapterFormatError.invalidConfig(key: "r", reason: "rank \(adapter.rank) is not positive") }
        var tensors: [String: SafeTensor] = [:]
        for (target, pair) in adapter.pairs {
            let nameA = PEFTName.tensor(target, .a), nameB = PEFTName.tensor(target, .b)
            guard target.layer >= 0 && target.layer < config.layers else {
                throw AdapterFormatError.layerOutOfRange(tensor: nameA, layer: target.layer, layers: config.layers)
            }
            let (outF, inF) = config.shape(of: target.projection)
            guard pair.inFeatures == inF, pair.a.count == pair.rank * inF else {
                throw AdapterFormatError.shapeMismatch(tensor: nameA, expected: [pair.rank, inF], found: [pair.rank, pair.inFeatures])
            }
            guard pair.outFeatures == outF, pair.b.count == outF * pair.rank else {
                throw AdapterFormatError.shapeMismatch(tensor: nameB, expected: [outF, pair.rank], found: [pair.outFeatures, pair.rank])
            }
            let bHF = ropePermuted(target.projection, config)
                ? LoRAPair.permuteRowsToHF(pair.b, rows: outF, width: pair.rank, headDim: config.headDim) : pair.b
            for (name, values, shape) in [(nameA, pair.a, [pair.rank, inF]), (nameB, bHF, [outF, pair.rank])] {
                guard values.allSatisfy(\.isFinite) else { throw AdapterFormatError.nonFiniteValue(tensor: name) }
                guard let t = SafeTensor(values: values, shape: shape, dtype: dtype) else {
                    throw AdapterFormatError.valueOutOfRange(tensor: name, dtype: dtype.rawValue)
                }
                tensors[name] = t
            }
        }
        // PEFT's own writer stores {"format": "pt"}; some loaders check it.
        let weights = SafeTensors.encode(tensors, metadata: ["format": "pt"])
        return (PEFTConfig.serialize(adapter, baseModelName: baseModelName), weights)
    }

    /// Projections whose output rows are RoPE-rotated, hence ordered differently by HF and GGUF.
    /// Only the `llama` converter permutes q/k rows into adjacent RoPE pairs; the NeoX-style
    /// architectures keep Hugging Face's row order.
    private static func ropePermuted(_ p: Projection, _ config: LlamaConfig) -> Bool {
        config.ropeStyle == .adjacent && (p == .query || p == .key)
    }

    private static func scale(alpha: Double, rank: Int, rsLoRA: Bool) -> Double {
        rsLoRA ? alpha / Double(rank).squareRoot() : alpha / Double(rank)
    }

    private static func readFile(_ url: URL) throws -> [UInt8] {
        do {
            return [UInt8](try Data(contentsOf: url))
        } catch {
            throw AdapterFormatError.io(path: url.path, message: "cannot read (\(error.localizedDescription))")
        }
    }
}
