import Foundation
import GGUF
import LlamaModel
import TestSupport
import SFTObjective
import Testing
import Training

@Suite("Optimizer, schedules and clipping as PyTorch and transformers define them")
struct OptimizerTests {
    @Test("AdamW: decoupled decay first, bias-corrected moments, eps after the square root")
    func adamw() {
        var opt = AdamW(weightDecay: 0.1)
        var p: [Float] = [1, -2], g: [Float] = [0.5, -0.25], m: [Float] = [0, 0], v: [Float] = [0, 0]
        let lr = 0.01
        var ref = p.map(Double.init), rm = [0.0, 0.0], rv = [0.0, 0.0]
        for step in 1...3 {
            p.withUnsafeMutableBufferPointer { pp in
                m.withUnsafeMutableBufferPointer { mm in
                    v.withUnsafeMutableBufferPointer { vv in
                        opt.update(pp.baseAddress!, gradients: g, m: mm.baseAddress!, v: vv.baseAddress!, count: 2, lr: lr)
                    }
                }
            }
            for i in 0..<2 {
                ref[i] *= 1 - lr * 0.1
                rm[i] = 0.9 * rm[i] + 0.1 * Double(g[i])
                rv[i] = 0.999 * rv[i] + 0.001 * Double(g[i]) * Double(g[i])
                let mhat = rm[i] / (1 - pow(0.9, Double(step))), denom = (rv[i] / (1 - pow(0.999, Double(step)))).squareRoot() + 1e-8
                ref[i] -= lr * mhat / denom
            }
        }
        #expect(opt.step == 3)
        for i in 0..<2 { #expect(abs(Double(p[i]) - ref[i]) < 1e-6, "\(p[i]) vs \(ref[i])") }
    }

    @Test("schedules: warm-up from 0, linear decay to lr/(N-W) at the last step, cosine half wave")
    func schedules() {
        #expect(LRSchedule.linear.multiplier(step: 0, total: 10, warmup: 2) == 0)
        #expect(LRSchedule.linear.multiplier(step: 1, total: 10, warmup: 2) == 0.5)
        #expect(LRSchedule.linear.multiplier(step: 2, total: 10, warmup: 2) == 1)
        #expect(LRSchedule.linear.multiplier(step: 9, total: 10, warmup: 2) == 1.0 / 8)
        #expect(LRSchedule.linear.multiplier(step: 0, total: 4, warmup: 0) == 1)
        #expect(LRSchedule.constant.multiplier(step: 7, total: 10, warmup: 2) == 1)
        #expect(abs(LRSchedule.cosine.multiplier(step: 6, total: 10, warmup: 2) - 0.5) < 1e-12)
        var c = TrainingConfig()
        c.warmup = 0.1
        #expect(c.warmupSteps(total: 25) == 3)
        c.warmup = 4
        #expect(c.warmupSteps(total: 25) == 4)
    }

    @Test("clipping: the norm of per-tensor norms; gradients scaled by max/(norm+1e-6) only when above")
    func clipping() throws {
        let model = try TinyModel.model()
        let lora = TrainableLoRA(shape: LoRAShape(rank: 2, alpha: 4, targets: [.query]), config: model.config, seed: 1)
        for i in 0..<lora.count { lora.gradients[i] = Float(i % 7) - 3 }
        var expected = 0.0
        for t in lora.tensors {
            var s = 0.0
            for i in t.offset..<t.offset + t.count { s += Double(lora.gradients[i] * lora.gradients[i]) }
            expected += s
        }
        expected = expected.squareRoot()
        let before = (0..<lora.count).map { lora.gradients[$0] }
        let norm = clipGradients(lora, maxNorm: 1)
        #expect(abs(norm - expected) / expected < 1e-6)
        let coef = Float(1 / (expected + 1e-6))
        for i in 0..<lora.count { #expect(abs(lora.gradients[i] - before[i] * coef) <= 1e-6) }
        #expect(abs(clipGradients(lora, maxNorm: 10) - 1) < 1e-5)
    }
}

@Suite("Trainer on a tiny model")
struct TrainerTests {
    static func examples() throws -> [TokenizedExample] {
        let d = try load((0..<12).map { #"{"prompt": "item \#($0)", "completion": "value \#($0 * 7 % 10)"}"# }.joined(separator: "\n"))
        return d.examples
    }

    static func config(epochs: Int = 3) -> TrainingConfig {
        var c = TrainingConfig()
        c.epochs = epochs
        c.batchSize = 3
        c.gradAccum = 2
        c.learningRate = 5e-3
        c.lora = LoRAShape(rank: 4, alpha: 8, dropout: 0.1)
        c.seed = 5
        return c
    }

    @Test("the loss falls, steps follow the epochs and accumulation, and evaluation reports loss and accuracy")
    func learns() throws {
        let model = try TinyModel.model()
        let ex = try Self.examples()
        let trainer = try Trainer(model: model, config: Self.config(epochs: 6), objective: SFTObjective(train: ex, validation: Array(ex.prefix(3))))
        #expect(trainer.stepsPerEpoch == 2 && trainer.totalSteps == 12)
        let before = try #require(try trainer.evaluate())
        var reports: [StepReport] = []
        while !trainer.isFinished { reports.append(try trainer.step()) }
        let after = try #require(try trainer.evaluate())
        #expect(after.loss < before.loss * 0.8, "validation loss \(before.loss) -> \(after.loss)")
        #expect(reports.first!.learningRate == 0 && reports.map(\.learningRate).max()! <= 5e-3)
        #expect(trainer.state.step == 12 && abs(reports.last!.epoch - 6) < 1e-9)
    }

    @Test("a run restored from a checkpoint ends bit-identical to an uninterrupted one")
    func resumeIsExact() throws {
        let model = try TinyModel.model()
        let ex = try Self.examples()
        let whole = try Trainer(model: model, config: Self.config(), objective: SFTObjective(train: ex, validation: []))
        while !whole.isFinished { _ = try whole.step() }

        let first = try Trainer(model: model, config: Self.config(), objective: SFTObjective(train: ex, validation: []))
        for _ in 0..<3 { _ = try first.step() }
        let adapter = first.lora.adapter(), state = try first.optimizerState()
        let second = try Trainer(model: model, config: Self.config(), objective: SFTObjective(train: ex, validation: []))
        try second.restore(adapter: adapter, optimizerState: state)
        #expect(second.state.step == 3)
        while !second.isFinished { _ = try second.step() }
        #expect(second.lora.adapter() == whole.lora.adapter())
        // The moments (after the state line, whose timings differ) are identical too.
        func moments(_ b: [UInt8]) -> ArraySlice<UInt8> { b[(b.firstIndex(of: 0x0A)! + 1)...] }
        #expect(moments(try second.optimizerState()) == moments(try whole.optimizerState()))
        #expect(second.state.step == whole.state.step && second.state.adam == whole.state.adam)
    }

    @Test("a checkpoint of another shape or a truncated optimizer state is refused")
    func badCheckpoint() throws {
        let model = try TinyModel.model()
        let ex = try Self.examples()
        let t = try Trainer(model: model, config: Self.config(), objective: SFTObjective(train: ex, validation: []))
        let state = try t.optimizerState()
        #expect(throws: TrainingError.self) { try t.restore(adapter: t.lora.adapter(), optimizerState: Array(state.dropLast(4))) }
        var other = Self.config()
        other.lora.rank = 2
        let small = try Trainer(model: model, config: other, objective: SFTObjective(train: ex, validation: []))
        #expect(throws: (any Error).self) { try t.restore(adapter: small.lora.adapter(), optimizerState: state) }
    }
}
