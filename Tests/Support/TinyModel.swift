import GGUF
import LlamaModel
import TensorKit

/// Tiny random models built in memory, as GGUF images, for tests that need no download: the
/// `llama` layout by default, or any supported architecture's tensors and metadata.
public enum TinyModel {
    public struct Spec {
        public var architecture = "llama"
        /// Head width when it is not dim / heads (written as `attention.key_length`).
        public var headDim: Int?
        /// Gemma's sliding window (every architecture's layer pattern applies) and caps.
        public var slidingWindow = 0
        public var attentionSoftcap: Float = 0
        public var finalSoftcap: Float = 0
        /// Llama 3's `rope_freqs` frequency factors.
        public var ropeFactors = false
        public var layers: Int
        public var dim: Int
        public var ffn: Int
        public var heads: Int
        public var kvHeads: Int
        public var context: Int
        public var matrixType: GGMLType
        public var embeddingType: GGMLType
        public var tiedOutput: Bool
        public var seed: UInt64

        public init(layers: Int = 2, dim: Int = 64, ffn: Int = 96, heads: Int = 4, kvHeads: Int = 2, context: Int = 128,
                    matrixType: GGMLType = .q4_1, embeddingType: GGMLType = .q8_0, tiedOutput: Bool = true, seed: UInt64 = 1) {
            self.layers = layers; self.dim = dim; self.ffn = ffn; self.heads = heads; self.kvHeads = kvHeads
            self.context = context; self.matrixType = matrixType; self.embeddingType = embeddingType
            self.tiedOutput = tiedOutput; self.seed = seed
        }
    }

    /// A ChatML template with a default system turn, shaped like SmolLM2's.
    public static let chatTemplate = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
        + "{{ '<|im_start|>system\\nYou are tiny.<|im_end|>\\n' }}{% endif %}"
        + "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
        + "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

    /// 256 byte tokens plus three control tokens; no merges.
    public static let specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

    public static func vocabulary() -> [String] {
        // GPT-2 byte-to-unicode spelling of every byte.
        var printable = Array(33...126) + Array(161...172) + Array(174...255)
        var codes = printable
        var n = 0
        for b in 0..<256 where !printable.contains(b) {
            printable.append(b)
            codes.append(256 + n)
            n += 1
        }
        var byByte = [String](repeating: "", count: 256)
        for (b, c) in zip(printable, codes) { byByte[b] = String(UnicodeScalar(UInt32(c))!) }
        return specials + byByte
    }

    public static func gguf(_ spec: Spec = Spec(), omit: String? = nil, override: [String: GGUFValue] = [:]) -> [UInt8] {
        var rng = SeededGenerator(seed: spec.seed)
        func random(_ n: Int, scale: Float) -> [Float] {
            (0..<n).map { _ in (Float(rng.next() % 2_000_001) / 1_000_000 - 1) * scale }
        }
        let vocab = vocabulary()
        let arch = spec.architecture
        var w = GGUFWriter()
        let meta: [(String, GGUFValue)] = [
            ("general.architecture", .string(arch)),
            ("general.name", .string("tiny")),
            ("\(arch).block_count", .uint32(UInt32(spec.layers))),
            ("\(arch).context_length", .uint32(UInt32(spec.context))),
            ("\(arch).embedding_length", .uint32(UInt32(spec.dim))),
            ("\(arch).feed_forward_length", .uint32(UInt32(spec.ffn))),
            ("\(arch).attention.head_count", .uint32(UInt32(spec.heads))),
            ("\(arch).attention.head_count_kv", .uint32(UInt32(spec.kvHeads))),
            ("\(arch).rope.freq_base", .float32(10000)),
            ("\(arch).attention.layer_norm_rms_epsilon", .float32(1e-5)),
            ("tokenizer.ggml.model", .string("gpt2")),
            ("tokenizer.ggml.pre", .string("smollm")),
            ("tokenizer.ggml.tokens", .array(elementType: 8, vocab.map { .string($0) })),
            ("tokenizer.ggml.token_type", .array(elementType: 5, vocab.indices.map { .int32($0 < 3 ? 3 : 1) })),
            ("tokenizer.ggml.merges", .array(elementType: 8, [])),
            ("tokenizer.ggml.bos_token_id", .uint32(1)),
            ("tokenizer.ggml.eos_token_id", .uint32(2)),
            ("tokenizer.chat_template", .string(chatTemplate)),
        ]
        for (k, v) in meta where k != omit { w.set(k, override[k] ?? v) }
        let hd = spec.headDim ?? spec.dim / spec.heads
        let qDim = spec.heads * hd, kvDim = hd * spec.kvHeads
        if spec.headDim != nil { w.set("\(arch).attention.key_length", .uint32(UInt32(hd))) }
        if spec.slidingWindow > 0 { w.set("\(arch).attention.sliding_window", .uint32(UInt32(spec.slidingWindow))) }
        if arch == "gemma3" {
            w.set("gemma3.rope.freq_base_swa", .float32(1000))
            w.set("gemma3.attention.sliding_window_pattern", .array(elementType: 7, (0..<spec.layers).map { .bool($0 % 2 == 0) }))
        }
        if arch == "gemma2" {
            w.set("gemma2.attn_logit_softcapping", .float32(spec.attentionSoftcap))
            w.set("gemma2.final_logit_softcapping", .float32(spec.finalSoftcap))
        }
        func tensor(_ name: String, _ dims: [Int], _ type: GGMLType, scale: Float) {
            guard name != omit else { return }
            w.addTensor(name, dimensions: dims, type: type, values: random(dims.reduce(1, *), scale: scale))
        }
        func norm(_ name: String, _ n: Int) {
            guard name != omit else { return }
            w.addTensor(name, dimensions: [n], values: random(n, scale: 0.2).map { 1 + $0 })
        }
        tensor("token_embd.weight", [spec.dim, vocab.count], spec.embeddingType, scale: 1)
        for l in 0..<spec.layers {
            guard "blk.\(l).attn_norm.weight" != omit else { continue }
            w.addTensor("blk.\(l).attn_norm.weight", dimensions: [spec.dim], values: random(spec.dim, scale: 0.2).map { 1 + $0 })
            w.addTensor("blk.\(l).ffn_norm.weight", dimensions: [spec.dim], values: random(spec.dim, scale: 0.2).map { 1 + $0 })
            if arch == "phi3" {
                tensor("blk.\(l).attn_qkv.weight", [spec.dim, qDim + 2 * kvDim], spec.matrixType, scale: 0.3)
            } else {
                tensor("blk.\(l).attn_q.weight", [spec.dim, qDim], spec.matrixType, scale: 0.3)
                tensor("blk.\(l).attn_k.weight", [spec.dim, kvDim], spec.matrixType, scale: 0.3)
                tensor("blk.\(l).attn_v.weight", [spec.dim, kvDim], spec.matrixType, scale: 0.3)
            }
            if arch == "qwen2" {
                tensor("blk.\(l).attn_q.bias", [qDim], .f32, scale: 0.3)
                tensor("blk.\(l).attn_k.bias", [kvDim], .f32, scale: 0.3)
                tensor("blk.\(l).attn_v.bias", [kvDim], .f32, scale: 0.3)
            }
            if arch == "qwen3" || arch == "gemma3" {
                norm("blk.\(l).attn_q_norm.weight", hd)
                norm("blk.\(l).attn_k_norm.weight", hd)
            }
            if arch.hasPrefix("gemma") {
                norm("blk.\(l).post_attention_norm.weight", spec.dim)
                norm("blk.\(l).post_ffw_norm.weight", spec.dim)
            }
            tensor("blk.\(l).attn_output.weight", [qDim, spec.dim], spec.matrixType, scale: 0.2)
            if arch == "phi3" {
                tensor("blk.\(l).ffn_up.weight", [spec.dim, 2 * spec.ffn], spec.matrixType, scale: 0.2)
            } else {
                tensor("blk.\(l).ffn_gate.weight", [spec.dim, spec.ffn], spec.matrixType, scale: 0.2)
                tensor("blk.\(l).ffn_up.weight", [spec.dim, spec.ffn], spec.matrixType, scale: 0.2)
            }
            tensor("blk.\(l).ffn_down.weight", [spec.ffn, spec.dim], spec.matrixType, scale: 0.2)
        }
        if spec.ropeFactors {
            w.addTensor("rope_freqs.weight", dimensions: [hd / 2], values: (0..<hd / 2).map { 1 + Float($0) * 0.5 })
        }
        w.addTensor("output_norm.weight", dimensions: [spec.dim], values: random(spec.dim, scale: 0.2).map { 1 + $0 })
        if !spec.tiedOutput { tensor("output.weight", [spec.dim, vocab.count], spec.matrixType, scale: 0.5) }
        return w.serialize()
    }

    public static func model(_ spec: Spec = Spec(), pool: ThreadPool = .shared) throws -> LlamaModel {
        try LlamaModel(gguf: GGUFFile(data: gguf(spec)), pool: pool)
    }
}

/// Random adapters for tiny models.
public func randomAdapter(_ config: LlamaConfig, rank: Int = 4, alpha: Float = 8, seed: UInt64 = 5,
                   projections: [Projection] = Projection.allCases, zeroB: Bool = false) -> LoRAAdapter {
    var rng = SeededGenerator(seed: seed)
    func random(_ n: Int, _ scale: Float) -> [Float] { (0..<n).map { _ in (Float(rng.next() % 2_000_001) / 1_000_000 - 1) * scale } }
    var pairs: [LoRATarget: LoRAPair] = [:]
    for l in 0..<config.layers {
        for p in projections {
            let (out, inF) = config.shape(of: p)
            pairs[LoRATarget(layer: l, projection: p)] = LoRAPair(
                rank: rank, inFeatures: inF, outFeatures: out,
                a: random(rank * inF, 0.3), b: zeroB ? [Float](repeating: 0, count: out * rank) : random(out * rank, 0.1))
        }
    }
    return LoRAAdapter(rank: rank, alpha: alpha, pairs: pairs)
}
