import LlamaModel

/// PEFT's names for LoRA tensors and modules of a Llama model; the only place they are spelled.
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

    /// `base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight`.
    static func tensor(_ target: LoRATarget, _ factor: Factor) -> String {
        "\(tensorPrefix)\(target.layer).\(group(of: target.projection)).\(target.projection.rawValue).\(factor.rawValue).weight"
    }

    /// The module path PEFT's rank_pattern and alpha_pattern use: `model.layers.N.self_attn.q_proj`.
    static func module(_ target: LoRATarget) -> String {
        "model.layers.\(target.layer).\(group(of: target.projection)).\(target.projection.rawValue)"
    }

    /// Parses a tensor name, with or without an adapter name before `.weight`
    /// (`...lora_A.default.weight`). Nil for anything else.
    static func parseTensor(_ name: String) -> (target: LoRATarget, factor: Factor)? {
        guard name.hasPrefix(tensorPrefix) else { return nil }
        let parts = name.dropFirst(tensorPrefix.count).split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 5 || parts.count == 6, parts.last == "weight",
              let target = parseTarget(parts[0], parts[1], parts[2]),
              let factor = Factor(rawValue: String(parts[3])) else { return nil }
        if parts.count == 6 && parts[4].isEmpty { return nil }
        return (target, factor)
    }

    /// Parses a rank_pattern / alpha_pattern key naming exactly one module: `model.layers.N.
    /// self_attn.q_proj`, optionally anchored (`^`, `$`) or prefixed with `base_model.model.`.
    /// Nil for anything else, such as a regular expression matching several modules.
    static func parseModule(_ key: String) -> LoRATarget? {
        var s = Substring(key)
        if s.hasPrefix("^") { s = s.dropFirst() }
        if s.hasSuffix("$") { s = s.dropLast() }
        if s.hasPrefix("base_model.model.") { s = s.dropFirst("base_model.model.".count) }
        guard s.hasPrefix("model.layers.") else { return nil }
        let parts = s.dropFirst("model.layers.".count).split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { return nil }
        return parseTarget(parts[0], parts[1], parts[2])
    }

    private static func parseTarget(_ layer: Substring, _ group: Substring, _ module: Substring) -> LoRATarget? {
        // Canonical decimal only, bounded so the conversion cannot overflow.
        guard !layer.isEmpty, layer.count <= 6, layer.allSatisfy(\.isASCII), let n = Int(layer),
              String(n) == layer, let p = Projection(rawValue: String(module)),
              self.group(of: p) == group else { return nil }
        return LoRATarget(layer: n, projection: p)
    }
}
