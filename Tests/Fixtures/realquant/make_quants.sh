#!/usr/bin/env bash
# Requantizes a GGUF file (the shipped SmolLM2-135M-Instruct Q4_1) with llama.cpp's llama-quantize
# into Q4_K_M, Q5_K_M, Q6_K, Q8_0 and F16: OUT_DIR/<stem>.<TYPE>.gguf. Files already there are kept.
# Usage: make_quants.sh LLAMA_QUANTIZE SOURCE.gguf OUT_DIR [TYPES...]
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 LLAMA_QUANTIZE SOURCE.gguf OUT_DIR [TYPES...]" >&2; exit 2; }
quantize=$1 source=$2 out=$3
shift 3
types=("$@")
[ ${#types[@]} -gt 0 ] || types=(Q4_K_M Q5_K_M Q6_K Q8_0 F16)
[ -x "$quantize" ] || { echo "$quantize: not an executable (build it with build_llama_tools.sh)" >&2; exit 1; }
[ -f "$source" ] || { echo "$source: no such file (run graft pull)" >&2; exit 1; }
mkdir -p "$out"
stem=$(basename "$source" .gguf)
stem=${stem%.*}   # SmolLM2-135M-Instruct.Q4_1 -> SmolLM2-135M-Instruct
for type in "${types[@]}"; do
    target="$out/$stem.$type.gguf"
    [ -f "$target" ] && continue
    # Written under a temporary name and renamed, so an interrupted run leaves no partial file.
    "$quantize" --allow-requantize "$source" "$target.part" "$type" 2 > "$target.log" 2>&1 \
        || { echo "llama-quantize $type failed, see $target.log" >&2; exit 1; }
    mv "$target.part" "$target"
    rm -f "$target.log"
done
