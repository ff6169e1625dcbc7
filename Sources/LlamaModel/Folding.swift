import GGUF
import TensorKit

extension LoRAPair {
    /// Row `o` of the update B · A (inFeatures floats), times `scale`, added to `row`.
    func addDeltaRow(_ o: Int, scale: Float, to row: UnsafeMutablePointer<Float>) {
        a.withUnsafeBufferPointer { a in
            for j in 0..<rank {
                Kernels.axpy(scale * b[o * rank + j], a.baseAddress! + j * inFeatures, row, inFeatures)
            }
        }
    }
}

extension LlamaModel {
    /// A copy of this model with `adapter` merged into the weights it targets:
    /// W' = W + scale · B · A, held as Float32 (the other weights are shared, not copied).
    public func folding(_ adapter: LoRAAdapter) throws -> LlamaModel {
        try adapter.validate(against: config)
        var w = weights
        for (target, pair) in adapter.pairs {
            let base = w.layers[target.layer].matrix(target.projection)
            let merged = PanelMatrix(rows: base.rows, cols: base.cols) { r, dst in
                base.decodeRow(r, into: dst)
                pair.addDeltaRow(r, scale: adapter.scale, to: dst)
            }
            w.layers[target.layer].set(target.projection, merged)
        }
        return LlamaModel(config: config, weights: w, tokenizer: tokenizer, name: name, pool: pool)
    }

    /// A GGUF image of `source` with `adapter` folded in: every targeted weight is written
    /// dequantized and merged as `type` (F32 or F16); all other tensors and all metadata are
    /// copied unchanged. Graft and other GGUF readers load the result as a plain model.
    public static func foldedGGUF(source: GGUFFile, adapter: LoRAAdapter, type: GGMLType = .f32,
                                  name: String? = nil) throws -> [UInt8] {
        guard type == .f32 || type == .f16 else {
            throw ModelError.invalidConfig("folded weights can be written as F32 or F16, not \(type.name)")
        }
        let config = try LlamaConfig(gguf: source)
        try adapter.validate(against: config)
        var writer = GGUFWriter()
        writer.alignment = source.alignment
        for key in source.metadataKeys {
            if key == "general.name", let name { writer.set(key, .string(name)); continue }
            if key == "general.file_type" { continue }  // no longer one uniform type
            writer.set(key, source.metadata[key]!)
        }
        // Each tensor's pairs with the first row they apply to: a fused tensor (Phi-3's
        // attn_qkv, [Q; K; V], and ffn_up, [gate; up]) takes several projections' pairs.
        var byName: [String: [(row: Int, pair: LoRAPair)]] = [:]
        for (t, p) in adapter.pairs {
            let (name, row) = Self.tensorRows(of: t, in: source, config: config)
            byName[name, default: []].append((row, p))
        }
        for info in source.tensors {
            guard let pairs = byName[info.name] else {
                writer.addTensor(info.name, dimensions: info.dimensions, type: info.type, data: Array(source.data(of: info)))
                continue
            }
            var values = try Dequantize.tensor(info, in: source)
            values.withUnsafeMutableBufferPointer { v in
                for (first, pair) in pairs {
                    for o in 0..<pair.outFeatures {
                        pair.addDeltaRow(o, scale: adapter.scale, to: v.baseAddress! + (first + o) * info.rowLength)
                    }
                }
            }
            writer.addTensor(info.name, dimensions: info.dimensions, type: type, values: values)
        }
        return writer.serialize()
    }

    /// The GGUF tensor holding projection `t` and the row its weight starts at.
    static func tensorRows(of t: LoRATarget, in source: GGUFFile, config c: LlamaConfig) -> (String, Int) {
        let fusedQKV = "blk.\(t.layer).attn_qkv.weight", fusedUp = "blk.\(t.layer).ffn_up.weight"
        let p = t.projection
        if [.query, .key, .value].contains(p) && source.tensor(named: fusedQKV) != nil {
            return (fusedQKV, p == .query ? 0 : p == .key ? c.qDim : c.qDim + c.kvDim)
        }
        if [.gate, .up].contains(p) && source.tensor(named: "blk.\(t.layer).ffn_gate.weight") == nil {
            return (fusedUp, p == .gate ? 0 : c.ffnDim)
        }
        return (GGUFKey.block(t.layer, p.ggufName), 0)
    }
}

extension LayerWeights {
    mutating func set(_ p: Projection, _ m: PanelMatrix) {
        switch p {
        case .query: query = m
        case .key: key = m
        case .value: value = m
        case .output: output = m
        case .gate: gate = m
        case .up: up = m
        case .down: down = m
        }
    }
}
