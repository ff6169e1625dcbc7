import Foundation
import Hub
import Testing

@Suite("the built-in catalog")
struct BuiltInCatalogTests {
    @Test("equals the repository's Registry/catalog.json")
    func matchesRepository() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Registry/catalog.json")
        #expect(try Catalog.load(from: url) == Catalog.builtIn)
    }

    @Test("a hub directory without a catalog uses the built-in one")
    func newHub() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("graft-newhub-\(UInt32.random(in: 0...UInt32.max))")
        defer { try? FileManager.default.removeItem(at: root) }
        let hub = Hub(root: root)
        #expect(try hub.catalog() == Catalog.builtIn)
        #expect(throws: HubError.self) { try hub.modelPath() }
    }
}
