import Foundation
import LlamaModel

/// AdamW as PyTorch defines it (decoupled weight decay applied first, bias correction, eps
/// added after the bias-corrected square root), over one flat parameter buffer.
public struct AdamW: Sendable, Codable, Equatable {
    public var beta1: Double = 0.9
    public var beta2: Double = 0.999
    public var epsilon: Double = 1e-8
    public var weightDecay: Double = 0
    /// Updates taken so far.
    public var step = 0

    public init(weightDecay: Double = 0) { self.weightDecay = weightDecay }

    /// One update with learning rate `lr`; `m` and `v` are the moment buffers (`count` floats).
    public mutating func update(_ p: UnsafeMutablePointer<Float>, gradients g: UnsafePointer<Float>,
                                m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, count: Int, lr: Double) {
        step += 1
        let bc1 = 1 - pow(beta1, Double(step)), bc2 = 1 - pow(beta2, Double(step))
        let stepSize = Float(lr / bc1), bc2Root = Float(bc2.squareRoot())
        let decay = Float(1 - lr * weightDecay), eps = Float(epsilon)
        let w1 = Float(1 - beta1), b2 = Float(beta2), w2 = Float(1 - beta2)
        for i in 0..<count {
            if weightDecay != 0 { p[i] *= decay }
            m[i] += w1 * (g[i] - m[i])
            v[i] = b2 * v[i] + w2 * g[i] * g[i]
            let denom = v[i].squareRoot() / bc2Root + eps
            p[i] -= stepSize * m[i] / denom
        }
    }
}

/// Learning-rate schedules as transformers defines them: the multiplier for the update that
/// follows `s` completed updates, out of `total`, after `warmup` warm-up updates.
public enum LRSchedule: String, Sendable, Codable, CaseIterable {
    case constant, linear, cosine

    public func multiplier(step s: Int, total: Int, warmup: Int) -> Double {
        if s < warmup { return Double(s) / Double(max(1, warmup)) }
        switch self {
        case .constant: return 1
        case .linear: return max(0, Double(total - s) / Double(max(1, total - warmup)))
        case .cosine:
            let progress = Double(s - warmup) / Double(max(1, total - warmup))
            return max(0, 0.5 * (1 + cos(Double.pi * progress)))
        }
    }
}

/// Gradient clipping on the total norm, as `torch.nn.utils.clip_grad_norm_`: the norm of the
/// per-tensor L2 norms; every gradient is multiplied by min(1, max / (norm + 1e-6)). Returns
/// the norm before clipping.
public func clipGradients(_ lora: TrainableLoRA, maxNorm: Double) -> Double {
    var total = 0.0
    for t in lora.tensors {
        var s = 0.0
        for i in t.offset..<t.offset + t.count { s += Double(lora.gradients[i]) * Double(lora.gradients[i]) }
        let n = Double(Float(s.squareRoot()))
        total += n * n
    }
    let norm = total.squareRoot()
    if maxNorm > 0 {
        let coef = Float(min(1, maxNorm / (norm + 1e-6)))
        if coef != 1 { for i in 0..<lora.count { lora.gradients[i] *= coef } }
    }
    return norm
}
