import AdapterFormat
import Foundation
import GGUF
import Hub
import TestSupport
import Testing

@Suite("Adding and removing base models")
struct ModelRegistryTests {
    /// Writes `bytes` as `name` in a directory of its own (removed with the file by `defer`s).
    static func write(_ bytes: [UInt8], _ name: String) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("graft-model-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let url = dir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url
    }

    static func spec(_ architecture: String, window: Int = 0) -> TinyModel.Spec {
        var s = TinyModel.Spec()
        s.architecture = architecture
        s.slidingWindow = window
        return s
    }

    @Test("a runnable file is checked, hashed, copied and listed; its adapters keep it until --force")
    func addCopyAndRemove() throws {
        try withTemporaryHub { hub in
            let file = try Self.write(TinyModel.gguf(Self.spec("qwen2")), "Tiny-Qwen.gguf")
            defer { try? FileManager.default.removeItem(at: file.deletingLastPathComponent()) }
            let model = try hub.addModel(at: file)
            #expect(model.name == "tiny-qwen" && model.architecture == "qwen2" && !model.isDefault)
            #expect(model.sha256 == (try Checksum.sha256Hex(ofFile: file)))
            #expect(try hub.modelPath("tiny-qwen") == hub.modelsDirectory.appendingPathComponent("tiny-qwen/Tiny-Qwen.gguf"))
            #expect(try hub.catalog().names.contains("tiny-qwen"))
            #expect(hub.installedModels().first { $0.name == "tiny-qwen" }?.verified == true)
            #expect(throws: HubError.self) { try hub.addModel(at: file) }  // the name is taken

            // An adapter made for it blocks removal.
            try hub.publishAdapter(AdapterFixtures.graft(seed: 1, sha: model.sha256), tenant: "acme", name: "support")
            #expect(hub.adapters(madeFor: model).map(\.description) == ["acme/support@1"])
            #expect(throws: HubError.modelInUse(model: "tiny-qwen", adapters: ["acme/support@1"])) {
                try hub.removeModel("tiny-qwen")
            }
            let orphans = try hub.removeModel("tiny-qwen", force: true)
            #expect(orphans.map(\.description) == ["acme/support@1"])
            #expect(try !hub.catalog().names.contains("tiny-qwen"))
            #expect(!FileManager.default.fileExists(atPath: hub.modelsDirectory.appendingPathComponent("tiny-qwen").path))
            #expect(FileManager.default.fileExists(atPath: file.path))
        }
    }

    @Test("--link leaves the file in place; --default makes it the model used when none is named")
    func linkAndDefault() throws {
        try withTemporaryHub { hub in
            let file = try Self.write(TinyModel.gguf(Self.spec("gemma2", window: 4)), "g.gguf")
            defer { try? FileManager.default.removeItem(at: file.deletingLastPathComponent()) }
            let model = try hub.addModel(at: file, name: "gem", link: true, makeDefault: true)
            #expect(model.source.kind == "link" && model.source.path == file.path)
            #expect(try hub.catalog().defaultModel?.name == "gem")
            #expect(try hub.modelPath().resolvingSymlinksInPath() == file.resolvingSymlinksInPath())
            #expect(throws: HubError.modelInUse(model: "gem", adapters: [], isDefault: true)) { try hub.removeModel("gem") }
            try hub.removeModel("gem", force: true)
            #expect(FileManager.default.fileExists(atPath: file.path))
        }
    }

    @Test("a file Graft cannot run is refused with the reason, and nothing is left in the hub", arguments: [
        ("truncated", "lies outside the file"), ("architecture", "mamba"), ("tensor", "blk.1.ffn_down.weight"),
    ])
    func refusals(kind: String, expected: String) throws {
        try withTemporaryHub { hub in
            var bytes = TinyModel.gguf()
            switch kind {
            case "truncated": bytes = Array(bytes.prefix(bytes.count - 100))
            case "architecture": bytes = TinyModel.gguf(override: ["general.architecture": .string("mamba")])
            default: bytes = TinyModel.gguf(omit: "blk.1.ffn_down.weight")
            }
            let file = try Self.write(bytes, "bad.gguf")
            defer { try? FileManager.default.removeItem(at: file.deletingLastPathComponent()) }
            let catalogBefore = try hub.catalog()
            do {
                _ = try hub.addModel(at: file, name: "bad")
                Issue.record("\(kind): accepted")
            } catch {
                #expect("\(error)".contains(expected), "\(kind): \(error)")
            }
            #expect(try hub.catalog() == catalogBefore)
            #expect(!FileManager.default.fileExists(atPath: hub.modelsDirectory.appendingPathComponent("bad").path))
        }
    }
}
