import Foundation
import LlamaModel
import Testing
@testable import AdapterFormat

/// Each kind of damage gets its own error, with the facts needed to find it.
@Suite(".graft files that must be rejected")
struct GraftRejectionTests {
    static let qA = PEFTName.tensor(LoRATarget(layer: 0, projection: .query), .a)
    static let qB = PEFTName.tensor(LoRATarget(layer: 0, projection: .query), .b)

    private func file(compress: Bool = true) throws -> [UInt8] {
        try GraftFile.encode(syntheticAdapter(config: tinyConfig, projections: [.query, .value]), info: sampleInfo,
                             compress: compress, minimumSaving: 0)
    }

    private func decodeError(_ bytes: [UInt8]) -> AdapterFormatError? { thrownError { _ = try GraftFile.decode(bytes) } }

    @Test("a bad CRC is rejected with the tensor's name, for stored and compressed tensors")
    func badChecksum() throws {
        var bytes = try file(compress: false)
        let (header, entries) = try layout(bytes)
        bytes[header.dataStart + entries[Self.qB]!.begin + 5] ^= 0x10
        guard case .checksumMismatch(Self.qB, _, _) = decodeError(bytes) else {
            Issue.record("got \(String(describing: decodeError(bytes)))"); return
        }
        let edited = try editHeader(try file()) { json in editEntry(&json, Self.qA) { $0["crc32"] = 12345 } }
        guard case .checksumMismatch(Self.qA, 12345, _) = decodeError(edited) else {
            Issue.record("got \(String(describing: decodeError(edited)))"); return
        }
    }

    @Test("a damaged compressed blob is reported as corrupt data of that tensor")
    func corruptBlob() throws {
        var bytes = try file()
        let (header, entries) = try layout(bytes)
        let e = entries[Self.qA]!
        for k in (header.dataStart + e.begin + 2)..<(header.dataStart + e.end) { bytes[k] = 0xFF }
        guard case .corruptData(Self.qA, _) = decodeError(bytes) else {
            Issue.record("got \(String(describing: decodeError(bytes)))"); return
        }
    }

    @Test("a truncated body is rejected naming the tensor that runs past the end")
    func truncatedBody() throws {
        let bytes = try file()
        let error = decodeError(Array(bytes.dropLast(3)))
        guard case .outOfRange(_, _, let end, let dataSize) = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(end == dataSize + 3)
        #expect(error!.description.contains("truncated file?"))
    }

    @Test("a file cut inside its length field or header says how much is missing")
    func truncatedHeader() throws {
        let bytes = try file()
        #expect(decodeError(Array(bytes[..<5])) == .truncated(context: "the header length field", needed: 8, available: 5))
        let n = try GraftFile.headerByteCount(bytes)
        #expect(decodeError(Array(bytes[..<100]))
                == .truncated(context: "the \(n - 8)-byte header", needed: n, available: 100))
    }

    @Test("a header length beyond the cap is refused before anything is allocated")
    func absurdHeaderLength() throws {
        var bytes = try file()
        bytes.replaceSubrange(0..<8, with: withHeaderLength(1 << 62))
        #expect(decodeError(bytes) == .headerTooLarge(claimed: 1 << 62, limit: SafeTensors.maxHeaderBytes))
    }

    @Test("overlapping, inverted, out-of-range and gapped offsets each get their own error")
    func offsets() throws {
        let bytes = try file(compress: false)
        let (_, entries) = try layout(bytes)
        let qA = entries[Self.qA]!, qB = entries[Self.qB]!
        let size = qB.end - qB.begin
        let overlapping = try editHeader(bytes) { json in
            editEntry(&json, Self.qB) { $0["data_offsets"] = [qA.begin + 4, qA.begin + 4 + size] }
        }
        guard case .overlapping = decodeError(overlapping) else {
            Issue.record("got \(String(describing: decodeError(overlapping)))"); return
        }
        let inverted = try editHeader(bytes) { json in editEntry(&json, Self.qB) { $0["data_offsets"] = [qB.end, qB.begin] } }
        #expect(decodeError(inverted) == .invalidOffsets(tensor: Self.qB, begin: UInt64(qB.end), end: UInt64(qB.begin)))
        let far = 1 << 40
        let outside = try editHeader(bytes) { json in editEntry(&json, Self.qB) { $0["data_offsets"] = [far, far + size] } }
        guard case .outOfRange(Self.qB, far, _, _) = decodeError(outside) else {
            Issue.record("got \(String(describing: decodeError(outside)))"); return
        }
        let gap = bytes + [0, 0, 0, 0]
        guard case .unusedBytes(_, 4) = decodeError(gap) else { Issue.record("got \(String(describing: decodeError(gap)))"); return }
    }

    @Test("a raw_size that does not match shape and dtype is refused")
    func rawSizeMismatch() throws {
        let bytes = try editHeader(try file()) { json in editEntry(&json, Self.qA) { $0["raw_size"] = 12 } }
        #expect(decodeError(bytes) == .sizeMismatch(tensor: Self.qA, field: "raw_size", expected: 4 * 64 * 4, found: 12))
        let stored = try editHeader(try file(compress: false)) { json in editEntry(&json, Self.qA) { $0["shape"] = [4, 63] } }
        #expect(decodeError(stored) == .sizeMismatch(tensor: Self.qA, field: "data_offsets", expected: 4 * 63 * 4, found: 4 * 64 * 4))
    }

    @Test("huge claimed sizes are refused without a huge allocation")
    func hugeSizes() throws {
        let tooLarge = try editHeader(try file()) { json in
            editEntry(&json, Self.qA) { $0["shape"] = [1 << 20, 1 << 20]; $0["raw_size"] = 1 << 42 }
        }
        guard case .tensorTooLarge(Self.qA, _, SafeTensors.maxTensorBytes) = decodeError(tooLarge) else {
            Issue.record("got \(String(describing: decodeError(tooLarge)))"); return
        }
        // Within the per-tensor cap, but far more than the blob could inflate to.
        let bomb = try editHeader(try file()) { json in
            editEntry(&json, Self.qA) { $0["shape"] = [4, 1 << 25]; $0["raw_size"] = 1 << 29 }
            editEntry(&json, Self.qB) { $0["shape"] = [1 << 25, 4]; $0["raw_size"] = 1 << 29 }
        }
        guard case .corruptData(Self.qA, let reason) = decodeError(bomb) else {
            Issue.record("got \(String(describing: decodeError(bomb)))"); return
        }
        #expect(reason.contains("cannot come from"))
    }

    @Test("unknown compression, shuffle and dtype values are refused", arguments: [
        ("compression", "lz4"), ("shuffle", "bit"),
    ])
    func unknownEncodings(field: String, value: String) throws {
        let bytes = try editHeader(try file()) { json in editEntry(&json, Self.qA) { $0[field] = value } }
        #expect(decodeError(bytes) == .unsupportedEncoding(tensor: Self.qA, field: field, value: value))
    }

    @Test("an unknown dtype is refused with its name")
    func unknownDType() throws {
        let bytes = try editHeader(try file()) { json in editEntry(&json, Self.qA) { $0["dtype"] = "F64" } }
        #expect(decodeError(bytes) == .unknownDType(tensor: Self.qA, dtype: "F64"))
    }

    @Test("metadata must be strings, of this format and version, and complete")
    func badMetadata() throws {
        let bytes = try file()
        func withMetadata(_ edit: @escaping (inout [String: Any]) -> Void) throws -> [UInt8] {
            try editHeader(bytes) { json in
                var m = json["__metadata__"] as! [String: Any]
                edit(&m)
                json["__metadata__"] = m
            }
        }
        guard case .invalidMetadata("rank", _) = decodeError(try withMetadata { $0["rank"] = 8 }) else {
            Issue.record("a numeric metadata value was accepted"); return
        }
        #expect(decodeError(try withMetadata { $0["format_version"] = "2" }) == .unsupportedFormatVersion("2"))
        #expect(decodeError(try withMetadata { $0["format"] = "pt" })
                == .invalidMetadata(key: "format", reason: "is 'pt', expected 'graft-adapter'"))
        #expect(decodeError(try withMetadata { $0["tenant"] = nil }) == .invalidMetadata(key: "tenant", reason: "missing"))
        guard case .invalidMetadata("created", _) = decodeError(try withMetadata { $0["created"] = "yesterday" }) else {
            Issue.record("a bad date was accepted"); return
        }
        guard case .invalidMetadata("target_modules", _) = decodeError(try withMetadata { $0["target_modules"] = "q_proj" }) else {
            Issue.record("target_modules disagreeing with the tensors was accepted"); return
        }
    }

    @Test("a lora_A without its lora_B is refused, naming the missing partner")
    func missingPartner() throws {
        let renamed = PEFTName.tensor(LoRATarget(layer: 1, projection: .key), .b)
        let bytes = try editHeader(try file()) { json in json[renamed] = json[Self.qB]; json[Self.qB] = nil }
        #expect(decodeError(bytes) == .missingPartner(tensor: Self.qA, partner: Self.qB))
    }

    @Test("lora_A and lora_B whose shapes do not agree on the rank are refused")
    func inconsistentShapes() throws {
        let bytes = try editHeader(try file()) { json in editEntry(&json, Self.qA) { $0["shape"] = [2, 128] } }
        #expect(decodeError(bytes) == .inconsistentShapes(target: "layers.0.q_proj", a: [2, 128], b: [64, 4]))
    }

    @Test("tensors that are not LoRA factors, and duplicated factors, are refused")
    func unknownAndDuplicate() throws {
        let unknown = try editHeader(try file()) { json in json["lm_head.weight"] = json[Self.qA]; json[Self.qA] = nil }
        #expect(decodeError(unknown) == .unknownTensor("lm_head.weight"))
        // The same factor again under PEFT's adapter-named key, with its own copy of the data.
        let bytes = try file()
        let (header, entries) = try layout(bytes)
        let qA = entries[Self.qA]!, dataSize = bytes.count - header.dataStart
        let named = Self.qA.replacingOccurrences(of: ".weight", with: ".default.weight")
        let duplicate = try editHeader(bytes + bytes[(header.dataStart + qA.begin)..<(header.dataStart + qA.end)]) { json in
            var entry = json[Self.qA] as! [String: Any]
            entry["data_offsets"] = [dataSize, dataSize + qA.end - qA.begin]
            json[named] = entry
        }
        #expect(decodeError(duplicate) == .duplicateTensor(Self.qA))
    }

    @Test("NaN values with a valid checksum are still refused")
    func nanValues() throws {
        var bytes = try file(compress: false)
        let (header, entries) = try layout(bytes)
        let start = header.dataStart + entries[Self.qA]!.begin
        bytes.replaceSubrange(start..<(start + 4), with: StorageType.f32.encode([.nan])!)
        let crc = Compression.crc32(bytes[start..<(header.dataStart + entries[Self.qA]!.end)])
        let fixed = try editHeader(bytes) { json in editEntry(&json, Self.qA) { $0["crc32"] = crc } }
        #expect(decodeError(fixed) == .nonFiniteValue(tensor: Self.qA))
    }

    @Test("every error message names what is wrong")
    func messages() {
        let e = AdapterFormatError.checksumMismatch(tensor: "t", expected: 0xAB, actual: 0x1)
        #expect(e.description == "tensor 't': CRC-32 mismatch (header says 0x000000ab, data has 0x00000001)")
        #expect(AdapterFormatError.shapeMismatch(tensor: "t", expected: [8, 64], found: [8, 576]).description
                .contains("maybe wrong base model?"))
    }
}
