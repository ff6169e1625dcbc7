import LlamaModel

/// A linear module of a Hugging Face decoder layer that PEFT wraps with a LoRA pair, and the
/// Graft projections whose weights it holds. A fused module (Phi-3's `qkv_proj`, `gate_up_proj`)
/// holds several: its weight, and its lora_B, stacks their rows in `parts` order.
struct PEFTModule: Hashable, Sendable {
    /// `q_proj`, `qkv_proj`...
    let name: String
    /// The submodule of the layer: `self_attn` or `mlp`.
    let group: String
    let parts: [Projection]

    /// `self_attn.qkv_proj`.
    var qualifiedName: String { "\(group).\(name)" }

    /// The modules of a decoder layer of `architecture`, in layer order (Hugging Face's classes:
    /// Phi3Attention / Phi3MLP fuse q/k/v and gate/up; every other supported architecture keeps
    /// the seven projections separate).
    static func modules(for architecture: String) -> [PEFTModule] {
        if architecture == "phi3" {
            return [PEFTModule(name: "qkv_proj", group: "self_attn", parts: [.query, .key, .value]),
                    PEFTModule(name: "o_proj", group: "self_attn", parts: [.output]),
                    PEFTModule(name: "gate_up_proj", group: "mlp", parts: [.gate, .up]),
                    PEFTModule(name: "down_proj", group: "mlp", parts: [.down])]
        }
        return Projection.allCases.map { PEFTModule(name: $0.rawValue, group: PEFTName.group(of: $0), parts: [$0]) }
    }

    /// (out, in) features of the module's weight in `config`: its parts' rows stacked.
    func shape(in config: LlamaConfig) -> (out: Int, in: Int) {
        (parts.reduce(0) { $0 + config.shape(of: $1).out }, config.shape(of: parts[0]).in)
    }
}

/// PEFT's names for LoRA tensors and modules of a decoder model; the only place they are spelled.
enum PEFTName {
    /// Which factor of the pair: lora_A [rank, in] or lora_B [out, rank].
    enum Factor: String { case a = "lora_A", b = "lora_B" }

    static let tensorPrefix = "base_model.model.model.layers."

    /// The submodule holding a projection in a decoder layer.
    static func group(of p: Projection) -> String {
        switch p {
        case .query, .key, .value, .output: "self_attn"
        case .gate, .up, .down: "mlp"
        }
    }

    /// `base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight`: the name under the
    /// unfused layout (also the tensor names of `.graft` files).
    static func tensor(_ target: LoRATarget, _ factor: Factor) -> String {
        "\(tensorPrefix)\(target.layer).\(group(of: target.projection)).\(target.projection.rawValue).\(factor.rawValue).weight"
    }

    /// `base_model.model.model.layers.N.self_attn.qkv_proj.lora_B.weight`.
    static func tensor(layer: Int, _ module: PEFTModule, _ factor: Factor) -> String {
        "\(tensorPrefix)\(layer).\(module.qualifiedName).\(factor.rawValue).weight"
    }

    /// The module path PEFT's rank_pattern and alpha_pattern use: `model.layers.N.self_attn.q_proj`.
    static func module(layer: Int, _ module: PEFTModule) -> String {
        "model.layers.\(layer).\(module.qualifiedName)"
    }

    /// Parses a tensor name of any module in a decoder layer, with or without an adapter name
    /// before `.weight` (`...lora_A.default.weight`). Nil for anything else.
    static func parseModuleTensor(_ name: String) -> (layer: Int, group: String, module: String, factor: Factor)? {
        guard name.hasPrefix(tensorPrefix) else { return nil }
        let parts = name.dropFirst(tensorPrefix.count).split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 5 || parts.count == 6, parts.last == "weight", let layer = parseLayer(parts[0]),
              isIdentifier(parts[1]), isIdentifier(parts[2]),
              let factor = Factor(rawValue: String(parts[3])) else { return nil }
        if parts.count == 6 && parts[4].isEmpty { return nil }
        return (layer, String(parts[1]), String(parts[2]), factor)
    }

    /// Parses a tensor name of one of Graft's seven projections (the `.graft` file layout).
    static func parseTensor(_ name: String) -> (target: LoRATarget, factor: Factor)? {
        guard let (layer, group, module, factor) = parseModuleTensor(name),
              let p = Projection(rawValue: module), self.group(of: p) == group else { return nil }
        return (LoRATarget(layer: layer, projection: p), factor)
    }

    /// Parses a rank_pattern / alpha_pattern key naming exactly one module: `model.layers.N.
    /// self_attn.q_proj`, optionally anchored (`^`, `$`) or prefixed with `base_model.model.`.
    /// Nil for anything else, such as a regular expression matching several modules.
    static func parseModule(_ key: String) -> (layer: Int, group: String, module: String)? {
        var s = Substring(key)
        if s.hasPrefix("^") { s = s.dropFirst() }
        if s.hasSuffix("$") { s = s.dropLast() }
        if s.hasPrefix("base_model.model.") { s = s.dropFirst("base_model.model.".count) }
        guard s.hasPrefix("model.layers.") else { return nil }
        let parts = s.dropFirst("model.layers.".count).split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let layer = parseLayer(parts[0]), isIdentifier(parts[1]), isIdentifier(parts[2]) else { return nil }
        return (layer, String(parts[1]), String(parts[2]))
    }

    /// A plain module name (letters, digits, underscores), which PEFT's patterns match literally.
    static func isIdentifier<S: StringProtocol>(_ s: S) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { $0 == UInt8(ascii: "_") || (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }
    }

    /// Canonical decimal only, bounded so the conversion cannot overflow.
    private static func parseLayer(_ layer: Substring) -> Int? {
        guard !layer.isEmpty, layer.count <= 6, layer.allSatisfy(\.isASCII), let n = Int(layer), String(n) == layer else { return nil }
        return n
    }
}
