import Foundation
import GGUF
import LlamaModel
import TensorKit
import TestSupport
import Testing

/// The training pass's gradients: against finite differences of a plain Double reference on a
/// tiny random model, across thread counts and batch compositions.
@Suite("Training pass gradients")
struct TrainingGradientTests {
    static let spec = TinyModel.Spec(layers: 2, dim: 64, ffn: 96, heads: 4, kvHeads: 2, seed: 11)

    /// One tiny model per architecture hook: each architecture's forward and backward against
    /// the Double reference's finite differences.
    static func spec(_ name: String) -> TinyModel.Spec {
        var s = spec
        switch name {
        case "llama3": s.ropeFactors = true
        case "qwen2": s.architecture = "qwen2"
        case "qwen3": s.architecture = "qwen3"; s.headDim = 32
        case "phi3": s.architecture = "phi3"
        case "gemma2": s.architecture = "gemma2"; s.slidingWindow = 3; s.attentionSoftcap = 1.5; s.finalSoftcap = 3
        case "gemma3": s.architecture = "gemma3"; s.slidingWindow = 3; s.headDim = 32
        default: break
        }
        return s
    }

    static func batch() -> [TrainingSequence] {
        let a = [5, 40, 77, 12, 99, 3, 150, 61], b = [7, 201, 33, 80, 14]
        func seq(_ t: [Int], labelFrom: Int) -> TrainingSequence {
            TrainingSequence(tokens: t, targets: t.indices.map { $0 + 1 < t.count && $0 + 1 >= labelFrom ? t[$0 + 1] : -1 })
        }
        var batch = [seq(a, labelFrom: 3), seq(b, labelFrom: 1)]
        let n = Float(batch.reduce(0) { $0 + $1.labelCount })
        for i in batch.indices { batch[i].weight = 1 / n }
        return batch
    }

    /// Factors with a nonzero B, so that every gradient is nonzero.
    static func lora(_ model: LlamaModel, rank: Int = 4) -> TrainableLoRA {
        let lora = TrainableLoRA(shape: LoRAShape(rank: rank, alpha: 8), config: model.config, seed: 7)
        var rng = SeededGenerator(seed: 3)
        for t in lora.tensors where t.name.hasSuffix("lora_B") {
            for i in 0..<t.count { lora.values[t.offset + i] = (2 * rng.nextUnitFloat() - 1) * 0.2 }
        }
        return lora
    }

    /// The worst relative error, over three random unit directions d, between the analytic
    /// directional derivative gradient·d and the central difference of `loss` with step 1e-4.
    static func directionalError(theta: [Double], gradient: [Double], rng: inout SeededGenerator, floor: Double = 0,
                                 loss: ([Double]) -> Double) -> Double {
        let h = 1e-4
        var worst = 0.0
        for _ in 0..<3 {
            var d = (0..<theta.count).map { _ in Double(rng.nextUnitFloat()) - 0.5 }
            let norm = d.reduce(0) { $0 + $1 * $1 }.squareRoot()
            d = d.map { $0 / norm }
            let fd = (loss(zip(theta, d).map { $0 + h * $1 }) - loss(zip(theta, d).map { $0 - h * $1 })) / (2 * h)
            let analytic = zip(gradient, d).reduce(0) { $0 + $1.0 * $1.1 }
            worst = max(worst, abs(analytic - fd) / max(abs(fd), floor))
        }
        return worst
    }

    static func factors(_ lora: TrainableLoRA, _ params: [Double]) -> ReferenceTraining.Factors {
        var f: ReferenceTraining.Factors = [:]
        let tensors = lora.tensors
        for i in stride(from: 0, to: tensors.count, by: 2) {
            let a = tensors[i], b = tensors[i + 1]
            let parts = a.name.split(separator: ".")  // layers.L.proj.lora_A
            let target = LoRATarget(layer: Int(parts[1])!, projection: Projection(rawValue: String(parts[2]))!)
            f[target] = (lora.shape.rank, Array(params[a.offset..<a.offset + a.count]), Array(params[b.offset..<b.offset + b.count]))
        }
        return f
    }

    @Test("loss matches the Double reference and gradients match its finite differences (directional and per coordinate)",
          arguments: ["llama", "llama3", "qwen2", "qwen3", "phi3", "gemma2", "gemma3"])
    func finiteDifferences(architecture: String) throws {
        let gguf = try GGUFFile(data: TinyModel.gguf(Self.spec(architecture)))
        let model = try LlamaModel(gguf: gguf)
        let reference = try ReferenceTraining(gguf: gguf)
        let lora = Self.lora(model)
        let batch = Self.batch()
        lora.zeroGradients()
        let losses = try model.trainingPass(batch, lora: lora, backward: true)
        let loss = zip(batch, losses).reduce(0.0) { $0 + Double($1.0.weight) * $1.1.nll }
        let theta = (0..<lora.count).map { Double(lora.values[$0]) }
        let grad = (0..<lora.count).map { Double(lora.gradients[$0]) }
        let scale = Double(lora.shape.scale)
        func L(_ p: [Double]) -> Double { reference.loss(batch, lora: Self.factors(lora, p), scale: scale) }
        let refLoss = L(theta)
        #expect(abs(loss - refLoss) / refLoss < 1e-5, "loss \(loss) vs reference \(refLoss)")

        var rng = SeededGenerator(seed: 99)
        let h = 1e-4
        let worstDirectional = Self.directionalError(theta: theta, gradient: grad, rng: &rng, loss: L)
        #expect(worstDirectional < 1e-3, "directional derivative relative error \(worstDirectional)")

        // A few coordinates of every tensor of the first layer's and the last layer's targets.
        var errNorm = 0.0, refNorm = 0.0
        for t in lora.tensors {
            for _ in 0..<2 {
                let i = t.offset + Int(rng.next() % UInt64(t.count))
                var plus = theta, minus = theta
                plus[i] += h; minus[i] -= h
                let fd = (L(plus) - L(minus)) / (2 * h)
                errNorm += (grad[i] - fd) * (grad[i] - fd)
                refNorm += fd * fd
            }
        }
        let rel = (errNorm / refNorm).squareRoot()
        #expect(rel < 1e-3, "per-coordinate relative L2 error \(rel)")
        print("\(architecture) training gradients vs finite differences: directional \(worstDirectional), coordinates \(rel)")
    }

    @Test("gradients are bit-identical on one thread and two, and a batch's equal the sum of its sequences'")
    func determinismAndBatching() throws {
        let gguf = try GGUFFile(data: TinyModel.gguf(Self.spec))
        let batch = Self.batch()
        var results: [[Float]] = []
        for threads in [1, 2] {
            let model = try LlamaModel(gguf: gguf, pool: ThreadPool(threadCount: threads))
            let lora = Self.lora(model)
            lora.zeroGradients()
            _ = try model.trainingPass(batch, lora: lora, backward: true)
            results.append(Array(UnsafeBufferPointer(start: lora.gradients, count: lora.count)))
        }
        #expect(results[0] == results[1])

        let model = try LlamaModel(gguf: gguf)
        let lora = Self.lora(model)
        lora.zeroGradients()
        for seq in batch { _ = try model.trainingPass([seq], lora: lora, backward: true) }
        let separate = Array(UnsafeBufferPointer(start: lora.gradients, count: lora.count))
        let diff = zip(separate, results[0]).reduce(Float(0)) { max($0, abs($1.0 - $1.1)) }
        #expect(diff < 1e-6 * max(1, separate.map(abs).max()!), "batched vs separate: \(diff)")
    }

    @Test("LoRA dropout is reproducible from its key and changes the loss only when the rate is positive")
    func dropout() throws {
        let model = try TinyModel.model(Self.spec)
        let batch = Self.batch()
        func run(rate: Float, key: UInt64) throws -> (Double, [Float]) {
            let lora = TrainableLoRA(shape: LoRAShape(rank: 4, alpha: 8, dropout: rate), config: model.config, seed: 7)
            let base = Self.lora(model)
            lora.values.update(from: base.values, count: lora.count)
            lora.zeroGradients()
            let l = try model.trainingPass(batch, lora: lora, backward: true, dropoutKey: key)
            return (l.reduce(0) { $0 + $1.nll }, Array(UnsafeBufferPointer(start: lora.gradients, count: lora.count)))
        }
        let plain = try run(rate: 0, key: 1), zeroRate = try run(rate: 0, key: 2)
        #expect(plain.0 == zeroRate.0 && plain.1 == zeroRate.1)
        let a = try run(rate: 0.3, key: 5), b = try run(rate: 0.3, key: 5), c = try run(rate: 0.3, key: 6)
        #expect(a.0 == b.0 && a.1 == b.1)
        #expect(a.0 != plain.0 && a.0 != c.0)
    }
}
