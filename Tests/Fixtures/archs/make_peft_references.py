#!/usr/bin/env python3
"""PEFT LoRA adapters on the tiny models, with PEFT's loss and LoRA gradients, for Graft's
PEFT parity tests.

    make_peft_references.py TINY_DIR    # TINY_DIR: the GGUF files make_tiny_models.py wrote

Needs torch, transformers and peft. For each model below, transformers loads the GGUF file as
make_tiny_models.py's `load_reference` does; PEFT wraps every linear module of the decoder
layers (phi3: the fused qkv_proj and gate_up_proj) in a rank-4 LoRA whose A keeps PEFT's
initialization and whose B is drawn nonzero, both from fixed seeds and rounded to float32.
The loss is the mean next-token cross-entropy over make_tiny_models.TOKENS, computed in
float64 (the float32 weights widened), and its gradient is taken for every lora_A / lora_B.

Written to peft/<model>/:
  adapter_config.json, adapter_model.safetensors   the adapter, as PEFT saves it (float32)
  gradients.safetensors   d loss / d each LoRA tensor, under the adapter's tensor names (float32)
  reference.json          the GGUF file and its SHA-256, the model's shape, the tokens, the loss,
                          and per tensor its shape and gradient L2 norm (float64)
"""
import hashlib
import json
import os
import shutil
import sys

import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_tiny_models import MODELS, TOKENS, load_reference  # noqa: E402

RANK, ALPHA, B_STD = 4, 8, 0.1
FILES = ["llama-f32.gguf", "qwen2-f32.gguf", "phi3-f32.gguf", "gemma2-f32.gguf"]
# transformers' module names: phi3 fuses q/k/v and gate/up.
MODULES = {"phi3": ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"]}
DEFAULT_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def saved_name(parameter):
    """PEFT's file name for a parameter: without the adapter name before `.weight`."""
    return parameter.replace(".default.weight", ".weight")


def make(tiny_dir, file, out_root):
    name = file.split("-")[0]
    arch = MODELS[name][0]
    path = os.path.join(tiny_dir, file)
    model = load_reference(name, path, attn_implementation="eager")
    seed = sum(map(ord, file))
    torch.manual_seed(seed)
    config = LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM",
                        target_modules=MODULES.get(arch, DEFAULT_MODULES))
    peft_model = get_peft_model(model, config)
    generator = torch.Generator().manual_seed(seed + 1)
    lora = {n: p for n, p in peft_model.named_parameters() if "lora_" in n}
    with torch.no_grad():
        for n, p in lora.items():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=generator, dtype=torch.float64).float() * B_STD)
    peft_model.peft_config["default"].base_model_name_or_path = f"tiny-{file[:-len('.gguf')]}"

    out = os.path.join(out_root, file[:-len(".gguf")])
    os.makedirs(out, exist_ok=True)
    peft_model.save_pretrained(out)
    for extra in ("README.md",):
        if os.path.exists(os.path.join(out, extra)):
            os.remove(os.path.join(out, extra))

    peft_model.double()
    tokens = torch.tensor([TOKENS])
    logits = peft_model(input_ids=tokens).logits[0]
    assert logits.dtype == torch.float64
    loss = F.cross_entropy(logits[:-1], tokens[0, 1:])
    loss.backward()

    grads, info = {}, {}
    for n, p in sorted(lora.items()):
        key = saved_name(n)
        g = p.grad.detach()
        grads[key] = g.float().contiguous()
        info[key] = {"shape": list(g.shape), "norm": float(g.norm())}
    save_file(grads, os.path.join(out, "gradients.safetensors"), metadata={"format": "pt"})
    reference = {
        "gguf": file, "sha256": hashlib.sha256(open(path, "rb").read()).hexdigest(),
        "architecture": arch, "rank": RANK, "alpha": ALPHA, "tokens": TOKENS,
        "shape": {k: MODELS[name][2][k] for k in ("layers", "dim", "ffn", "heads", "kv", "head_dim")},
        "loss": loss.item(), "gradients": info,
    }
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(reference, f, indent=1)
    print(f"{file}: loss {loss.item():.9f}, {len(info)} LoRA tensors")


def main():
    tiny_dir = sys.argv[1]
    out_root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peft")
    shutil.rmtree(out_root, ignore_errors=True)
    for file in FILES:
        make(tiny_dir, file, out_root)


if __name__ == "__main__":
    main()
