import Foundation
import GGUF
import TestSupport
import Testing

/// Fixtures from Tests/Fixtures/quant/make_quant_fixtures.py: random valid blocks of each type
/// and the float32 values the `gguf` Python package's dequantizer gives for them.
@Suite("Dequantize matches the reference dequantizer bit for bit")
struct ReferenceDequantizeTests {
    static let types: [GGMLType] = [.f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0,
                                    .q2_K, .q3_K, .q4_K, .q5_K, .q6_K]

    @Test("every supported type decodes the fixture blocks to the reference floats", arguments: Self.types)
    func fixture(type: GGMLType) throws {
        let raw = [UInt8](try Data(contentsOf: TestData.fixture("quant/\(type.name).bin")))
        let expected = try TestData.floats("quant/\(type.name).f32")
        #expect(raw.count == type.byteCount(elements: expected.count), "\(type): fixture sizes disagree")
        #expect(expected.count >= 256)
        var decoded = [Float](repeating: .nan, count: expected.count)
        try raw.withUnsafeBytes { src in
            try decoded.withUnsafeMutableBufferPointer {
                try Dequantize.decode(type, src.baseAddress!, into: $0.baseAddress!, count: expected.count)
            }
        }
        var mismatches = 0
        for i in expected.indices where decoded[i].bitPattern != expected[i].bitPattern {
            mismatches += 1
            if mismatches <= 3 {
                Issue.record("\(type) element \(i): decoded \(decoded[i]) (0x\(String(decoded[i].bitPattern, radix: 16))), reference \(expected[i]) (0x\(String(expected[i].bitPattern, radix: 16)))")
            }
        }
        #expect(mismatches == 0, "\(type): \(mismatches) of \(expected.count) values differ")
    }

    @Test("Quantize.encode writes valid blocks for every supported type: decoding them stays near the input",
          arguments: Self.types)
    func encodeRoundTrip(type: GGMLType) throws {
        var rng = SeededRandom(seed: 40 + UInt64(type.id))
        var values: [Float] = []
        for s in 0..<4 { values += rng.floats(256, in: -Float(s + 1)...Float(s + 1) * 0.7) }
        let encoded = Quantize.encode(values, as: type)
        #expect(encoded.count == type.byteCount(elements: values.count))
        var decoded = [Float](repeating: .nan, count: values.count)
        try encoded.withUnsafeBytes { src in
            try decoded.withUnsafeMutableBufferPointer {
                try Dequantize.decode(type, src.baseAddress!, into: $0.baseAddress!, count: values.count)
            }
        }
        // The worst case is Q2_K (4 levels over a sub-block's range, 4-bit scales): about a
        // quarter of the range. Every other type must do better than its level count implies.
        let bits: Float = switch type {
        case .q2_K: 2
        case .q3_K: 3
        case .q4_0, .q4_1, .q4_K: 4
        case .q5_0, .q5_1, .q5_K: 5
        case .q6_K: 6
        case .q8_0, .bf16: 8
        default: 12
        }
        for s in 0..<4 {
            let range = Float(s + 1) * 1.7
            let allowed = range / (pow(2, bits) - 1) * 1.5
            for i in s * 256..<(s + 1) * 256 {
                #expect(abs(decoded[i] - values[i]) <= allowed, "\(type) element \(i): \(values[i]) -> \(decoded[i])")
            }
        }
    }
}
