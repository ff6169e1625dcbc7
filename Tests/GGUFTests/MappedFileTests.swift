import Foundation
import GGUF
import Testing

@Suite("GGUF files read from disk")
struct MappedFileTests {
    static func temporaryPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory
            .appendingPathComponent("gguf-tests-\(getpid())-\(UInt64.random(in: 0...UInt64.max))-\(name)").path
    }

    @Test("a memory-mapped file parses to the same metadata, tensors and bytes as the same image in memory")
    func mappedEqualsInMemory() throws {
        var w = GGUFWriter()
        w.set("general.name", .string("tiny"))
        w.set("tokens", .array(elementType: 8, [.string("<s>"), .string("é")]))
        var rng = SeededRandom(seed: 11)
        w.addTensor("w", dimensions: [64, 3], type: .q4_1, values: rng.floats(192))
        w.addTensor("v", dimensions: [7], type: .f16, values: rng.floats(7))
        let bytes = w.serialize()
        let path = Self.temporaryPath("model.gguf")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }

        let mapped = try GGUFFile(path: path)
        let memory = try GGUFFile(data: bytes)
        #expect(mapped.path == path)
        #expect(memory.path == nil)
        #expect(mapped.version == memory.version)
        #expect(mapped.metadataKeys == memory.metadataKeys)
        #expect(mapped.metadata == memory.metadata)
        #expect(mapped.tensors == memory.tensors)
        #expect(mapped.dataOffset == memory.dataOffset)
        #expect(mapped.bytes.count == bytes.count)
        for info in memory.tensors {
            #expect(Array(mapped.data(of: info)) == Array(memory.data(of: info)))
            #expect(try Dequantize.tensor(info, in: mapped) == (try Dequantize.tensor(info, in: memory)))
        }
    }

    @Test("discarding a mapped tensor's pages keeps its bytes readable, and is a no-op in memory")
    func discardPages() throws {
        var w = GGUFWriter()
        var rng = SeededRandom(seed: 12)
        w.addTensor("a", dimensions: [3000], type: .f32, values: rng.floats(3000))
        w.addTensor("b", dimensions: [64, 40], type: .q8_0, values: rng.floats(2560))
        let bytes = w.serialize()
        let path = Self.temporaryPath("discard.gguf")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }

        let mapped = try GGUFFile(path: path), memory = try GGUFFile(data: bytes)
        for info in memory.tensors {
            let before = try Dequantize.tensor(info, in: mapped)
            mapped.discardPages(of: info)
            memory.discardPages(of: info)
            #expect(try Dequantize.tensor(info, in: mapped) == before)
            #expect(try Dequantize.tensor(info, in: memory) == before)
        }
        #expect(Array(mapped.bytes) == bytes)
    }

    @Test("a missing file is an I/O error naming the path")
    func missingFile() {
        let path = Self.temporaryPath("absent.gguf")
        let error = ggufError { _ = try GGUFFile(path: path) }
        guard case .io(path: path, _) = error else {
            Issue.record("got \(String(describing: error))")
            return
        }
    }

    @Test("an empty file is a truncation, not a crash")
    func emptyFile() throws {
        let path = Self.temporaryPath("empty.gguf")
        try Data().write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(throws: GGUFError.truncated(offset: 0, needed: 4, available: 0)) { try GGUFFile(path: path) }
    }
}
