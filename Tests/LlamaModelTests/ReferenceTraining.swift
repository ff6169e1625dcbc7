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
    let ropeFactors: [Double]?

    init(gguf: GGUFFile) throws {
        c = try LlamaConfig(gguf: gguf)
        func t(_ name: String) throws -> [Double] { try Dequantize.tensor(gguf.requireTensor(name), in: gguf).map(Double.init) }
        embedding = try t("token_embd.weight")
        output = gguf.tensor(named: "output.weight") == nil ? embedding : try t("output.weight")
        outputNorm = try t("output_norm.weight")
        func optional(_ name: String) throws -> [Double]? { gguf.tensor(named: name) == nil ? nil : try t(name) }
        ropeFactors = try optional("rope_freqs.weight")
        var layers: [[String: [Double]]] = []
        for l in 0..<c.layers {
            var m: [String: [Double]] = [:]
            for n in ["attn_norm", "ffn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down",
                      "attn_q_norm", "attn_k_norm", "post_attention_norm", "post_ffw_norm", "attn_qkv"] {
                m[n] = try optional("blk.\(l).\(n).weight")
            }
            for n in ["attn_q", "attn_k", "attn_v"] { m[n + ".bias"] = try optional("blk.\(l).\(n).bias") }
            if let qkv = m["attn_qkv"] {
                // Fused [Q; K; V] rows.
                let q = c.qDim * c.dim, k = c.kvDim * c.dim
                m["attn_q"] = Array(qkv[0..<q]); m["attn_k"] = Array(qkv[q..<q + k]); m["attn_v"] = Array(qkv[(q + k)...])
            }
            if m["ffn_gate"] == nil, let fused = m["ffn_up"] {
                let half = c.ffnDim * c.dim
                m["ffn_gate"] = Array(fused[0..<half]); m["ffn_up"] = Array(fused[half...])
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
        func norm(_ v: [Double], _ w: [Double], width: Int = dim) -> [Double] {
            var out = v
            for t in 0..<v.count / width {
                var ss = 0.0
                for i in 0..<width { ss += v[t * width + i] * v[t * width + i] }
                let r = 1 / (ss / Double(width) + Double(c.normEps)).squareRoot()
                for i in 0..<width { out[t * width + i] = v[t * width + i] * r * w[i] }
            }
            return out
        }
        func rope(_ v: [Double], heads: Int, layer: Int) -> [Double] {
            var out = v
            let hd = c.headDim
            let sliding = c.isSliding(layer) && c.slidingRopeBase != nil
            let base = Double(sliding ? c.slidingRopeBase! : c.ropeBase)
            for t in 0..<T { for h in 0..<heads { for i in 0..<hd / 2 {
                var angle = Double(t) * pow(base, -Double(2 * i) / Double(hd))
                if !sliding { angle *= Double(c.ropeFrequencyScale) / (ropeFactors?[i] ?? 1) }
                let o = t * heads * hd + h * hd
                let (a, b) = c.ropeStyle == .adjacent ? (o + 2 * i, o + 2 * i + 1) : (o + i, o + i + hd / 2)
                out[a] = v[a] * cos(angle) - v[b] * sin(angle)
                out[b] = v[a] * sin(angle) + v[b] * cos(angle)
            } } }
            return out
        }
        func addBias(_ v: [Double], _ b: [Double]?) -> [Double] {
            guard let b else { return v }
            return v.enumerated().map { $1 + b[$0 % b.count] }
        }
        func cap(_ s: Double, _ cap: Float) -> Double { cap > 0 ? Double(cap) * tanh(s / Double(cap)) : s }
        if c.embeddingScale != 1 { x = x.map { $0 * Double(c.embeddingScale) } }
        let qDim = c.qDim
        for (l, w) in layers.enumerated() {
            func tgt(_ p: Projection) -> LoRATarget { LoRATarget(layer: l, projection: p) }
            let xn = norm(x, w["attn_norm"]!)
            var q = addBias(linear(xn, w["attn_q"]!, out: qDim, in: dim, tgt(.query)), w["attn_q.bias"])
            var k = addBias(linear(xn, w["attn_k"]!, out: c.kvDim, in: dim, tgt(.key)), w["attn_k.bias"])
            let v = addBias(linear(xn, w["attn_v"]!, out: c.kvDim, in: dim, tgt(.value)), w["attn_v.bias"])
            if let qn = w["attn_q_norm"], let kn = w["attn_k_norm"] {
                q = norm(q, qn, width: c.headDim); k = norm(k, kn, width: c.headDim)
            }
            q = rope(q, heads: c.heads, layer: l)
            k = rope(k, heads: c.kvHeads, layer: l)
            var att = [Double](repeating: 0, count: T * qDim)
            let hd = c.headDim, group = c.heads / c.kvHeads
            let window = c.isSliding(l) ? c.slidingWindow : 0
            for t in 0..<T { for h in 0..<c.heads {
                let g = h / group
                let first = window > 0 ? max(0, t + 1 - window) : 0
                var scores = (first...t).map { s -> Double in
                    var d = 0.0
                    for i in 0..<hd { d += q[t * qDim + h * hd + i] * k[s * c.kvDim + g * hd + i] }
                    return cap(d * Double(c.attentionScale), c.attentionSoftcap)
                }
                let m = scores.max()!
                scores = scores.map { exp($0 - m) }
                let z = scores.reduce(0, +)
                for s in first...t {
                    for i in 0..<hd { att[t * qDim + h * hd + i] += scores[s - first] / z * v[s * c.kvDim + g * hd + i] }
                }
            } }
            var o = linear(att, w["attn_output"]!, out: dim, in: qDim, tgt(.output))
            if let pn = w["post_attention_norm"] { o = norm(o, pn) }
            x = zip(x, o).map(+)
            let hn = norm(x, w["ffn_norm"]!)
            let gate = linear(hn, w["ffn_gate"]!, out: c.ffnDim, in: dim, tgt(.gate))
            let up = linear(hn, w["ffn_up"]!, out: c.ffnDim, in: dim, tgt(.up))
            let act = zip(gate, up).map { g, u in
                c.activation == .silu ? g / (1 + exp(-g)) * u : 0.5 * g * (1 + tanh((2 / Double.pi).squareRoot() * (g + 0.044715 * g * g * g))) * u
            }
            var down = linear(act, w["ffn_down"]!, out: dim, in: c.ffnDim, tgt(.down))
            if let pn = w["post_ffw_norm"] { down = norm(down, pn) }
            x = zip(x, down).map(+)
        }
        let hn = norm(x, outputNorm)
        var nll = 0.0
        let V = c.vocabularySize
        for t in 0..<T where seq.targets[t] >= 0 {
            var logits = [Double](repeating: 0, count: V)
            for o in 0..<V { for i in 0..<dim { logits[o] += hn[t * dim + i] * output[o * dim + i] } }
            logits = logits.map { cap($0, c.finalSoftcap) }
            let m = logits.max()!
            let lse = m + log(logits.reduce(0) { $0 + exp($1 - m) })
            nll += lse - logits[seq.targets[t]]
        }
        return nll
    }
}
