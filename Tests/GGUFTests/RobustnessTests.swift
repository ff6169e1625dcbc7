import GGUF
import Testing

@Suite("GGUF reader rejects malformed files with specific errors")
struct RobustnessTests {
    /// A file with one metadata entry and one tensor whose info is written by `tensor`.
    static func withTensor(_ tensor: (inout RawGGUF) -> Void, dataBytes: Int = 64) -> [UInt8] {
        var raw = RawGGUF(tensorCount: 1, metadataCount: 1)
        raw.entry("k", type: 4, value: Sample.le(UInt32(1)))
        tensor(&raw)
        raw.data(count: dataBytes)
        return raw.bytes
    }

    @Test("cutting a valid file at every shorter length throws a GGUFError")
    func everyTruncation() throws {
        let full = Sample.file()
        _ = try GGUFFile(data: full)
        for length in 0..<full.count {
            do {
                _ = try GGUFFile(data: Array(full[0..<length]))
                Issue.record("a file cut to \(length) of \(full.count) bytes parsed")
            } catch is GGUFError {
            } catch {
                Issue.record("a file cut to \(length) bytes threw \(error), not a GGUFError")
            }
        }
    }

    @Test("a truncated header reports where the missing bytes were needed")
    func truncatedOffsets() {
        let full = Sample.file()
        #expect(throws: GGUFError.truncated(offset: 0, needed: 4, available: 3)) { try GGUFFile(data: Array(full[0..<3])) }
        #expect(throws: GGUFError.truncated(offset: 8, needed: 8, available: 2)) { try GGUFFile(data: Array(full[0..<10])) }
    }

    @Test("a wrong magic number is reported as such")
    func badMagic() {
        let raw = RawGGUF(tensorCount: 0, metadataCount: 0, magic: 0x4655_4746)
        #expect(throws: GGUFError.badMagic(found: 0x4655_4746)) { try GGUFFile(data: raw.bytes) }
        var swapped = Sample.file()
        swapped.swapAt(0, 3)
        #expect(throws: GGUFError.badMagic(found: 0x4755_4746)) { try GGUFFile(data: swapped) }
    }

    @Test("versions other than 2 and 3 are rejected", arguments: [UInt32(0), 1, 4, 0xFFFF_FFFF])
    func badVersion(version: UInt32) {
        let raw = RawGGUF(version: version, tensorCount: 0, metadataCount: 0)
        #expect(throws: GGUFError.unsupportedVersion(version)) { try GGUFFile(data: raw.bytes) }
    }

    @Test("an unknown metadata value type is rejected with its key, at top level and inside an array")
    func unknownValueType() {
        var raw = RawGGUF(tensorCount: 0, metadataCount: 1)
        raw.entry("odd", type: 13, value: [0, 0, 0, 0])
        #expect(throws: GGUFError.unknownValueType(13, key: "odd")) { try GGUFFile(data: raw.bytes) }

        var inArray = RawGGUF(tensorCount: 0, metadataCount: 1)
        inArray.entry("arr", type: 9, value: Sample.le(UInt32(99)) + Sample.le(UInt64(1)) + [0, 0, 0, 0])
        #expect(throws: GGUFError.unknownValueType(99, key: "arr")) { try GGUFFile(data: inArray.bytes) }
    }

    @Test("arrays nested deeper than any real file are rejected, not recursed into")
    func deepNesting() {
        var value: [UInt8] = []
        for _ in 0..<5000 { value += Sample.le(UInt32(9)) + Sample.le(UInt64(1)) }
        value += Sample.le(UInt32(0)) + Sample.le(UInt64(0))
        var raw = RawGGUF(tensorCount: 0, metadataCount: 1)
        raw.entry("deep", type: 9, value: value)
        #expect(throws: GGUFError.self) { try GGUFFile(data: raw.bytes) }
    }

    @Test("an absurd array length is an implausible count, not an allocation")
    func absurdArrayCount() {
        var raw = RawGGUF(tensorCount: 0, metadataCount: 1)
        raw.entry("big", type: 9, value: Sample.le(UInt32(0)) + Sample.le(UInt64(1) << 62) + [1, 2, 3])
        // The count sits after the header (24), the key (8 + 3), the type (4) and the element type (4).
        #expect(throws: GGUFError.implausibleCount(what: "array length", count: 1 << 62, offset: 43)) {
            try GGUFFile(data: raw.bytes)
        }
    }

    @Test("an absurd string length is a truncation, not an allocation")
    func absurdStringLength() {
        var raw = RawGGUF(tensorCount: 0, metadataCount: 1)
        raw.u64(UInt64.max - 3)
        raw.bytes += Array("key".utf8)
        #expect(throws: GGUFError.self) { try GGUFFile(data: raw.bytes) }

        var value = RawGGUF(tensorCount: 0, metadataCount: 1)
        value.entry("s", type: 8, value: Sample.le(UInt64(1) << 40) + Array("abc".utf8))
        #expect(throws: GGUFError.truncated(offset: 45, needed: 1 << 40, available: 3)) { try GGUFFile(data: value.bytes) }
    }

    @Test("absurd tensor and metadata counts are implausible counts")
    func absurdCounts() {
        let tensors = RawGGUF(tensorCount: 1 << 40, metadataCount: 0)
        #expect(throws: GGUFError.implausibleCount(what: "tensor count", count: 1 << 40, offset: 8)) {
            try GGUFFile(data: tensors.bytes)
        }
        let entries = RawGGUF(tensorCount: 0, metadataCount: .max)
        #expect(throws: GGUFError.implausibleCount(what: "metadata count", count: .max, offset: 16)) {
            try GGUFFile(data: entries.bytes)
        }
    }

    @Test("a key given twice is rejected by name")
    func duplicateKey() {
        var w = GGUFWriter()
        w.set("general.name", .string("a"))
        w.set("other", .uint8(1))
        w.set("general.name", .string("b"))
        #expect(throws: GGUFError.duplicateKey("general.name")) { try GGUFFile(data: w.serialize()) }
    }

    @Test("a tensor name given twice is rejected by name")
    func duplicateTensor() {
        var w = GGUFWriter()
        w.addTensor("t", dimensions: [4], values: [1, 2, 3, 4])
        w.addTensor("t", dimensions: [4], values: [1, 2, 3, 4])
        #expect(throws: GGUFError.duplicateTensor("t")) { try GGUFFile(data: w.serialize()) }
    }

    @Test("a key that is not valid UTF-8 is reported with its offset")
    func invalidUTF8() {
        var raw = RawGGUF(tensorCount: 0, metadataCount: 1)
        raw.u64(2); raw.bytes += [0xC3, 0x28]; raw.u32(0); raw.u8(1)
        #expect(throws: GGUFError.invalidString(offset: 24)) { try GGUFFile(data: raw.bytes) }
    }

    @Test("an unknown tensor type id names the id and the tensor")
    func unknownTensorType() throws {
        let bytes = Self.withTensor { $0.tensorInfo("blk.0.ffn_up.weight", dims: [32], type: 99, offset: 0) }
        let error = try #require(throws: GGUFError.self) { try GGUFFile(data: bytes) }
        #expect(error.description == "tensor blk.0.ffn_up.weight has type 99, which is not supported")
    }

    @Test("a known but unsupported tensor type parses for inspection, and decoding it names the type and the tensor")
    func layoutOnlyTensorType() throws {
        var w = GGUFWriter()
        w.addTensor("blk.0.attn_q.weight", dimensions: [256, 2], type: try #require(GGMLType.known(id: 15)),
                    data: [UInt8](repeating: 7, count: 584))
        let file = try GGUFFile(data: w.serialize())
        let info = try file.requireTensor("blk.0.attn_q.weight")
        #expect(info.type.name == "Q8_K")
        #expect(info.byteCount == 584)
        #expect(file.data(of: info).count == 584)
        let error = try #require(throws: GGUFError.self) { try Dequantize.tensor(info, in: file) }
        #expect(error.description == "tensor blk.0.attn_q.weight has type Q8_K, which is not supported")
    }

    @Test("a data offset that is not a multiple of the alignment is rejected")
    func misalignedOffset() {
        let bytes = Self.withTensor { $0.tensorInfo("t", dims: [4], type: 0, offset: 16) }
        #expect(throws: GGUFError.misalignedTensor(tensor: "t", offset: 16, alignment: 32)) { try GGUFFile(data: bytes) }
    }

    @Test("tensor data reaching past the end of the file is rejected with its range")
    func dataBeyondEnd() {
        let short = Self.withTensor({ $0.tensorInfo("t", dims: [16], type: 0, offset: 32) }, dataBytes: 95)
        // Header 24 + entry 8+1+4+4 + info 8+1+4+8+4+8 = 74, padded to 96; data [128, 192).
        #expect(throws: GGUFError.tensorOutOfBounds(tensor: "t", start: 128, end: 192, fileSize: 96 + 95)) {
            try GGUFFile(data: short)
        }
        let huge = Self.withTensor { $0.tensorInfo("t", dims: [4], type: 0, offset: UInt64.max - 31) }
        #expect(throws: GGUFError.self) { try GGUFFile(data: huge) }
    }

    @Test("bad dimensions are rejected: none, too many, zero, overflowing, or not a whole number of blocks")
    func badDimensions() {
        let cases: [(dims: [UInt64], type: UInt32)] = [
            ([], 0), ([1, 1, 1, 1, 1], 0), ([4, 0], 0), ([1 << 39, 1 << 39], 0), ([UInt64.max], 0), ([48], 8),
        ]
        for c in cases {
            let bytes = Self.withTensor { $0.tensorInfo("t", dims: c.dims, type: c.type, offset: 0) }
            let error = ggufError { _ = try GGUFFile(data: bytes) }
            guard case .badDimensions(tensor: "t", _) = error else {
                Issue.record("dims \(c.dims) type \(c.type) gave \(String(describing: error))")
                continue
            }
        }
    }

    @Test("general.alignment must be a positive power of two", arguments: [GGUFValue.uint32(0), .uint32(3), .int32(-32), .uint32(96), .string("32")])
    func badAlignment(value: GGUFValue) {
        var w = GGUFWriter()
        w.set("general.alignment", value)
        let error = ggufError { _ = try GGUFFile(data: w.serialize()) }
        guard case .badAlignment = error else {
            Issue.record("\(value) gave \(String(describing: error))")
            return
        }
        if let v = value.intValue { #expect(error == .badAlignment(v)) }
    }

    @Test("random byte mutations of a valid file either parse or throw, and parsed files decode safely")
    func mutationFuzz() {
        let base = Sample.file()
        var rng = SeededRandom(seed: 0x6767_7566)
        var parsed = 0
        for _ in 0..<3000 {
            var bytes = base
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let at = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: bytes[at] = UInt8.random(in: 0...255, using: &rng)
                case 1: bytes[at] ^= 1 << UInt8.random(in: 0..<8, using: &rng)
                case 2: bytes[at] = [0x00, 0xFF, 0x7F, 0x80][Int.random(in: 0..<4, using: &rng)]
                default: bytes.removeSubrange(at..<min(bytes.count, at + Int.random(in: 1...8, using: &rng)))
                }
                if bytes.isEmpty { break }
            }
            do {
                let file = try GGUFFile(data: bytes)
                parsed += 1
                _ = file.metadata.values.map(\.summary)
                for info in file.tensors where info.type.isSupported {
                    #expect(file.data(of: info).count == info.byteCount)
                    _ = try Dequantize.tensor(info, in: file)
                }
            } catch is GGUFError {
            } catch {
                Issue.record("threw \(error), not a GGUFError")
            }
        }
        // Mutations of the data section leave the header intact, so some files must parse.
        #expect(parsed > 0)
    }
}
