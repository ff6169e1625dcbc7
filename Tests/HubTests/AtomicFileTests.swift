import Foundation
import Hub
import Testing

@Suite("Atomic file writes")
struct AtomicFileTests {
    static func listing(_ dir: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted()
    }

    @Test("a small write creates nested directories and the exact content, with no temporary file left")
    func writesSmallContent() throws {
        try withTemporaryDirectory { dir in
            let target = dir.appendingPathComponent("tenants/acme/adapters/style/v1")
            try AtomicFile.write(to: target, contents: Array("weights".utf8))
            #expect(try String(contentsOf: target, encoding: .utf8) == "weights")
            #expect(Self.listing(target.deletingLastPathComponent()) == ["v1"])
        }
    }

    @Test("writing again replaces the old content as a whole")
    func replacesExisting() throws {
        try withTemporaryDirectory { dir in
            let target = dir.appendingPathComponent("file.bin")
            try AtomicFile.write(to: target, contents: Array(repeating: UInt8(1), count: 10_000))
            try AtomicFile.write(to: target, contents: Array(repeating: UInt8(2), count: 10))
            #expect(try [UInt8](Data(contentsOf: target)) == Array(repeating: UInt8(2), count: 10))
            #expect(Self.listing(dir) == ["file.bin"])
        }
    }

    @Test("with replaceExisting off an existing file is kept and alreadyExists is thrown")
    func refusesToReplace() throws {
        try withTemporaryDirectory { dir in
            let target = dir.appendingPathComponent("v1")
            try AtomicFile.write(to: target, contents: Array("first".utf8), replaceExisting: false)
            let error = #expect(throws: HubError.self) {
                try AtomicFile.write(to: target, contents: Array("second".utf8), replaceExisting: false)
            }
            #expect(error == .alreadyExists(path: target.path))
            #expect(try String(contentsOf: target, encoding: .utf8) == "first")
            #expect(Self.listing(dir) == ["v1"])
        }
    }

    @Test("a streaming write whose body fails leaves neither the final nor a temporary file")
    func failedStreamLeavesNothing() throws {
        struct Interrupted: Error {}
        try withTemporaryDirectory { dir in
            let target = dir.appendingPathComponent("model.gguf")
            var temporary = ""
            #expect(throws: Interrupted.self) {
                try AtomicFile.write(to: target) { writer in
                    temporary = writer.temporaryPath
                    try writer.write(Array(repeating: UInt8(7), count: 1 << 20))
                    #expect(FileManager.default.fileExists(atPath: writer.temporaryPath))
                    #expect(URL(fileURLWithPath: writer.temporaryPath).lastPathComponent.hasPrefix("."))
                    throw Interrupted()
                }
            }
            #expect(!temporary.isEmpty)
            #expect(Self.listing(dir).isEmpty)
        }
    }

    @Test("a streaming write returns the body's value and counts the bytes written")
    func streamingReturnsValue() throws {
        try withTemporaryDirectory { dir in
            let target = dir.appendingPathComponent("out.bin")
            let count = try AtomicFile.write(to: target) { writer -> UInt64 in
                for _ in 0 ..< 4 { try writer.write(sampleBytes(count: 1000)) }
                return writer.bytesWritten
            }
            #expect(count == 4000)
            #expect(try Data(contentsOf: target).count == 4000)
            #expect(Self.listing(dir) == ["out.bin"])
        }
    }

    @Test("a destination in an uncreatable directory is an io error naming the path")
    func uncreatableDirectory() throws {
        try withTemporaryDirectory { dir in
            let blocker = try writeFile([1], named: "blocker", in: dir)
            let error = #expect(throws: HubError.self) {
                try AtomicFile.write(to: blocker.appendingPathComponent("child/file"), contents: [1, 2, 3])
            }
            guard case let .io(path, _) = error else { Issue.record("unexpected \(String(describing: error))"); return }
            #expect(path.hasPrefix(blocker.path))
        }
    }
}
