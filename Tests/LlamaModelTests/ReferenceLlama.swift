import GGUF
import LlamaModel
import TensorKit

/// The Llama forward pass written plainly over dequantized weights (Double accumulation in
/// every product), for checking the optimized model end to end.
enum ReferenceLlama {
    /// Logits [T x vocab] for every position of `tokens`.
    static func logits(gguf: GGUFFile, tokens: [Int]) throws -> [Float] {
        let c = try LlamaConfig(gguf: gguf)
        func t(_ name: String) throws -> [Float] { try Dequantize.tensor(gguf.requireTensor(name), in: gguf) }
        let T = tokens.count
        let embedding = try t("token_embd.weight")
        let output = gguf.tensor(named: "output.weight") == nil ? embedding : try t("output.weight")
        var x = [Float]()
        for id in tokens { x += embedding[id * c.dim..<(id + 1) * c.dim] }
        func linear(_ input: [Float], _ w: [Float], out: Int, in k: Int) -> [Float] {
            Reference.matmul(m: T, n: out, k: k, a: input, b: w, transposeB: true)
        }
        let shape = Attention.Shape(heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim)
        for l in 0..<c.layers {
            let xn = Reference.rmsNorm(x, weight: try t("blk.\(l).attn_norm.weight"), rows: T, eps: c.normEps)
            var q = linear(xn, try t("blk.\(l).attn_q.weight"), out: c.dim, in: c.dim)
            var k = linear(xn, try t("blk.\(l).attn_k.weight"), out: c.kvDim, in: c.dim)
            let v = linear(xn, try t("blk.\(l).attn_v.weight"), out: c.kvDim, in: c.dim)
            q = Reference.rope(q, rows: T, heads: c.heads, headDim: c.headDim, base: Double(c.ropeBase), startPosition: 0)
            k = Reference.rope(k, rows: T, heads: c.kvHeads, headDim: c.headDim, base: Double(c.ropeBase), startPosition: 0)
            let a = Reference.attention(q: q, keys: k, values: v, rows: T, positions: T, shape: shape)
            let o = linear(a, try t("blk.\(l).attn_output.weight"), out: c.dim, in: c.dim)
            x = zip(x, o).map(+)
            let hn = Reference.rmsNorm(x, weight: try t("blk.\(l).ffn_norm.weight"), rows: T, eps: c.normEps)
            let gate = linear(hn, try t("blk.\(l).ffn_gate.weight"), out: c.ffnDim, in: c.dim)
            let up = linear(hn, try t("blk.\(l).ffn_up.weight"), out: c.ffnDim, in: c.dim)
            let down = linear(Reference.swiglu(gate: gate, up: up), try t("blk.\(l).ffn_down.weight"), out: c.dim, in: c.ffnDim)
            x = zip(x, down).map(+)
        }
        let xn = Reference.rmsNorm(x, weight: try t("output_norm.weight"), rows: T, eps: c.normEps)
        return linear(xn, output, out: c.vocabularySize, in: c.dim)
    }
}

func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "length \(a.count) vs \(b.count)")
    var m: Float = 0
    for (x, y) in zip(a, b) {
        let d = abs(x - y)
        if d.isNaN { return .nan }
        m = max(m, d)
    }
    return m
}
