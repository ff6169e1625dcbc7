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
        var byName: [String: (LoRATarget, LoRAPair)] = [:]
        for (t, p) in adapter.pairs { byName[GGUFKey.block(t.layer, t.projection.ggufName)] = (t, p) }
        for info in source.tensors {
            guard let (_, pair) = byName[info.name] else {
                writer.addTensor(info.name, dimensions: info.dimensions, type: info.type, data: Array(source.data(of: info)))
                continue
            }
            var values = try Dequantize.tensor(info, in: source)
            values.withUnsafeMutableBufferPointer { v in
                for o in 0..<info.rowCount { pair.addDeltaRow(o, scale: adapter.scale, to: v.baseAddress! + o * info.rowLength) }
            }
            writer.addTensor(info.name, dimensions: info.dimensions, type: type, values: values)
        }
        return writer.serialize()
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
