import Foundation
import Hub
import Testing

@Suite("Hub pull, lookup and listing")
struct HubTests {
    static let member = "tiny_model/tiny.gguf"
    static let content = sampleBytes(count: 1_500_000, seed: 42)

    /// A hub at `dir` whose catalog lists `tiny` (default) and `other`, plus a matching wheel.
    static func makeHub(in dir: URL, sha256: String? = nil, size: UInt64? = nil) throws -> (Hub, FakeFetcher) {
        let catalog = Catalog(models: [
            CatalogModel(name: "tiny", isDefault: true, file: "tiny.gguf",
                         size: size ?? UInt64(content.count), sha256: sha256 ?? Checksum.sha256Hex(content),
                         source: ModelSource(package: "tiny-model", version: "1.0", member: member)),
            CatalogModel(name: "other", file: "other.gguf", size: 3, sha256: String(repeating: "0", count: 64),
                         source: ModelSource(package: "other-model", version: "2.0", member: "o/other.gguf")),
        ])
        let root = dir.appendingPathComponent("registry")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try JSONEncoder().encode(catalog).write(to: root.appendingPathComponent("catalog.json"))
        let wheel = TestZip(members: [
            TestZipMember("tiny_model/__init__.py", [], deflate: false),
            TestZipMember(member, content, deflate: true),
        ]).build().bytes
        return (Hub(root: root), FakeFetcher(wheel: wheel))
    }

    static func files(in dir: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted()
    }

    @Test("a pull extracts the member, verifies it, writes the sidecar and removes the download directory")
    func pullInstalls() throws {
        try withTemporaryDirectory { dir in
            let (hub, fetcher) = try Self.makeHub(in: dir)
            var messages: [String] = []
            let result = try hub.pull(fetcher: fetcher, chunkSize: 100_000) { messages.append($0) }
            #expect(result.outcome == .downloaded)
            #expect(result.name == "tiny")
            #expect(result.path == hub.root.appendingPathComponent("models/tiny/tiny.gguf"))
            #expect(try [UInt8](Data(contentsOf: result.path)) == Self.content)
            #expect(Self.files(in: result.path.deletingLastPathComponent()) == ["tiny.gguf", "tiny.gguf.sha256"])
            let sidecar = try String(contentsOf: result.path.appendingPathExtension("sha256"), encoding: .utf8)
            #expect(sidecar == "\(Checksum.sha256Hex(Self.content))  tiny.gguf\n")
            #expect(fetcher.directories.count == 1)
            #expect(!FileManager.default.fileExists(atPath: fetcher.directories[0].path))
            let percentages = messages.filter { $0.hasPrefix("extracting: ") }
            #expect((9 ... 11).contains(percentages.count), "progress about every 10%: \(percentages)")
            #expect(messages.contains { $0.contains("extracting: 100%") })
            #expect(messages.contains { $0.hasPrefix("verifying") })
            #expect(try hub.modelPath() == result.path)
            #expect(try hub.modelPath("tiny") == result.path)
        }
    }

    @Test("pulling twice fetches once; the second pull is a no-op that reports the model as present")
    func secondPullIsNoOp() throws {
        try withTemporaryDirectory { dir in
            let (hub, fetcher) = try Self.makeHub(in: dir)
            _ = try hub.pull("tiny", fetcher: fetcher)
            var messages: [String] = []
            let second = try hub.pull("tiny", fetcher: fetcher) { messages.append($0) }
            #expect(fetcher.calls == 1)
            #expect(second.outcome == .alreadyPresent)
            #expect(messages == ["tiny is already present at \(second.path.path)"])

            // Without the sidecar the file is hashed once, not fetched again, and the sidecar comes back.
            try FileManager.default.removeItem(at: second.path.appendingPathExtension("sha256"))
            #expect(try hub.pull(fetcher: fetcher).outcome == .alreadyPresent)
            #expect(fetcher.calls == 1)
            #expect(FileManager.default.fileExists(atPath: second.path.appendingPathExtension("sha256").path))
        }
    }

    @Test("a same-size file with wrong content is fetched again when verification is asked for")
    func verifyRefetchesDamagedFile() throws {
        try withTemporaryDirectory { dir in
            let (hub, fetcher) = try Self.makeHub(in: dir)
            let path = try hub.pull(fetcher: fetcher).path
            var damaged = Self.content
            damaged[1000] ^= 1
            try Data(damaged).write(to: path)
            #expect(try hub.pull(fetcher: fetcher).outcome == .alreadyPresent)  // trusted sidecar, no re-hash
            #expect(fetcher.calls == 1)
            #expect(try hub.pull(verify: true, fetcher: fetcher).outcome == .downloaded)
            #expect(fetcher.calls == 2)
            #expect(try [UInt8](Data(contentsOf: path)) == Self.content)
        }
    }

    @Test("a checksum mismatch is reported and leaves no file, final or temporary, in the models directory")
    func checksumMismatchLeavesNothing() throws {
        try withTemporaryDirectory { dir in
            let wrong = String(repeating: "ab", count: 32)
            let (hub, fetcher) = try Self.makeHub(in: dir, sha256: wrong)
            let error = #expect(throws: HubError.self) { try hub.pull(fetcher: fetcher) }
            let destination = hub.root.appendingPathComponent("models/tiny/tiny.gguf")
            #expect(error == .checksumMismatch(expected: wrong, actual: Checksum.sha256Hex(Self.content),
                                               file: destination.path))
            #expect(Self.files(in: destination.deletingLastPathComponent()).isEmpty)
            #expect(!FileManager.default.fileExists(atPath: fetcher.directories[0].path))
            #expect(throws: HubError.notPulled(model: "tiny", root: hub.root.path)) { try hub.modelPath() }
        }
    }

    @Test("a wheel member whose size differs from the catalog is refused before extraction")
    func sizeMismatchRefused() throws {
        try withTemporaryDirectory { dir in
            let (hub, fetcher) = try Self.makeHub(in: dir, size: 12)
            let error = #expect(throws: HubError.self) { try hub.pull(fetcher: fetcher) }
            #expect(error == .sizeMismatch(file: "\(Self.member) in tiny-model-1.0-py3-none-any.whl",
                                           expected: 12, actual: UInt64(Self.content.count)))
            #expect(Self.files(in: hub.modelsDirectory.appendingPathComponent("tiny")).isEmpty)
        }
    }

    @Test("a wheel without the catalog's member is memberNotFound listing the wheel's members")
    func wheelWithoutMember() throws {
        try withTemporaryDirectory { dir in
            let (hub, fetcher) = try Self.makeHub(in: dir)
            let error = #expect(throws: HubError.self) { try hub.pull("other", fetcher: fetcher) }
            #expect(error == .memberNotFound(name: "o/other.gguf", available: ["tiny_model/__init__.py", Self.member]))
        }
    }

    @Test("an unknown model name is reported with the names the catalog knows")
    func unknownModel() throws {
        try withTemporaryDirectory { dir in
            let (hub, fetcher) = try Self.makeHub(in: dir)
            let error = #expect(throws: HubError.self) { try hub.pull("nope", fetcher: fetcher) }
            #expect(error == .unknownModel(name: "nope", known: ["tiny", "other"]))
            #expect(error?.description == "unknown model nope; the catalog knows: tiny, other")
            #expect(fetcher.calls == 0)
        }
    }

    @Test("modelPath before a pull says the model is not in the hub and how to get it")
    func modelPathNotPulled() throws {
        try withTemporaryDirectory { dir in
            let (hub, _) = try Self.makeHub(in: dir)
            let error = #expect(throws: HubError.self) { try hub.modelPath() }
            #expect(error?.description == "model tiny is not in the hub at \(hub.root.path); run `graft pull`")
        }
    }

    @Test("installedModels lists pulled catalog models as verified and other files as unverified")
    func listsInstalledModels() throws {
        try withTemporaryDirectory { dir in
            let (hub, fetcher) = try Self.makeHub(in: dir)
            #expect(hub.installedModels().isEmpty)
            let pulled = try hub.pull(fetcher: fetcher)
            let extraDir = hub.modelsDirectory.appendingPathComponent("custom")
            try FileManager.default.createDirectory(at: extraDir, withIntermediateDirectories: true)
            _ = try writeFile([1, 2, 3, 4], named: "custom.gguf", in: extraDir)
            _ = try writeFile([0], named: ".custom.gguf.123.tmp", in: extraDir)
            #expect(hub.installedModels() == [
                InstalledModel(name: "custom", path: extraDir.appendingPathComponent("custom.gguf"), size: 4, verified: false),
                InstalledModel(name: "tiny", path: pulled.path, size: UInt64(Self.content.count), verified: true),
            ])
            try FileManager.default.removeItem(at: pulled.path.appendingPathExtension("sha256"))
            #expect(hub.installedModels().last?.verified == false)
        }
    }

    @Test("the hub root comes from the flag, then GRAFT_REGISTRY, then ./Registry, relative to the current directory")
    func rootResolutionOrder() {
        let env = ["GRAFT_REGISTRY": "/srv/env-hub"]
        #expect(Hub.resolveRoot(explicit: "/srv/flag-hub", environment: env, currentDirectory: "/work").path == "/srv/flag-hub")
        #expect(Hub.resolveRoot(explicit: nil, environment: env, currentDirectory: "/work").path == "/srv/env-hub")
        #expect(Hub.resolveRoot(explicit: nil, environment: [:], currentDirectory: "/work").path == "/work/Registry")
        #expect(Hub.resolveRoot(explicit: "", environment: ["GRAFT_REGISTRY": ""], currentDirectory: "/w").path == "/w/Registry")
        #expect(Hub.resolveRoot(explicit: "hubs/../mine", environment: env, currentDirectory: "/w").path == "/w/mine")
        #expect(Hub.resolveRoot(explicit: nil, environment: ["GRAFT_REGISTRY": "rel"], currentDirectory: "/w").path == "/w/rel")
    }
}
