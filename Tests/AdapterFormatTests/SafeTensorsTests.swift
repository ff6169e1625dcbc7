import Foundation
import Testing
@testable import AdapterFormat

@Suite("safetensors codec")
struct SafeTensorsTests {
    private func sample() -> [String: SafeTensor] {
        [
            "b.weight": SafeTensor(values: [1, -2, 3.5, 0.25, 1e-3, -7], shape: [2, 3], dtype: .f32)!,
            "a.weight": SafeTensor(values: [0.5, 1.5, -2.5], shape: [3], dtype: .bf16)!,
            "c.scalar": SafeTensor(values: [42], shape: [], dtype: .f16)!,
        ]
    }

    @Test("encode then decode returns the same tensors and metadata")
    func roundTrip() throws {
        let bytes = SafeTensors.encode(sample(), metadata: ["format": "pt", "note": "quote \" and \\ and \n é"])
        let (tensors, metadata) = try SafeTensors.decode(bytes)
        #expect(tensors == sample())
        #expect(metadata == ["format": "pt", "note": "quote \" and \\ and \n é"])
        #expect(tensors["b.weight"]?.values == [1, -2, 3.5, 0.25, 1e-3, -7])
    }

    @Test("written files are exact: sorted names, contiguous offsets from 0, header space-padded to 8 bytes")
    func exactLayout() throws {
        let bytes = SafeTensors.encode(sample())
        let n = Int(try GraftFile.headerByteCount(bytes)) - 8
        #expect(n % 8 == 0)
        let text = String(decoding: bytes[8..<(8 + n)], as: UTF8.self)
        let trimmed = text.replacingOccurrences(of: " +$", with: "", options: .regularExpression)
        #expect(trimmed.hasSuffix("}") && !trimmed.contains(" "))
        let header = try TensorHeader.parse(bytes, graft: false)
        #expect(header.entries.map(\.name) == ["a.weight", "b.weight", "c.scalar"])
        #expect(header.entries.map(\.begin) == [0, 6, 30])
        #expect(header.entries.map(\.end) == [6, 30, 32])
        #expect(bytes.count == 8 + n + 32)
    }

    @Test("the fixture's safetensors file decodes and re-encodes byte for byte")
    func fixtureIsReproduced() throws {
        let original = try Fixture.bytes("adapter_model.safetensors")
        let (tensors, metadata) = try SafeTensors.decode(original)
        #expect(tensors.count == 420)
        #expect(SafeTensors.encode(tensors, metadata: metadata) == original)
    }

    @Test("bf16 rounds to nearest with ties to even and keeps infinities and NaN")
    func bfloat16Rounding() {
        let one = Float(1)
        let halfStep = Float.ulpOfOne * 32768   // half the spacing of bf16 numbers near 1: 2^-8
        #expect(bfloat16Bits(one + halfStep) == 0x3F80)                  // tie, even stays down
        #expect(bfloat16Bits(one + 3 * halfStep) == 0x3F82)              // tie, odd rounds up to even
        #expect(bfloat16Bits(one + halfStep + Float.ulpOfOne) == 0x3F81) // above the tie
        #expect(bfloat16Bits(-one - halfStep * 0.99) == 0xBF80)
        #expect(bfloat16Bits(.infinity) == 0x7F80)
        #expect(bfloat16Bits(-.infinity) == 0xFF80)
        #expect(bfloat16Bits(.greatestFiniteMagnitude) == 0x7F80)        // rounds to infinity, as RNE does
        #expect(Float(bitPattern: UInt32(bfloat16Bits(.nan)) << 16).isNaN)
        #expect(Float(bitPattern: UInt32(bfloat16Bits(Float(bitPattern: 0x7F80_0001))) << 16).isNaN)
    }

    @Test("every non-NaN F16 and BF16 value widens exactly and narrows back to the same bits")
    func halfWidthRoundTrip() {
        for type in [StorageType.f16, .bf16] {
            let all = (0..<65536).map { UInt16($0) }
            let bytes = all.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
            let widened = type.decode(bytes[...])
            let back = type.encode(widened)!
            for k in 0..<65536 where !widened[k].isNaN {
                if back[2 * k] != bytes[2 * k] || back[2 * k + 1] != bytes[2 * k + 1] {
                    Issue.record("\(type) bits \(String(k, radix: 16)) did not round-trip")
                    return
                }
            }
        }
    }

    @Test("a value too large for F16 is refused rather than stored as infinity")
    func f16Overflow() {
        #expect(StorageType.f16.encode([1, 65504]) != nil)
        #expect(StorageType.f16.encode([1, 70000]) == nil)
        #expect(SafeTensor(values: [1e6], shape: [1], dtype: .f16) == nil)
    }

    @Test("the reader refuses a compressed .graft entry")
    func refusesGraftFields() throws {
        let bytes = try GraftFile.encode(syntheticAdapter(config: tinyConfig, projections: [.query]), info: sampleInfo, minimumSaving: 0)
        let error = thrownError { _ = try SafeTensors.decode(bytes) }
        guard case .unsupportedEncoding(_, "compression", "zlib") = error else {
            Issue.record("got \(String(describing: error))"); return
        }
    }

    @Test("malformed JSON headers are reported with their byte offset", arguments: [
        (#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, "duplicate"),
        (#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}} x"#, "after"),
        (#"{"a":{"dtype":"F\u00"}}"#, "escape"),
        (#"{"a":{"dtype":"F32","shape":[01],"data_offsets":[0,4]}}"#, "leading zero"),
        (#"{"a":"\ud800"}"#, "surrogate"),
        (String(repeating: "[", count: 100), "nesting"),
        (#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}"#, "unterminated"),
    ])
    func malformedJSON(header: String, reason: String) {
        let bytes = withHeaderLength(UInt64(header.utf8.count)) + Array(header.utf8) + [UInt8](repeating: 0, count: 8)
        let error = thrownError { _ = try SafeTensors.decode(bytes) }
        guard case .invalidJSON(let offset, let why) = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(why.contains(reason))
        #expect(offset >= 8 && offset <= 8 + header.utf8.count)
    }

    @Test("a header that is not an object of entries is refused", arguments: [
        (#"[1,2]"#, "invalid header"),
        (#"{"a":{"dtype":"I8","shape":[4],"data_offsets":[0,4]}}"#, "unsupported dtype 'I8'"),
        (#"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, "not a non-negative integer"),
        (#"{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}"#, "not a non-negative integer"),
        (#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}"#, "two non-negative integers"),
        (#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":1}}"#, "unexpected field 'extra'"),
        (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, "need 8 bytes but data_offsets gives 4"),
        (#"{"__metadata__":{"k":1},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, "not a string"),
    ])
    func invalidEntries(header: String, message: String) {
        let bytes = withHeaderLength(UInt64(header.utf8.count)) + Array(header.utf8) + [UInt8](repeating: 0, count: 4)
        let error = thrownError { _ = try SafeTensors.decode(bytes) }
        #expect(error?.description.contains(message) == true, "got \(String(describing: error))")
    }
}
