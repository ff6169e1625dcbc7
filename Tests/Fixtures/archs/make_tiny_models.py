#!/usr/bin/env python3
"""Tiny random models, one per supported architecture, for the architecture parity tests.

    make_tiny_models.py VOCAB_DIR OUT_DIR              # writes the GGUF files (numpy + gguf)
    make_tiny_models.py VOCAB_DIR OUT_DIR --reference  # also writes references.json (torch + transformers)

VOCAB_DIR is llama.cpp's `models/` folder (vocab-only GGUFs with real tokenizer metadata).
Each model takes one of those tokenizers, random weights from a fixed seed and a few small
layers, laid out as llama.cpp's converter lays them out (q/k rows permuted for `llama`, Gemma
norms stored as 1 + w). The reference logits come from transformers loading the same GGUF
file, so they check the file conventions as well as the math. references.json keeps, per
model, the SHA-256 of the file and the logits of every position at a sample of vocabulary ids.
"""
import hashlib
import json
import math
import os
import sys

import numpy as np
import gguf

T = gguf.GGMLQuantizationType
TOKENS = [1, 17, 300, 4242, 9, 1000, 77, 5, 2024, 31]

MODELS = {
    # name: (architecture, vocab file, settings)
    "llama": ("llama", "ggml-vocab-llama-spm.gguf",
              dict(dim=64, heads=4, kv=2, head_dim=16, ffn=96, layers=2, base=500000.0, llama3_rope=True, tied=False)),
    "qwen2": ("qwen2", "ggml-vocab-qwen2.gguf",
              dict(dim=64, heads=4, kv=2, head_dim=16, ffn=96, layers=2, base=1000000.0, tied=True)),
    "qwen3": ("qwen3", "ggml-vocab-qwen2.gguf",
              dict(dim=64, heads=4, kv=2, head_dim=32, ffn=96, layers=2, base=1000000.0, tied=False)),
    "phi3": ("phi3", "ggml-vocab-phi-3.gguf",
             dict(dim=64, heads=4, kv=4, head_dim=16, ffn=96, layers=2, base=10000.0, tied=False)),
    "gemma2": ("gemma2", "ggml-vocab-llama-spm.gguf",
               dict(dim=64, heads=4, kv=2, head_dim=16, ffn=96, layers=2, base=10000.0, tied=True,
                    window=4, attn_cap=2.0, final_cap=5.0)),
    "gemma3": ("gemma3", "ggml-vocab-llama-spm.gguf",
               dict(dim=64, heads=4, kv=2, head_dim=16, ffn=96, layers=6, base=1000000.0, tied=True,
                    window=4, local_base=10000.0)),
}
# Each model in F32; some also in F16 and BF16.
TYPES = {"llama": ["F32", "F16"], "qwen2": ["F32"], "qwen3": ["F32"], "phi3": ["F32", "BF16"],
         "gemma2": ["F32", "F16", "BF16"], "gemma3": ["F32"]}


def tokenizer_fields(path):
    reader = gguf.GGUFReader(path)
    fields = []
    for name, field in reader.fields.items():
        if not name.startswith("tokenizer."):
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        fields.append((name, field.contents(), vtype, sub))
    return fields


def llama3_factors(head_dim, base, factor=8.0, low=1.0, high=4.0, original=8192):
    out = []
    for i in range(0, head_dim, 2):
        wavelen = 2 * math.pi / (1.0 / base ** (i / head_dim))
        if wavelen < original / high:
            out.append(1.0)
        elif wavelen > original / low:
            out.append(factor)
        else:
            s = (original / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - s) / factor + s))
    return np.array(out, dtype=np.float32)


def permute(w, heads):
    """The llama converter's q/k row order: each head's two RoPE halves interleaved."""
    rows = w.shape[0]
    return w.reshape(heads, 2, rows // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def build(name, vocab_dir, out_dir, dtype, widened=False):
    """Writes the model with its matrices in `dtype`; with `widened`, as F32 holding the
    values that `dtype` rounds them to (the reference for 16-bit files)."""
    arch, vocab_file, s = MODELS[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    fields = tokenizer_fields(os.path.join(vocab_dir, vocab_file))
    vocab = next(len(v) for k, v, _, _ in fields if k == "tokenizer.ggml.tokens")
    dim, heads, kv, hd, ffn = s["dim"], s["heads"], s["kv"], s["head_dim"], s["ffn"]
    gemma = arch.startswith("gemma")

    def rand(*shape, scale=0.08):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    def norm(n):
        w = (1.0 + rng.standard_normal(n) * 0.1).astype(np.float32)
        return w  # Gemma's converter stores 1 + w; drawing around 1 covers both conventions

    tensors = {"token_embd.weight": rand(vocab, dim, scale=0.5 if not gemma else 0.05),
               "output_norm.weight": norm(dim)}
    if not s["tied"]:
        tensors["output.weight"] = rand(vocab, dim)
    if s.get("llama3_rope"):
        tensors["rope_freqs.weight"] = llama3_factors(hd, s["base"])
    for l in range(s["layers"]):
        p = f"blk.{l}."
        q, k, v = rand(heads * hd, dim), rand(kv * hd, dim), rand(kv * hd, dim)
        if arch == "llama":
            q, k = permute(q, heads), permute(k, kv)
        if arch == "phi3":
            tensors[p + "attn_qkv.weight"] = np.concatenate([q, k, v])
        else:
            tensors[p + "attn_q.weight"], tensors[p + "attn_k.weight"], tensors[p + "attn_v.weight"] = q, k, v
        if arch == "qwen2":
            tensors[p + "attn_q.bias"] = rand(heads * hd, scale=0.3)
            tensors[p + "attn_k.bias"] = rand(kv * hd, scale=0.3)
            tensors[p + "attn_v.bias"] = rand(kv * hd, scale=0.3)
        if arch in ("qwen3", "gemma3"):
            tensors[p + "attn_q_norm.weight"] = norm(hd)
            tensors[p + "attn_k_norm.weight"] = norm(hd)
        tensors[p + "attn_output.weight"] = rand(dim, heads * hd)
        tensors[p + "attn_norm.weight"] = norm(dim)
        tensors[p + "ffn_norm.weight"] = norm(dim)
        if gemma:
            tensors[p + "post_attention_norm.weight"] = norm(dim)
            tensors[p + "post_ffw_norm.weight"] = norm(dim)
        gate, up = rand(ffn, dim), rand(ffn, dim)
        if arch == "phi3":
            tensors[p + "ffn_up.weight"] = np.concatenate([gate, up])
        else:
            tensors[p + "ffn_gate.weight"], tensors[p + "ffn_up.weight"] = gate, up
        tensors[p + "ffn_down.weight"] = rand(dim, ffn)

    path = os.path.join(out_dir, f"{name}-{dtype.lower()}{'-widened' if widened else ''}.gguf")
    w = gguf.GGUFWriter(path, arch)
    w.add_name(f"tiny-{name}")
    w.add_context_length(256)
    w.add_embedding_length(dim)
    w.add_block_count(s["layers"])
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(kv)
    w.add_key_length(hd)
    w.add_value_length(hd)
    w.add_rope_dimension_count(hd)
    w.add_rope_freq_base(s["base"])
    w.add_layer_norm_rms_eps(1e-6)
    w.add_vocab_size(vocab)
    if "window" in s:
        w.add_sliding_window(s["window"])
    if "attn_cap" in s:
        w.add_attn_logit_softcapping(s["attn_cap"])
        w.add_final_logit_softcapping(s["final_cap"])
    if "local_base" in s:
        w.add_key_value(f"{arch}.rope.freq_base_swa", s["local_base"], gguf.GGUFValueType.FLOAT32)
    for key, value, vtype, sub in fields:
        w.add_key_value(key, value, vtype, sub)
    wanted = {"F32": T.F32, "F16": T.F16, "BF16": T.BF16}[dtype]
    for tname, values in tensors.items():
        qtype = wanted if values.ndim == 2 else T.F32
        if widened and qtype != T.F32:
            w.add_tensor(tname, gguf.quants.dequantize(gguf.quants.quantize(values, qtype), qtype).astype(np.float32))
        elif qtype == T.F32:
            w.add_tensor(tname, values)
        elif qtype == T.F16:
            w.add_tensor(tname, values.astype(np.float16))
        else:  # BF16: the quantizer returns the bytes, whose shape the writer converts
            w.add_tensor(tname, gguf.quants.quantize(values, qtype), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def load_reference(name, path, **options):
    """transformers' model for the GGUF file at `path` of model `name`, with the config
    settings the GGUF metadata does not carry (`options` go to from_pretrained)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    arch, _, s = MODELS[name]
    folder, file = os.path.split(path)
    config = AutoConfig.from_pretrained(folder, gguf_file=file)
    config.head_dim = s["head_dim"]
    config.tie_word_embeddings = s["tied"]
    if s.get("llama3_rope"):
        config.rope_parameters = {"rope_type": "llama3", "rope_theta": s["base"], "factor": 8.0,
                                  "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                  "original_max_position_embeddings": 8192}
    if arch.startswith("gemma"):
        config.query_pre_attn_scalar = s["head_dim"]
        config.sliding_window = s["window"]
        config.attn_logit_softcapping = s.get("attn_cap")
        config.final_logit_softcapping = s.get("final_cap")
    if arch == "gemma3":
        config.rope_parameters = {"full_attention": {"rope_type": "default", "rope_theta": s["base"]},
                                  "sliding_attention": {"rope_type": "default", "rope_theta": s["local_base"]}}
    options.setdefault("torch_dtype", torch.float32)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=file, config=config, **options)
    model.eval()
    return model


def reference(name, path):
    import torch

    model = load_reference(name, path)
    with torch.no_grad():
        logits = model(torch.tensor([TOKENS])).logits[0].float().numpy()
    return logits


def main():
    vocab_dir, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    refs = {"tokens": TOKENS, "models": {}}
    for name, dtypes in TYPES.items():
        for dtype in dtypes:
            path = build(name, vocab_dir, out_dir, dtype)
            digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
            print(f"{os.path.basename(path)} {digest}")
            if "--reference" in sys.argv:
                widened = path if dtype == "F32" else build(name, vocab_dir, out_dir, dtype, widened=True)
                logits = reference(name, widened)
                vocab = logits.shape[1]
                ids = sorted(set(range(0, vocab, max(1, vocab // 32))) | {int(i) for i in logits.argmax(axis=1)})
                refs["models"][os.path.basename(path)] = {
                    "sha256": digest, "vocab": vocab, "ids": ids,
                    "logits": [[float("%.7g" % row[i]) for i in ids] for row in logits]}
    if "--reference" in sys.argv:
        here = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(here, "references.json"), "w") as f:
            json.dump(refs, f, separators=(",", ":"))


if __name__ == "__main__":
    main()
