#!/usr/bin/env python3
"""Records llama.cpp's greedy continuations of 10 chat prompts for each requantized SmolLM2 file.

Each prompt is rendered with the model's own chat template (jinja2, as transformers renders it) and
handed to llama.cpp as raw text (graft-greedy-ids: special tokens parsed, no BOS added), so the
prompt ids llama.cpp records are the ones Graft's tokenizer must produce. For every file: its
SHA-256, and per prompt the generated ids (32, greedy, no stop), each step's largest logit and
its margin over the second largest.

usage: record_greedy.py TOOLS_BIN QUANT_DIR OUT.json [TYPES...]
"""
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import gguf
import jinja2

NEW_TOKENS = 32
TYPES = ["Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0", "F16"]
CONVERSATIONS = [
    ("capital", [{"role": "user", "content": "What is the capital of France?"}]),
    ("haiku", [{"role": "user", "content": "Write a haiku about the sea."}]),
    ("arithmetic", [{"role": "user", "content": "What is 17 times 23? Show your steps."}]),
    ("python", [{"role": "user", "content": "Write a Python function that reverses a string."}]),
    ("photosynthesis", [{"role": "user", "content": "Explain photosynthesis to a ten-year-old."}]),
    ("translate", [{"role": "user", "content": "Translate 'Good morning, how are you?' into Spanish."}]),
    ("list", [{"role": "user", "content": "Give me three tips for sleeping better."}]),
    ("system", [{"role": "system", "content": "You are a pirate. Answer in one sentence."},
                {"role": "user", "content": "Where is the treasure?"}]),
    ("multiturn", [{"role": "user", "content": "Hi! My name is Ada."},
                   {"role": "assistant", "content": "Hello Ada! How can I help you today?"},
                   {"role": "user", "content": "What is my name, and what does it remind you of?"}]),
    ("unicode", [{"role": "user", "content": "Café, naïve, 東京 and 🙂: what do these have in common?"}]),
]


def field_value(reader, key):
    field = reader.fields[key]
    return field.contents() if hasattr(field, "contents") else bytes(field.parts[field.data[0]]).decode()


def render(template_text, messages, bos, eos):
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False)
    env.globals["raise_exception"] = raise_exception
    return env.from_string(template_text).render(messages=messages, add_generation_prompt=True,
                                                 bos_token=bos, eos_token=eos)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    tools, quant_dir, out_path = sys.argv[1:4]
    types = sys.argv[4:] or TYPES
    files = {t: next((os.path.join(quant_dir, n) for n in sorted(os.listdir(quant_dir)) if n.endswith(f".{t}.gguf")), None)
             for t in types}
    for t, f in files.items():
        if f is None:
            sys.exit(f"{quant_dir}: no *.{t}.gguf (run make_quants.sh)")

    reader = gguf.GGUFReader(files[types[0]])
    template = field_value(reader, "tokenizer.chat_template")
    tokens = field_value(reader, "tokenizer.ggml.tokens")
    bos = tokens[int(field_value(reader, "tokenizer.ggml.bos_token_id"))]
    eos = tokens[int(field_value(reader, "tokenizer.ggml.eos_token_id"))]
    prompts = [{"name": name, "text": render(template, messages, bos, eos)} for name, messages in CONVERSATIONS]

    models = []
    with tempfile.TemporaryDirectory() as scratch:
        for t in types:
            runs = []
            for p in prompts:
                prompt_file = os.path.join(scratch, p["name"] + ".txt")
                with open(prompt_file, "w", encoding="utf-8") as f:
                    f.write(p["text"])
                out = subprocess.run([os.path.join(tools, "graft-greedy-ids"), "-m", files[t], "-f", prompt_file,
                                      "-n", str(NEW_TOKENS), "-t", "2"], check=True, capture_output=True, text=True)
                r = json.loads(out.stdout)
                if "prompt_ids" in p and p["prompt_ids"] != r["prompt_ids"]:
                    sys.exit(f"{t} {p['name']}: llama.cpp's prompt ids differ between files")
                p["prompt_ids"] = r["prompt_ids"]
                runs.append({"ids": r["ids"], "top1": [round(a, 4) for a in r["top1"]],
                             "margins": [round(a - b, 4) for a, b in zip(r["top1"], r["top2"])]})
            models.append({"type": t, "file": os.path.basename(files[t]), "sha256": sha256(files[t]),
                           "size": os.path.getsize(files[t]), "greedy": runs})
            print(f"{t}: {len(runs)} prompts", file=sys.stderr)

    doc = {"about": "llama.cpp (llama-cpp-python 0.3.36 source distribution) greedy continuations, "
                    f"{NEW_TOKENS} new tokens, no stop, of chat prompts rendered with the model's template; "
                    "top1 is llama.cpp's largest logit at each step, margins its top-1 minus top-2",
           "new_tokens": NEW_TOKENS, "prompts": prompts, "models": models}
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(compact(doc) + "\n")


def compact(doc):
    """JSON with one line per prompt and per greedy run, so the file stays short and diffs stay readable."""
    line = lambda v: json.dumps(v, ensure_ascii=False)
    models = ",\n".join(
        "  {" + ", ".join(f"{line(k)}: {line(v)}" for k, v in m.items() if k != "greedy")
        + ', "greedy": [\n' + ",\n".join("   " + line(r) for r in m["greedy"]) + "]}"
        for m in doc["models"])
    head = ",\n".join(f" {line(k)}: {line(v)}" for k, v in doc.items() if k not in ("prompts", "models"))
    prompts = ",\n".join("  " + line(p) for p in doc["prompts"])
    return "{\n" + head + ',\n "prompts": [\n' + prompts + '],\n "models": [\n' + models + "]\n}"


if __name__ == "__main__":
    main()
