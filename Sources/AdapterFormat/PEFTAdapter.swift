import Foundation
import LlamaModel

/// Interchange with PEFT adapter directories (`adapter_config.json` + `adapter_model.safetensors`).
///
/// Module names follow the base model's architecture (see `PEFTModule`): Phi-3's fused
/// `qkv_proj` and `gate_up_proj` are split into Graft's projections on import and built back,
/// exactly, on export. PEFT stores rows of lora_B in HuggingFace order; for the `llama`
/// architecture's q_proj and k_proj that order splits each head's RoPE halves, while Graft
/// (like llama's GGUF files) interleaves them. Import permutes those rows into Graft's order
/// and export permutes them back; nothing else is reordered.
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

    /// The adapter held in the bytes of a PEFT adapter's two files. A fused module's pair
    /// (Phi-3's `qkv_proj`: A [r x in], B [(qDim + 2 kvDim) x r]) becomes one pair per part
    /// projection, all sharing A, each with its row block of B.
    public static func decode(configJSON: [UInt8], safetensors: [UInt8], config: LlamaConfig) throws -> LoRAAdapter {
        let peft = try PEFTConfig.parse(configJSON)
        let tensors = try SafeTensors.decode(safetensors).tensors
        let modules = PEFTModule.modules(for: config.architecture)

        var a: [ModuleKey: (name: String, tensor: SafeTensor)] = [:]
        var b: [ModuleKey: (name: String, tensor: SafeTensor)] = [:]
        for (name, tensor) in tensors.sorted(by: { $0.key < $1.key }) {
            guard let parsed = PEFTName.parseModuleTensor(name) else { throw AdapterFormatError.unknownTensor(name) }
            guard let index = modules.firstIndex(where: { $0.group == parsed.group && $0.name == parsed.module }) else {
                throw AdapterFormatError.moduleMismatch(tensor: name, architecture: config.architecture,
                                                        expected: modules.map(\.qualifiedName))
            }
            guard parsed.layer < config.layers else {
                throw AdapterFormatError.layerOutOfRange(tensor: name, layer: parsed.layer, layers: config.layers)
            }
            let key = ModuleKey(layer: parsed.layer, index: index)
            let previous = parsed.factor == .a ? a.updateValue((name, tensor), forKey: key)
                                               : b.updateValue((name, tensor), forKey: key)
            if previous != nil { throw AdapterFormatError.duplicateTensor(PEFTName.tensor(layer: key.layer, modules[index], parsed.factor)) }
        }
        guard !a.isEmpty || !b.isEmpty else {
            throw AdapterFormatError.invalidConfig(key: "target_modules", reason: "\(weightsFile) holds no LoRA tensors")
        }
        for name in (peft.targetModules ?? []).sorted() where !modules.contains(where: { $0.name == name }) {
            throw AdapterFormatError.unsupported("target module '\(name)' on a \(config.architecture) model "
                + "(its modules: \(modules.map(\.name).joined(separator: ", ")))")
        }
        for (key, e) in a.merging(b, uniquingKeysWith: { x, _ in x }).sorted(by: { $0.key < $1.key }) where !peft.targets(modules[key.index]) {
            throw AdapterFormatError.invalidConfig(key: "target_modules",
                reason: "does not list \(modules[key.index].name) but the weights hold '\(e.name)'")
        }

        let nominalScale = scale(alpha: peft.alpha, rank: peft.rank, rsLoRA: peft.useRSLoRA)
        var pairs: [LoRATarget: LoRAPair] = [:]
        for key in Set(a.keys).union(b.keys).sorted() {
            let module = modules[key.index], layer = key.layer
            guard let ea = a[key] else {
                throw AdapterFormatError.missingPartner(tensor: b[key]!.name, partner: PEFTName.tensor(layer: layer, module, .a))
            }
            guard let eb = b[key] else {
                throw AdapterFormatError.missingPartner(tensor: ea.name, partner: PEFTName.tensor(layer: layer, module, .b))
            }
            let (outF, inF) = module.shape(in: config)
            let rank = ea.tensor.shape.first ?? 0
            guard ea.tensor.shape.count == 2, ea.tensor.shape[1] == inF else {
                throw AdapterFormatError.shapeMismatch(tensor: ea.name, expected: [rank, inF], found: ea.tensor.shape)
            }
            guard eb.tensor.shape.count == 2, eb.tensor.shape[0] == outF else {
                throw AdapterFormatError.shapeMismatch(tensor: eb.name, expected: [outF, rank], found: eb.tensor.shape)
            }
            guard rank > 0, eb.tensor.shape[1] == rank else {
                throw AdapterFormatError.inconsistentShapes(target: PEFTName.module(layer: layer, module), a: ea.tensor.shape, b: eb.tensor.shape)
            }
            let expectedRank = peft.rank(layer: layer, module)
            guard rank == expectedRank else {
                throw AdapterFormatError.invalidConfig(key: peft.rankPattern.isEmpty ? "r" : "rank_pattern",
                    reason: "gives rank \(expectedRank) for \(PEFTName.module(layer: layer, module)) but '\(ea.name)' has rank \(rank)")
            }
            // Graft applies one scale to every pair; PEFT's per-module alpha must agree with it.
            let s = scale(alpha: peft.alpha(layer: layer, module), rank: rank, rsLoRA: peft.useRSLoRA)
            guard abs(s - nominalScale) <= 1e-6 * abs(nominalScale) else {
                throw AdapterFormatError.unsupported("\(PEFTName.module(layer: layer, module)) scales by \(s) but the adapter "
                    + "by \(nominalScale) (per-module scaling via alpha_pattern)")
            }
            let av = ea.tensor.values, bHF = eb.tensor.values
            guard av.allSatisfy(\.isFinite) else { throw AdapterFormatError.nonFiniteValue(tensor: ea.name) }
            guard bHF.allSatisfy(\.isFinite) else { throw AdapterFormatError.nonFiniteValue(tensor: eb.name) }
            var row = 0
            for p in module.parts {
                let rows = config.shape(of: p).out
                let block = Array(bHF[row * rank..<(row + rows) * rank])
                let bv = ropePermuted(p, config)
                    ? LoRAPair.permuteRowsFromHF(block, rows: rows, width: rank, headDim: config.headDim) : block
                pairs[LoRATarget(layer: layer, projection: p)] = LoRAPair(rank: rank, inFeatures: inF, outFeatures: rows, a: av, b: bv)
                row += rows
            }
        }
        return LoRAAdapter(rank: peft.rank, alpha: Float(peft.alpha), useRSLoRA: peft.useRSLoRA, pairs: pairs)
    }

    /// The bytes of the two files of a PEFT adapter for `adapter` (see `write`), with the
    /// module names of `config.architecture`.
    ///
    /// A fused module (Phi-3's `qkv_proj`, `gate_up_proj`) gets one exact LoRA pair for the
    /// Graft pairs of its parts, which may have different ranks and A's, and may be absent:
    /// the distinct A's are stacked (parts whose A is identical share one block), and each
    /// part's B is placed in its row block, in the columns of its A block, with zeros
    /// elsewhere. Row block k of B_f · A_f is then B_k · A_k, and an absent part's rows are
    /// zero. The fused rank R (the total rows of A) gets a rank_pattern entry when it differs
    /// from `adapter.rank`, with an alpha_pattern entry that gives it the adapter's scale
    /// (alpha · R / rank, or alpha · √(R / rank) with rsLoRA), so PEFT computes exactly Graft's
    /// scale · B_k · A_k for every part.
    public static func encode(_ adapter: LoRAAdapter, config: LlamaConfig, baseModelName: String,
                              dtype: StorageType = .f32) throws -> (configJSON: [UInt8], safetensors: [UInt8]) {
        guard adapter.rank > 0 else { throw AdapterFormatError.invalidConfig(key: "r", reason: "rank \(adapter.rank) is not positive") }
        let modules = PEFTModule.modules(for: config.architecture)
        for (target, pair) in adapter.pairs.sorted(by: { $0.key < $1.key }) {
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
        }
        var tensors: [String: SafeTensor] = [:]
        var written: [(layer: Int, module: PEFTModule, rank: Int)] = []
        for layer in 0..<config.layers {
            for module in modules {
                let present = module.parts.compactMap { p in adapter.pairs[LoRATarget(layer: layer, projection: p)].map { (p, $0) } }
                guard !present.isEmpty else { continue }
                let (a, b, rank) = fused(module, present, config)
                let (outF, inF) = module.shape(in: config)
                for (factor, values, shape) in [(PEFTName.Factor.a, a, [rank, inF]), (.b, b, [outF, rank])] {
                    let name = PEFTName.tensor(layer: layer, module, factor)
                    guard values.allSatisfy(\.isFinite) else { throw AdapterFormatError.nonFiniteValue(tensor: name) }
                    guard let t = SafeTensor(values: values, shape: shape, dtype: dtype) else {
                        throw AdapterFormatError.valueOutOfRange(tensor: name, dtype: dtype.rawValue)
                    }
                    tensors[name] = t
                }
                written.append((layer, module, rank))
            }
        }
        // PEFT's own writer stores {"format": "pt"}; some loaders check it.
        let weights = SafeTensors.encode(tensors, metadata: ["format": "pt"])
        let names = modules.filter { m in written.contains { $0.module == m } }.map(\.name)
        return (PEFTConfig.serialize(adapter, targetModules: names, modules: written, baseModelName: baseModelName), weights)
    }

    /// One module's A [R x in] and B [out x R] (Hugging Face row order) from the Graft pairs of
    /// its parts that are `present` (see `encode`). For an unfused module, the pair itself.
    private static func fused(_ module: PEFTModule, _ present: [(Projection, LoRAPair)],
                              _ config: LlamaConfig) -> (a: [Float], b: [Float], rank: Int) {
        // Distinct A blocks and, per present part, the column where its block starts.
        var a: [Float] = [], blocks: [(rank: Int, values: [Float], column: Int)] = [], column: [Projection: Int] = [:]
        for (p, pair) in present {
            if let shared = blocks.first(where: { $0.rank == pair.rank && $0.values == pair.a }) {
                column[p] = shared.column
            } else {
                column[p] = blocks.reduce(0) { $0 + $1.rank }
                blocks.append((pair.rank, pair.a, column[p]!))
                a += pair.a
            }
        }
        let rank = blocks.reduce(0) { $0 + $1.rank }
        var b = [Float](repeating: 0, count: module.shape(in: config).out * rank)
        var row = 0
        for p in module.parts {
            let rows = config.shape(of: p).out
            defer { row += rows }
            guard let pair = present.first(where: { $0.0 == p })?.1, let c = column[p] else { continue }
            let bHF = ropePermuted(p, config)
                ? LoRAPair.permuteRowsToHF(pair.b, rows: rows, width: pair.rank, headDim: config.headDim) : pair.b
            for r in 0..<rows {
                for j in 0..<pair.rank { b[(row + r) * rank + c + j] = bHF[r * pair.rank + j] }
            }
        }
        return (a, b, rank)
    }

    /// A module of a layer, by its index in the architecture's module list; sorts in model order.
    private struct ModuleKey: Hashable, Comparable {
        var layer: Int
        var index: Int
        static func < (x: ModuleKey, y: ModuleKey) -> Bool { (x.layer, x.index) < (y.layer, y.index) }
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
