import LlamaModel

/// The parts of PEFT's `adapter_config.json` that decide how a LoRA adapter is applied.
///
/// Anything that would change the forward pass in a way Graft does not implement (DoRA,
/// transposed weights, trained biases, extra saved modules) is refused rather than ignored.
struct PEFTConfig {
    var rank: Int
    var alpha: Double
    var useRSLoRA: Bool
    /// Module names listed by target_modules (`q_proj`, `qkv_proj`...); nil for "all-linear".
    /// Which names exist depends on the architecture: the adapter reader checks them.
    var targetModules: Set<String>?
    /// rank_pattern / alpha_pattern: (key, module match, value), in file order.
    var rankPattern: [(key: String, matches: Matcher, value: Int)] = []
    var alphaPattern: [(key: String, matches: Matcher, value: Double)] = []

    /// Whether a pattern key selects the module in a layer.
    typealias Matcher = (_ layer: Int, _ module: PEFTModule) -> Bool

    /// Whether target_modules names `module`.
    func targets(_ module: PEFTModule) -> Bool { targetModules?.contains(module.name) ?? true }

    /// The rank PEFT would give the module: the first matching rank_pattern key, else r.
    func rank(layer: Int, _ module: PEFTModule) -> Int { rankPattern.first { $0.matches(layer, module) }?.value ?? rank }

    /// The alpha PEFT would give the module: the first matching alpha_pattern key, else lora_alpha.
    func alpha(layer: Int, _ module: PEFTModule) -> Double { alphaPattern.first { $0.matches(layer, module) }?.value ?? alpha }

    static func parse(_ bytes: [UInt8]) throws -> PEFTConfig {
        let json = try JSONParser.parse(bytes, range: 0..<bytes.count)
        guard json.members != nil else { throw AdapterFormatError.invalidConfig(key: "(file)", reason: "is not a JSON object") }
        func bad(_ key: String, _ reason: String) -> AdapterFormatError { .invalidConfig(key: key, reason: reason) }
        /// A member that is absent or null reads as nil.
        func field(_ key: String) -> JSONValue? { json[key].flatMap { $0.isNull ? nil : $0 } }
        func flag(_ key: String) throws -> Bool {
            guard let v = field(key) else { return false }
            guard let b = v.bool else { throw bad(key, "must be true or false") }
            return b
        }

        guard let type = field("peft_type")?.string else { throw bad("peft_type", "missing or not a string") }
        guard type == "LORA" else { throw AdapterFormatError.unsupported("PEFT type '\(type)' (only LORA adapters can be imported)") }
        guard let r = field("r")?.int, r > 0 else { throw bad("r", "missing or not a positive integer") }
        guard let alpha = field("lora_alpha")?.double, alpha.isFinite else { throw bad("lora_alpha", "missing or not a number") }
        if try flag("use_dora") { throw AdapterFormatError.unsupported("DoRA adapters (use_dora = true)") }
        if try flag("fan_in_fan_out") { throw AdapterFormatError.unsupported("fan_in_fan_out = true (transposed Conv1D weights)") }
        if try flag("lora_bias") { throw AdapterFormatError.unsupported("lora_bias = true (trained biases on lora_B)") }
        if let bias = field("bias"), bias.string != "none" {
            throw AdapterFormatError.unsupported("bias = \(bias.compact) (only \"none\"; Graft trains and serves no biases)")
        }
        for key in ["modules_to_save", "target_parameters", "trainable_token_indices"] {
            if let v = field(key), !(v.array?.isEmpty ?? false) && !(v.members?.isEmpty ?? false) {
                throw AdapterFormatError.unsupported("\(key) = \(v.compact) (only LoRA pairs on linear projections)")
            }
        }
        var config = PEFTConfig(rank: r, alpha: alpha, useRSLoRA: try flag("use_rslora"),
                                targetModules: try parseTargets(field("target_modules")))
        for (key, value) in field("rank_pattern")?.members ?? [] {
            guard let v = value.int, v > 0 else { throw bad("rank_pattern", "'\(key)' is not a positive integer") }
            config.rankPattern.append((key, try matcher(key, field: "rank_pattern"), v))
        }
        for (key, value) in field("alpha_pattern")?.members ?? [] {
            guard let v = value.double, v.isFinite else { throw bad("alpha_pattern", "'\(key)' is not a number") }
            config.alphaPattern.append((key, try matcher(key, field: "alpha_pattern"), v))
        }
        return config
    }

    private static func parseTargets(_ value: JSONValue?) throws -> Set<String>? {
        if let list = value?.array {
            return Set(try list.map { v in
                guard let s = v.string else { throw AdapterFormatError.invalidConfig(key: "target_modules", reason: "holds a non-string") }
                return s
            })
        }
        guard let s = value?.string else {
            throw AdapterFormatError.invalidConfig(key: "target_modules", reason: "missing, or neither a list nor a string")
        }
        // PEFT reads a string as a regular expression, except for this shorthand.
        if s == "all-linear" { return nil }
        if PEFTName.isIdentifier(s) { return [s] }
        throw AdapterFormatError.unsupported("target_modules as a regular expression ('\(s)'); list the module names")
    }

    /// Which modules a pattern key selects. PEFT treats keys as regular expressions matched
    /// against the end of a module path; we accept the two unambiguous forms: a module name
    /// (every layer) and one module's full path.
    private static func matcher(_ key: String, field: String) throws -> Matcher {
        if PEFTName.isIdentifier(key) { return { _, module in module.name == key } }
        if let t = PEFTName.parseModule(key) { return { layer, module in layer == t.layer && module.group == t.group && module.name == t.module } }
        throw AdapterFormatError.unsupported(
            "\(field) key '\(key)' (only a module name like q_proj or a full path like model.layers.3.self_attn.q_proj)")
    }

    /// adapter_config.json for `adapter`, formatted as PEFT writes it (sorted keys, two-space
    /// indent). Only keys long present in PEFT are written, so old and new versions load it;
    /// newer keys take their defaults. `targetModules` are the module names written, in layer
    /// order; `modules` are the written modules in layer order with
    /// their ranks; those whose rank differs from `adapter.rank` get a rank_pattern entry and an
    /// alpha_pattern entry that keeps their scale equal to the adapter's (`alpha / rank`, or
    /// `alpha / sqrt(rank)` with rsLoRA).
    static func serialize(_ adapter: LoRAAdapter, targetModules: [String], modules: [(layer: Int, module: PEFTModule, rank: Int)],
                          baseModelName: String) -> [UInt8] {
        var rankPattern: [(key: String, value: JSONValue)] = []
        var alphaPattern: [(key: String, value: JSONValue)] = []
        for (layer, module, rank) in modules where rank != adapter.rank {
            let ratio = Double(rank) / Double(adapter.rank)
            let alpha = Double(adapter.alpha) * (adapter.useRSLoRA ? ratio.squareRoot() : ratio)
            rankPattern.append((PEFTName.module(layer: layer, module), .int(rank)))
            alphaPattern.append((PEFTName.module(layer: layer, module), number(alpha)))
        }
        let members: [(key: String, value: JSONValue)] = [
            ("alpha_pattern", .object(alphaPattern)),
            ("auto_mapping", .null),
            ("base_model_name_or_path", .string(baseModelName)),
            ("bias", .string("none")),
            ("fan_in_fan_out", .bool(false)),
            ("inference_mode", .bool(true)),
            ("init_lora_weights", .bool(true)),
            ("layer_replication", .null),
            ("layers_pattern", .null),
            ("layers_to_transform", .null),
            ("loftq_config", .object([])),
            ("lora_alpha", adapter.alpha == adapter.alpha.rounded() ? number(Double(adapter.alpha)) : .number("\(adapter.alpha)")),
            ("lora_dropout", .double(0)),
            ("megatron_config", .null),
            ("megatron_core", .string("megatron.core")),
            ("modules_to_save", .null),
            ("peft_type", .string("LORA")),
            ("r", .int(adapter.rank)),
            ("rank_pattern", .object(rankPattern)),
            ("revision", .null),
            ("target_modules", .array(targetModules.map { .string($0) })),
            ("task_type", .string("CAUSAL_LM")),
            ("use_dora", .bool(false)),
            ("use_rslora", .bool(adapter.useRSLoRA)),
        ]
        return Array(JSONValue.object(members).pretty.utf8)
    }

    /// An integer when `v` is whole (PEFT's configs write `"lora_alpha": 16`), else a float.
    private static func number(_ v: Double) -> JSONValue {
        v == v.rounded() && abs(v) < 1e15 ? .int(Int(v)) : .double(v)
    }
}
