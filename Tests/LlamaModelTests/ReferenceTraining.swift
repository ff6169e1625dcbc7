import Foundation
import GGUF
import LlamaModel

/// The training loss written plainly in Double over dequantized weights: the model with LoRA
/// terms, each sequence from position 0, Σ_s weight_s · Σ_t −log p(target_t). Finite
/// differences of this function check the optimized backward pass.
struct ReferenceTraining {
    let c: LlamaConfig
    let embedding: [Double]
    let output: [Double]
    let outputNorm: [Double]
    let layers: [[String: [Double]]]

    init(gguf: GGUFFile) throws {
        c = try LlamaConfig(gguf: gguf)
        func t(_ name: String) throws -> [Double] { try Dequantize.tensor(gguf.requireTensor(name), in: gguf).map(Double.init) }
        embedding = try t("token_embd.weight")
        output = gguf.tensor(named: "output.weight") == nil ? embedding : try t("output.weight")
        outputNorm = try t("output_norm.weight")
        var layers: [[String: [Double]]] = []
        for l in 0..<c.layers {
            var m: [String: [Double]] = [:]
            for n in ["attn_norm", "ffn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"] {
                m[n] = try t("blk.\(l).\(n).weight")
            }
            layers.append(m)
        }
        self.layers = layers
    }

    /// LoRA factors in PEFT layout (B rows in GGUF order), per target.
    typealias Factors = [LoRATarget: (rank: Int, a: [Double], b: [Double])]

    func loss(_ batch: [TrainingSequence], lora: Factors, scale: Double) -> Double {
        var total = 0.0
        for seq in batch { total += Double(seq.weight) * sequenceNLL(seq, lora: lora, scale: scale) }
        return total
    }

    private func sequenceNLL(_ seq: TrainingSequence, lora: Factors, scale: Double) -> Double {
        let T = seq.tokens.count, dim = c.dim
        var x = [Double]()
        for id in seq.tokens { x += embedding[id * dim..<(id + 1) * dim] }
        func linear(_ input: [Double], _ w: [Double], out: Int, in k: Int, _ target: LoRATarget) -> [Double] {
            var y = [Double](repeating: 0, count: T * out)
            for t in 0..<T { for o in 0..<out {
                var s = 0.0
                for i in 0..<k { s += input[t * k + i] * w[o * k + i] }
                y[t * out + o] = s
            } }
            if let f = lora[target] {
                for t in 0..<T {
                    var u = [Double](repeating: 0, count: f.rank)
                    for j in 0..<f.rank { for i in 0..<k { u[j] += input[t * k + i] * f.a[j * k + i] } }
                    for o in 0..<out { for j in 0..<f.rank { y[t * out + o] += scale * f.b[o * f.rank + j] * u[j] } }
                }
            }
            return y
        }
        func norm(_ v: [Double], _ w: [Double]) -> [Double] {
            var out = v
            for t in 0..<T {
                var ss = 0.0
                for i in 0..<dim { ss += v[t * dim + i] * v[t * dim + i] }
                let r = 1 / (ss / Double(dim) + Double(c.normEps)).squareRoot()
                for i in 0..<dim { out[t * dim + i] = v[t * dim + i] * r * w[i] }
            }
            return out
        }
        func rope(_ v: [Double], heads: Int) -> [Double] {
            var out = v
            let hd = c.headDim
            for t in 0..<T { for h in 0..<heads { for i in 0..<hd / 2 {
                let angle = Double(t) * pow(Double(c.ropeBase), -Double(2 * i) / Double(hd))
                let o = t * heads * hd + h * hd + 2 * i
                out[o] = v[o] * cos(angle) - v[o + 1] * sin(angle)
                out[o + 1] = v[o] * sin(angle) + v[o + 1] * cos(angle)
            } } }
            return out
        }
        for (l, w) in layers.enumerated() {
            func tgt(_ p: Projection) -> LoRATarget { LoRATarget(layer: l, projection: p) }
            let xn = norm(x, w["attn_norm"]!)
            let q = rope(linear(xn, w["attn_q"]!, out: dim, in: dim, tgt(.query)), heads: c.heads)
            let k = rope(linear(xn, w["attn_k"]!, out: c.kvDim, in: dim, tgt(.key)), heads: c.kvHeads)
            let v = linear(xn, w["attn_v"]!, out: c.kvDim, in: dim, tgt(.value))
            var att = [Double](repeating: 0, count: T * dim)
            let hd = c.headDim, group = c.heads / c.kvHeads
            for t in 0..<T { for h in 0..<c.heads {
                let g = h / group
                var scores = (0...t).map { s -> Double in
                    var d = 0.0
                    for i in 0..<hd { d += q[t * dim + h * hd + i] * k[s * c.kvDim + g * hd + i] }
                    return d / Double(hd).squareRoot()
                }
                let m = scores.max()!
                scores = scores.map { exp($0 - m) }
                let z = scores.reduce(0, +)
                for s in 0...t { for i in 0..<hd { att[t * dim + h * hd + i] += scores[s] / z * v[s * c.kvDim + g * hd + i] } }
            } }
            let o = linear(att, w["attn_output"]!, out: dim, in: dim, tgt(.output))
            x = zip(x, o).map(+)
            let hn = norm(x, w["ffn_norm"]!)
            let gate = linear(hn, w["ffn_gate"]!, out: c.ffnDim, in: dim, tgt(.gate))
            let up = linear(hn, w["ffn_up"]!, out: c.ffnDim, in: dim, tgt(.up))
            let act = zip(gate, up).map { g, u in g / (1 + exp(-g)) * u }
            x = zip(x, linear(act, w["ffn_down"]!, out: dim, in: c.ffnDim, tgt(.down))).map(+)
        }
        let hn = norm(x, outputNorm)
        var nll = 0.0
        let V = c.vocabularySize
        for t in 0..<T where seq.targets[t] >= 0 {
            var logits = [Double](repeating: 0, count: V)
            for o in 0..<V { for i in 0..<dim { logits[o] += hn[t * dim + i] * output[o * dim + i] } }
            let m = logits.max()!
            let lse = m + log(logits.reduce(0) { $0 + exp($1 - m) })
            nll += lse - logits[seq.targets[t]]
        }
        return nll
    }
}
