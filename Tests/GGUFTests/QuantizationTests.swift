import GGUF
import Testing

@Suite("Dequantize and Quantize")
struct QuantizationTests {
    static func decode(_ bytes: [UInt8], as type: GGMLType, count: Int) throws -> [Float] {
        var out = [Float](repeating: .nan, count: count)
        try bytes.withUnsafeBytes { src in
            try out.withUnsafeMutableBufferPointer { try Dequantize.decode(type, src.baseAddress!, into: $0.baseAddress!, count: count) }
        }
        return out
    }

    static func half(_ bytes: [UInt8], at offset: Int) -> Float {
        Dequantize.halfToFloat(UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8)
    }

    // MARK: - Encode then decode

    @Test("F32 survives encoding bit for bit, including signed zero, infinities, NaN and subnormals")
    func f32Exact() throws {
        var rng = SeededRandom(seed: 2)
        let values = rng.floats(96, in: -1e6...1e6) + [0, -0.0, .infinity, -.infinity, .nan, .leastNonzeroMagnitude, -.greatestFiniteMagnitude]
        let encoded = Quantize.encode(values, as: .f32)
        #expect(encoded.count == values.count * 4)
        let decoded = try Self.decode(encoded, as: .f32, count: values.count)
        #expect(decoded.map(\.bitPattern) == values.map(\.bitPattern))
    }

    @Test("F16 keeps every value within half a unit in the last place of binary16")
    func f16Precision() throws {
        var rng = SeededRandom(seed: 3)
        let values = rng.floats(500, in: -60_000...60_000) + rng.floats(500, in: -1...1) + [0, -0.0, 1, 65504]
        let decoded = try Self.decode(Quantize.encode(values, as: .f16), as: .f16, count: values.count)
        for (v, d) in zip(values, decoded) {
            // Relative 2^-11 for normals; absolute 2^-25 (half the subnormal step) below 2^-14.
            #expect(abs(d - v) <= max(abs(v) * 0x1p-11, 0x1p-25), "\(v) -> \(d)")
        }
        #expect(decoded[values.count - 3].bitPattern == Float(-0.0).bitPattern)
    }

    @Test("BF16 keeps every value within half a unit in the last place and rounds ties to even")
    func bf16Precision() throws {
        var rng = SeededRandom(seed: 4)
        let values = rng.floats(1000, in: -1e30...1e30) + rng.floats(1000, in: -1...1)
        let decoded = try Self.decode(Quantize.encode(values, as: .bf16), as: .bf16, count: values.count)
        for (v, d) in zip(values, decoded) {
            #expect(abs(d - v) <= abs(v) * 0x1p-8, "\(v) -> \(d)")
        }
        // 1 + 2^-8 lies halfway between 1 (even) and 1 + 2^-7; 1 + 3·2^-8 halfway between 1 + 2^-7 and 1 + 2^-6 (even).
        let ties: [Float] = [1 + 0x1p-8, 1 + 3 * 0x1p-8, -(1 + 0x1p-8), 1 + 0x1p-8 + 0x1p-20]
        let expected: [Float] = [1, 1 + 0x1p-6, -1, 1 + 0x1p-7]
        #expect(try Self.decode(Quantize.encode(ties, as: .bf16), as: .bf16, count: 4) == expected)
    }

    @Test("BF16 encoding keeps NaN a NaN, whatever its payload")
    func bf16NaN() throws {
        let nans = [Float.nan, Float(bitPattern: 0x7FFF_FFFF), Float(bitPattern: 0xFFFF_FFFF), Float(bitPattern: 0x7F80_0001)]
        let decoded = try Self.decode(Quantize.encode(nans, as: .bf16), as: .bf16, count: nans.count)
        for (v, d) in zip(nans, decoded) {
            #expect(d.isNaN, "0x\(String(v.bitPattern, radix: 16)) became \(d)")
        }
    }

    @Test("Q8_0, Q4_0 and Q4_1 reconstruct random values within the block's quantization step",
          arguments: [GGMLType.q8_0, .q4_0, .q4_1])
    func blockPrecision(type: GGMLType) throws {
        var rng = SeededRandom(seed: 5 + UInt64(type.id))
        var values: [Float] = []
        for b in 0..<64 {
            let scale = Float(b % 8 + 1) * 0.37
            values += rng.floats(32, in: -scale...scale)
        }
        values += [Float](repeating: 0, count: 32)  // an all-zero block
        let encoded = Quantize.encode(values, as: type)
        #expect(encoded.count == type.byteCount(elements: values.count))
        let decoded = try Self.decode(encoded, as: type, count: values.count)
        for b in 0..<values.count / 32 {
            let d = Self.half(encoded, at: b * type.typeSize)
            // Q4_0 maps the largest magnitude to -8·d, so the opposite extreme may land a full step away.
            let step = type == .q4_0 ? abs(d) * 1.01 : abs(d) * 0.5005
            for j in b * 32..<b * 32 + 32 {
                let v = values[j]
                #expect(abs(decoded[j] - v) <= step + abs(v) * 0x1p-11, "\(type) block \(b) element \(j): \(v) -> \(decoded[j]), d = \(d)")
            }
        }
        #expect(decoded.suffix(32).allSatisfy { $0 == 0 })
    }

    @Test("a constant block round-trips exactly when its scale is representable in binary16")
    func constantBlocks() throws {
        // Q4_1 stores the constant as m with d = 0; Q4_0 gets d = 2.5/8; Q8_0 gets d = 31.75/127 = 0.25.
        let a = [Float](repeating: -2.5, count: 32), b = [Float](repeating: -31.75, count: 32)
        #expect(try Self.decode(Quantize.encode(a, as: .q4_1), as: .q4_1, count: 32) == a)
        #expect(try Self.decode(Quantize.encode(a, as: .q4_0), as: .q4_0, count: 32) == a)
        #expect(try Self.decode(Quantize.encode(b, as: .q8_0), as: .q8_0, count: 32) == b)
    }

    // MARK: - Hand-built blocks

    @Test("a hand-built Q4_0 block decodes to d·(q − 8), low nibbles first")
    func q4_0Layout() throws {
        var block = Sample.half(0.5)
        for j in 0..<16 { block.append(UInt8(j) | UInt8(15 - j) << 4) }
        var second = Sample.half(-3)
        for j in 0..<16 { second.append(UInt8((j * 7) % 16) | UInt8((j * 5 + 3) % 16) << 4) }
        let decoded = try Self.decode(block + second, as: .q4_0, count: 64)
        for j in 0..<16 {
            #expect(decoded[j] == 0.5 * Float(j - 8))
            #expect(decoded[j + 16] == 0.5 * Float(15 - j - 8))
            #expect(decoded[32 + j] == -3 * Float((j * 7) % 16 - 8))
            #expect(decoded[32 + j + 16] == -3 * Float((j * 5 + 3) % 16 - 8))
        }
    }

    @Test("a hand-built Q4_1 block decodes to d·q + m, low nibbles first")
    func q4_1Layout() throws {
        var block = Sample.half(0.25) + Sample.half(-1.5)
        for j in 0..<16 { block.append(UInt8(15 - j) | UInt8(j) << 4) }
        var second = Sample.half(2) + Sample.half(100)
        for j in 0..<16 { second.append(UInt8((j * 3) % 16) | UInt8((j * 11) % 16) << 4) }
        let decoded = try Self.decode(block + second, as: .q4_1, count: 64)
        for j in 0..<16 {
            #expect(decoded[j] == 0.25 * Float(15 - j) - 1.5)
            #expect(decoded[j + 16] == 0.25 * Float(j) - 1.5)
            #expect(decoded[32 + j] == 2 * Float((j * 3) % 16) + 100)
            #expect(decoded[32 + j + 16] == 2 * Float((j * 11) % 16) + 100)
        }
    }

    @Test("a hand-built Q8_0 block decodes to d·q with signed bytes, including −128")
    func q8_0Layout() throws {
        var block = Sample.half(2)
        for j in 0..<32 { block.append(UInt8(bitPattern: Int8(j == 0 ? -128 : j * 4 - 64))) }
        var second = Sample.half(-0.125)
        for j in 0..<32 { second.append(UInt8(bitPattern: Int8(127 - j))) }
        let decoded = try Self.decode(block + second, as: .q8_0, count: 64)
        #expect(decoded[0] == -256)
        for j in 1..<32 { #expect(decoded[j] == 2 * Float(j * 4 - 64)) }
        for j in 0..<32 { #expect(decoded[32 + j] == -0.125 * Float(127 - j)) }
    }

    @Test("halfToFloat decodes the special binary16 patterns")
    func halfSpecials() {
        #expect(Dequantize.halfToFloat(0x3C00) == 1)
        #expect(Dequantize.halfToFloat(0xC000) == -2)
        #expect(Dequantize.halfToFloat(0x7BFF) == 65504)
        #expect(Dequantize.halfToFloat(0x0001) == 0x1p-24)
        #expect(Dequantize.halfToFloat(0x7C00) == .infinity)
        #expect(Dequantize.halfToFloat(0x7E00).isNaN)
        #expect(Dequantize.halfToFloat(0x8000).bitPattern == Float(-0.0).bitPattern)
    }

    @Test("decoding a type whose layout is known but whose values are not is an error, not a guess")
    func decodeUnsupported() throws {
        let q8k = try #require(GGMLType.known(id: 15))
        #expect(q8k.name == "Q8_K")
        #expect(!q8k.isSupported)
        #expect(GGMLType.known(id: 99) == nil)
        #expect(throws: GGUFError.self) { try Self.decode([UInt8](repeating: 0, count: 292), as: q8k, count: 256) }
    }

    @Test("Dequantize.tensor decodes every supported type the way decode does")
    func tensorMatchesDecode() throws {
        var w = GGUFWriter()
        var rng = SeededRandom(seed: 9)
        let types = GGMLType.supported
        var encoded: [[UInt8]] = []
        for (i, t) in types.enumerated() {
            encoded.append(Quantize.encode(rng.floats(768), as: t))
            w.addTensor("t\(i)", dimensions: [256, 3], type: t, data: encoded[i])
        }
        let file = try GGUFFile(data: w.serialize())
        for (i, t) in types.enumerated() {
            let values = try Dequantize.tensor(file.requireTensor("t\(i)"), in: file)
            #expect(values == (try Self.decode(encoded[i], as: t, count: 768)), "\(t)")
        }
    }
}
