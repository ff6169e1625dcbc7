#!/usr/bin/env bash
# Builds the llama.cpp programs the real-weights checks need, from a llama.cpp source tree
# (the llama-cpp-python sdist's vendor/llama.cpp): llama-quantize, llama-bench, and
# graft-greedy-ids (greedy_ids.cpp next to this script: prompt ids, greedy ids and top-2 logits as JSON).
# CPU only, no network code, tuned for this machine (GGML_NATIVE), Release, two jobs, static libraries.
# Usage: build_llama_tools.sh LLAMA_CPP_DIR OUT_DIR    (does nothing when OUT_DIR/bin has the three programs)
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 LLAMA_CPP_DIR OUT_DIR" >&2; exit 2; }
src=$(cd "$1" && pwd)
mkdir -p "$2"
out=$(cd "$2" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
tools=(llama-quantize llama-bench graft-greedy-ids)

missing=0
for t in "${tools[@]}"; do [ -x "$out/bin/$t" ] || missing=1; done
if [ $missing -eq 0 ]; then
    echo "llama.cpp tools already built in $out/bin"
    exit 0
fi
[ -f "$src/include/llama.h" ] || { echo "$src: no include/llama.h (expected llama.cpp's source tree)" >&2; exit 1; }
command -v cmake >/dev/null || { echo "cmake not found (apt-get install -y cmake)" >&2; exit 1; }

start=$(date +%s)
cmake -S "$src" -B "$out/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
    -DGGML_NATIVE=ON -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF -DGGML_BLAS=OFF -DGGML_RPC=OFF \
    -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
    -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_BUILD_TOOLS=ON > "$out/cmake-configure.log" 2>&1 \
    || { tail -20 "$out/cmake-configure.log" >&2; exit 1; }
cmake --build "$out/build" --config Release -j2 --target llama-quantize llama-bench llama > "$out/cmake-build.log" 2>&1 \
    || { grep -B2 -A8 'error' "$out/cmake-build.log" | tail -40 >&2; exit 1; }

# The greedy-ids program links llama.cpp's static libraries directly.
libs=()
for name in llama ggml ggml-cpu ggml-base; do
    lib=$(find "$out/build" -name "lib$name.a" | head -1)
    [ -n "$lib" ] || { echo "lib$name.a not found under $out/build" >&2; exit 1; }
    libs+=("$lib")
done
openmp=()
grep -q '^OpenMP_C_FLAGS:STRING=.*-fopenmp' "$out/build/CMakeCache.txt" && openmp=(-fopenmp)
mkdir -p "$out/bin"
g++ -std=c++17 -O2 -I"$src/include" -I"$src/ggml/include" "$here/greedy_ids.cpp" \
    -Wl,--start-group "${libs[@]}" -Wl,--end-group "${openmp[@]}" -lpthread -ldl -lm -o "$out/bin/graft-greedy-ids"
for t in llama-quantize llama-bench; do cp "$out/build/bin/$t" "$out/bin/$t"; done
echo "built ${tools[*]} into $out/bin in $(( $(date +%s) - start )) s"
