import Foundation
import Hub
import Testing

@Suite("Zip archive reading")
struct ZipArchiveTests {
    static let text = Array("hello from a stored member\n".utf8)
    static let model = sampleBytes(count: 200_000)

    static func standardZip(zip64: Bool = false, comment: [UInt8] = []) -> (bytes: [UInt8], layout: TestZipLayout) {
        TestZip(members: [
            TestZipMember("pkg/", [], deflate: false),
            TestZipMember("pkg/readme.txt", text, deflate: false),
            TestZipMember("pkg/model.bin", model, deflate: true),
            TestZipMember("pkg/empty.bin", [], deflate: true),
        ], zip64: zip64, comment: comment).build()
    }

    @Test("stored and deflated members come out byte for byte, with the central directory read correctly")
    func extractsStoredAndDeflated() throws {
        try withTemporaryDirectory { dir in
            let url = try writeFile(Self.standardZip().bytes, named: "a.whl", in: dir)
            let archive = try ZipArchive(path: url.path)
            #expect(archive.entries.map(\.name) == ["pkg/", "pkg/readme.txt", "pkg/model.bin", "pkg/empty.bin"])
            let model = try #require(archive.entry(named: "pkg/model.bin"))
            #expect(model.method == 8)
            #expect(model.uncompressedSize == UInt64(Self.model.count))
            #expect(model.compressedSize < model.uncompressedSize)
            #expect(try extractToMemory(url, "pkg/readme.txt") == Self.text)
            #expect(try extractToMemory(url, "pkg/model.bin") == Self.model)
            #expect(try extractToMemory(url, "pkg/empty.bin") == [])
        }
    }

    @Test("ZIP64 end records and ZIP64 extra fields are followed, and a trailing comment is skipped")
    func readsZip64AndComment() throws {
        try withTemporaryDirectory { dir in
            let comment = Array(repeating: UInt8(ascii: "c"), count: 1000)
            let url = try writeFile(Self.standardZip(zip64: true, comment: comment).bytes, named: "z64.whl", in: dir)
            let archive = try ZipArchive(path: url.path)
            let entry = try #require(archive.entry(named: "pkg/model.bin"))
            #expect(entry.uncompressedSize == UInt64(Self.model.count))
            #expect(try extractToMemory(url, "pkg/model.bin") == Self.model)
            #expect(try extractToMemory(url, "pkg/readme.txt") == Self.text)
        }
    }

    @Test("members larger than the chunk size stream through many chunks, stored and deflated")
    func streamsLargeMembers() throws {
        let big = sampleBytes(count: 3 << 20, seed: 7)
        let zip = TestZip(members: [
            TestZipMember("big.deflated", big, deflate: true),
            TestZipMember("big.stored", big, deflate: false),
        ]).build()
        try withTemporaryDirectory { dir in
            let url = try writeFile(zip.bytes, named: "big.whl", in: dir)
            let archive = try ZipArchive(path: url.path)
            for name in ["big.deflated", "big.stored"] {
                var chunks = 0
                var out: [UInt8] = []
                try archive.extract(name) { chunk in
                    #expect(chunk.count <= ZipArchive.defaultChunkSize)
                    chunks += 1
                    out.append(contentsOf: chunk)
                }
                #expect(chunks >= 3)
                #expect(out == big)
            }
            // Tiny chunks exercise many input refills and output flushes.
            #expect(try extractToMemory(url, "big.deflated", chunkSize: 4093).count == big.count)
            #expect(try extractToMemory(url, "big.stored", chunkSize: 7919) == big)
        }
    }

    @Test("extraction to a file descriptor writes exactly the member's bytes")
    func extractsToDescriptor() throws {
        try withTemporaryDirectory { dir in
            let url = try writeFile(Self.standardZip().bytes, named: "a.whl", in: dir)
            let outPath = dir.appendingPathComponent("out.bin").path
            let fd = open(outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            try #require(fd >= 0)
            let entry = try ZipArchive(path: url.path).extract("pkg/model.bin", toFileDescriptor: fd)
            close(fd)
            #expect(entry.name == "pkg/model.bin")
            #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: outPath))) == Self.model)
        }
    }

    @Test("a missing member is reported with the list of members the archive has")
    func missingMemberListsAvailable() throws {
        try withTemporaryDirectory { dir in
            let url = try writeFile(Self.standardZip().bytes, named: "a.whl", in: dir)
            let error = #expect(throws: ZipError.self) { try extractToMemory(url, "pkg/absent.gguf") }
            guard case let .memberNotFound(name, available) = error else {
                Issue.record("unexpected error \(String(describing: error))"); return
            }
            #expect(name == "pkg/absent.gguf")
            #expect(available == ["pkg/readme.txt", "pkg/model.bin", "pkg/empty.bin"])
            #expect(error?.description.contains("pkg/model.bin") == true)
        }
    }

    @Test("a recorded CRC-32 that does not match the data is a crcMismatch with both values")
    func wrongCRC() throws {
        let zip = TestZip(members: [TestZipMember("m.bin", Self.model, deflate: true, recordedCRC: 0xDEAD_BEEF)]).build()
        try withTemporaryDirectory { dir in
            let url = try writeFile(zip.bytes, named: "crc.whl", in: dir)
            let error = #expect(throws: ZipError.self) { try extractToMemory(url, "m.bin") }
            #expect(error == .crcMismatch(member: "m.bin", expected: 0xDEAD_BEEF, actual: crc32Of(Self.model)))
        }
    }

    @Test("an invalid deflate block is a corruptArchive error at the member's data offset")
    func invalidDeflateBlock() throws {
        var zip = TestZip(members: [TestZipMember("m.bin", Self.model, deflate: true)]).build()
        let dataOffset = try #require(zip.layout.dataOffsets["m.bin"])
        zip.bytes[dataOffset] |= 0b110  // block type 3 is reserved
        try withTemporaryDirectory { dir in
            let url = try writeFile(zip.bytes, named: "bad.whl", in: dir)
            let error = #expect(throws: ZipError.self) { try extractToMemory(url, "m.bin") }
            guard case let .corruptArchive(reason, offset) = error else {
                Issue.record("unexpected error \(String(describing: error))"); return
            }
            #expect(reason.contains("m.bin"))
            #expect(offset >= UInt64(dataOffset))
        }
    }

    @Test("a flipped byte inside the deflate stream never yields data: it is caught as corruption, CRC or size")
    func flippedDeflateByte() throws {
        let base = TestZip(members: [TestZipMember("m.bin", Self.model, deflate: true)]).build()
        let start = try #require(base.layout.dataOffsets["m.bin"])
        let length = try #require(base.layout.dataLengths["m.bin"])
        try withTemporaryDirectory { dir in
            for position in stride(from: start + 1, to: start + length, by: max(1, length / 40)) {
                var bytes = base.bytes
                bytes[position] ^= 0x5A
                let url = try writeFile(bytes, named: "flip.whl", in: dir)
                let error = #expect(throws: ZipError.self) { try extractToMemory(url, "m.bin") }
                switch error {
                case .corruptArchive, .crcMismatch, .sizeMismatch: break
                default: Issue.record("flip at \(position): unexpected \(String(describing: error))")
                }
            }
        }
    }

    @Test("every truncation of the file is an error, never a crash")
    func truncatedFiles() throws {
        let full = Self.standardZip().bytes
        try withTemporaryDirectory { dir in
            for length in stride(from: 0, to: full.count, by: max(1, full.count / 300)) {
                let url = try writeFile(Array(full.prefix(length)), named: "cut.whl", in: dir)
                #expect(throws: ZipError.self) { try extractToMemory(url, "pkg/model.bin") }
            }
            let url = try writeFile(Array(full.prefix(10)), named: "tiny.whl", in: dir)
            let error = #expect(throws: ZipError.self) { try ZipArchive(path: url.path) }
            #expect(error == .missingEndOfCentralDirectory(path: url.path, scanned: 10))
        }
    }

    @Test("a file without an end of central directory record is reported as not a zip archive")
    func missingEndRecord() throws {
        var zip = Self.standardZip()
        zip.bytes.put32(0x1234_5678, at: zip.layout.endRecordOffset)
        try withTemporaryDirectory { dir in
            let url = try writeFile(zip.bytes, named: "noeocd.whl", in: dir)
            let error = #expect(throws: ZipError.self) { try ZipArchive(path: url.path) }
            #expect(error == .missingEndOfCentralDirectory(path: url.path, scanned: min(zip.bytes.count, 65_557)))
            let plain = try writeFile(Array(repeating: 0x41, count: 70_000), named: "text.whl", in: dir)
            let other = #expect(throws: ZipError.self) { try ZipArchive(path: plain.path) }
            #expect(other == .missingEndOfCentralDirectory(path: plain.path, scanned: 65_557))
        }
    }

    @Test("a local header offset that points at the wrong place or past the directory is corruptArchive")
    func badLocalHeaderOffset() throws {
        let base = Self.standardZip()
        let entry = try #require(base.layout.centralEntryOffsets["pkg/model.bin"])
        try withTemporaryDirectory { dir in
            var wrong = base.bytes
            wrong.put32(5, at: entry + 42)
            let url = try writeFile(wrong, named: "wrong.whl", in: dir)
            let error = #expect(throws: ZipError.self) { try extractToMemory(url, "pkg/model.bin") }
            #expect(error == .corruptArchive(
                reason: "no local header for pkg/model.bin at the offset its central directory entry gives", offset: 5))

            var otherMember = base.bytes
            otherMember.put32(UInt32(try #require(base.layout.localHeaderOffsets["pkg/readme.txt"])), at: entry + 42)
            let url2 = try writeFile(otherMember, named: "other.whl", in: dir)
            let error2 = #expect(throws: ZipError.self) { try extractToMemory(url2, "pkg/model.bin") }
            guard case .corruptArchive = error2 else { Issue.record("unexpected \(String(describing: error2))"); return }

            var past = base.bytes
            past.put32(0x7FFF_0000, at: entry + 42)
            let url3 = try writeFile(past, named: "past.whl", in: dir)
            let error3 = #expect(throws: ZipError.self) { try ZipArchive(path: url3.path) }
            guard case let .corruptArchive(reason, offset) = error3 else {
                Issue.record("unexpected \(String(describing: error3))"); return
            }
            #expect(offset == UInt64(entry))
            #expect(reason.contains("pkg/model.bin"))
        }
    }

    @Test("any single damaged byte gives either the exact data or a ZipError")
    func singleByteDamageNeverCrashes() throws {
        let small = TestZip(members: [
            TestZipMember("a.txt", Self.text, deflate: false),
            TestZipMember("b.bin", sampleBytes(count: 600, seed: 3), deflate: true),
        ], zip64: true).build().bytes
        let expected = sampleBytes(count: 600, seed: 3)
        try withTemporaryDirectory { dir in
            for position in 0 ..< small.count {
                var bytes = small
                bytes[position] ^= 0xFF
                let url = try writeFile(bytes, named: "d.whl", in: dir)
                do {
                    let out = try extractToMemory(url, "b.bin", chunkSize: 64)
                    #expect(out == expected, "damage at \(position) changed the output silently")
                } catch is ZipError {
                    // reported, as it should be
                }
            }
        }
    }
}
