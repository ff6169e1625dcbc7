import GGUF
import LlamaModel

/// Tiny random Llama models built in memory, as GGUF images, for tests that need no download.
enum TinyModel {
    struct Spec {
        var layers = 2
        var dim = 64
        var ffn = 96
        var heads = 4
        var kvHeads = 2
        var context = 128
        var matrixType: GGMLType = .q4_1
        var embeddingType: GGMLType = .q8_0
        var tiedOutput = true
        var seed: UInt64 = 1
    }

    /// 256 byte tokens plus three control tokens; no merges.
    static let specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

    static func vocabulary() -> [String] {
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

    static func gguf(_ spec: Spec = Spec(), omit: String? = nil, override: [String: GGUFValue] = [:]) -> [UInt8] {
        var rng = SeededGenerator(seed: spec.seed)
        func random(_ n: Int, scale: Float) -> [Float] {
            (0..<n).map { _ in (Float(rng.next() % 2_000_001) / 1_000_000 - 1) * scale }
        }
        let vocab = vocabulary()
        var w = GGUFWriter()
        let meta: [(String, GGUFValue)] = [
            ("general.architecture", .string("llama")),
            ("general.name", .string("tiny")),
            ("llama.block_count", .uint32(UInt32(spec.layers))),
            ("llama.context_length", .uint32(UInt32(spec.context))),
            ("llama.embedding_length", .uint32(UInt32(spec.dim))),
            ("llama.feed_forward_length", .uint32(UInt32(spec.ffn))),
            ("llama.attention.head_count", .uint32(UInt32(spec.heads))),
            ("llama.attention.head_count_kv", .uint32(UInt32(spec.kvHeads))),
            ("llama.rope.freq_base", .float32(10000)),
            ("llama.attention.layer_norm_rms_epsilon", .float32(1e-5)),
            ("tokenizer.ggml.model", .string("gpt2")),
            ("tokenizer.ggml.pre", .string("smollm")),
            ("tokenizer.ggml.tokens", .array(elementType: 8, vocab.map { .string($0) })),
            ("tokenizer.ggml.token_type", .array(elementType: 5, vocab.indices.map { .int32($0 < 3 ? 3 : 1) })),
            ("tokenizer.ggml.merges", .array(elementType: 8, [])),
            ("tokenizer.ggml.bos_token_id", .uint32(1)),
            ("tokenizer.ggml.eos_token_id", .uint32(2)),
        ]
        for (k, v) in meta where k != omit { w.set(k, override[k] ?? v) }
        let kvDim = spec.dim / spec.heads * spec.kvHeads
        func tensor(_ name: String, _ dims: [Int], _ type: GGMLType, scale: Float) {
            guard name != omit else { return }
            w.addTensor(name, dimensions: dims, type: type, values: random(dims.reduce(1, *), scale: scale))
        }
        tensor("token_embd.weight", [spec.dim, vocab.count], spec.embeddingType, scale: 1)
        for l in 0..<spec.layers {
            guard "blk.\(l).attn_norm.weight" != omit else { continue }
            w.addTensor("blk.\(l).attn_norm.weight", dimensions: [spec.dim], values: random(spec.dim, scale: 0.2).map { 1 + $0 })
            w.addTensor("blk.\(l).ffn_norm.weight", dimensions: [spec.dim], values: random(spec.dim, scale: 0.2).map { 1 + $0 })
            tensor("blk.\(l).attn_q.weight", [spec.dim, spec.dim], spec.matrixType, scale: 0.3)
            tensor("blk.\(l).attn_k.weight", [spec.dim, kvDim], spec.matrixType, scale: 0.3)
            tensor("blk.\(l).attn_v.weight", [spec.dim, kvDim], spec.matrixType, scale: 0.3)
            tensor("blk.\(l).attn_output.weight", [spec.dim, spec.dim], spec.matrixType, scale: 0.2)
            tensor("blk.\(l).ffn_gate.weight", [spec.dim, spec.ffn], spec.matrixType, scale: 0.2)
            tensor("blk.\(l).ffn_up.weight", [spec.dim, spec.ffn], spec.matrixType, scale: 0.2)
            tensor("blk.\(l).ffn_down.weight", [spec.ffn, spec.dim], spec.matrixType, scale: 0.2)
        }
        w.addTensor("output_norm.weight", dimensions: [spec.dim], values: random(spec.dim, scale: 0.2).map { 1 + $0 })
        if !spec.tiedOutput { tensor("output.weight", [spec.dim, vocab.count], spec.matrixType, scale: 0.5) }
        return w.serialize()
    }

    static func model(_ spec: Spec = Spec()) throws -> LlamaModel {
        try LlamaModel(gguf: GGUFFile(data: gguf(spec)))
    }
}
