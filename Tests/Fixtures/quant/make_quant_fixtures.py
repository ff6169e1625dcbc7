#!/usr/bin/env python3
"""Writes bit-exact dequantization fixtures for GGUFTests.

For each tensor type: <TYPE>.bin holds a few blocks of random but valid bytes (every f16
scale field finite, the quantized bits uniformly random) and <TYPE>.f32 the little-endian
float32 values `gguf.quants.dequantize` (the `gguf` Python package) gives for them.

Usage: python3 make_quant_fixtures.py [output-dir]   (default: this script's directory)
"""
import os
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize

# Byte ranges of the f16 scale fields in one block, per type.
HALF_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}
BLOCKS = {32: 8, 256: 4}
PLAIN_ELEMENTS = 256


def finite_halves(rng, n):
    """Random binary16 bit patterns, any sign, zero and subnormals included, never NaN/Inf."""
    bits = rng.integers(0, 1 << 16, size=n, dtype=np.uint32)
    exponent = (bits >> 10) & 0x1F
    bits = np.where(exponent == 0x1F, bits & ~np.uint32(0x4000), bits)  # exponent 31 -> 15
    return bits.astype(np.uint16)


def block_bytes(qtype, rng):
    if qtype == T.F32:
        values = rng.standard_normal(PLAIN_ELEMENTS).astype(np.float32) * 10.0
        return values.view(np.uint8)
    if qtype == T.F16:
        return finite_halves(rng, PLAIN_ELEMENTS).view(np.uint8)
    if qtype == T.BF16:
        bits = rng.integers(0, 1 << 16, size=PLAIN_ELEMENTS, dtype=np.uint32)
        exponent = (bits >> 7) & 0xFF
        bits = np.where(exponent == 0xFF, bits & ~np.uint32(0x4000), bits)
        return bits.astype(np.uint16).view(np.uint8)
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    n = BLOCKS[block_size]
    data = rng.integers(0, 256, size=(n, type_size), dtype=np.uint8)
    if qtype == T.Q8_0:
        # 8 blocks of 32 int8: every value from -128 to 127 exactly once.
        data[:, 2:] = rng.permutation(256).astype(np.uint8).reshape(n, 32)
    for offset in HALF_FIELDS[qtype]:
        data[:, offset:offset + 2] = finite_halves(rng, n).view(np.uint8).reshape(n, 2)
    return data.reshape(-1)


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    rng = np.random.default_rng(20240611)
    types = [T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0,
             T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K]
    for qtype in types:
        raw = block_bytes(qtype, rng)
        values = dequantize(raw, qtype).astype(np.float32).reshape(-1)
        with open(os.path.join(out_dir, f"{qtype.name}.bin"), "wb") as f:
            f.write(raw.tobytes())
        with open(os.path.join(out_dir, f"{qtype.name}.f32"), "wb") as f:
            f.write(values.astype("<f4").tobytes())
        print(f"{qtype.name}: {raw.size} bytes, {values.size} values")


if __name__ == "__main__":
    main()
