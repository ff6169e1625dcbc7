import AdapterFormat
import Foundation
import Hub
import LlamaModel
import Synchronization
import Testing

/// The hub and the adapter cache under concurrent use: check-then-act races answer with the
/// right error, and a missed adapter is read once however many requests want it.
@Suite("Hub and adapter cache under concurrency")
struct ConcurrencyTests {
    typealias F = AdapterFixtures

    @Test("eight concurrent loads of an uncached adapter read its file once and share one prepared copy")
    func singleFlightLoad() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("graft-flight-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let hub = Hub(root: dir)
        try hub.publishAdapter(F.graft(seed: 1), tenant: "acme", name: "support")
        let loader = AdapterLoader(hub: hub, config: F.config, baseModelSHA256: F.baseSHA)
        let id = try adapterID("acme/support")
        let loaded = try await withThrowingTaskGroup(of: AdapterLoader.Loaded.self) { group in
            for _ in 0..<8 { group.addTask { try await loader.load(id) } }
            var all: [AdapterLoader.Loaded] = []
            for try await l in group { all.append(l) }
            return all
        }
        #expect(loader.counts.reads == 1)
        #expect(loaded.allSatisfy { $0.adapter === loaded[0].adapter })
        #expect(loaded.filter { !$0.cached }.count == 1)
    }

    @Test("concurrent loads of different uncached adapters are read one after another, each its own")
    func differentAdaptersReadInTurn() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("graft-turns-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let hub = Hub(root: dir)
        for i in 0..<8 { try hub.publishAdapter(F.graft(seed: UInt64(i + 1), name: "a\(i)"), tenant: "acme", name: "a\(i)") }
        let loader = AdapterLoader(hub: hub, config: F.config, baseModelSHA256: F.baseSHA)
        let loaded = try await withThrowingTaskGroup(of: (Int, AdapterLoader.Loaded).self) { group in
            for i in 0..<8 { group.addTask { (i, try await loader.load(adapterID("acme/a\(i)"))) } }
            var all: [(Int, AdapterLoader.Loaded)] = []
            for try await l in group { all.append(l) }
            return all
        }
        #expect(loader.counts.reads == 8)
        #expect(loader.mostReadsAtOnce == 1)
        #expect(loaded.allSatisfy { F.holds($0.1, seed: UInt64($0.0 + 1)) && !$0.1.cached })
    }

    @Test("two deletes of the same version: one deletes it, the other finds it gone (not an I/O error)")
    func doubleDelete() throws {
        try withTemporaryHub { hub in
            try hub.publishAdapter(F.graft(seed: 1), tenant: "acme", name: "support")
            let id = try adapterID("acme/support@1")
            let outcomes = Mutex<[String]>([])
            DispatchQueue.concurrentPerform(iterations: 2) { _ in
                let outcome: String
                do { _ = try hub.deleteAdapter(id); outcome = "deleted" } catch AdapterStoreError.notFound { outcome = "notFound" } catch {
                    outcome = "\(error)"
                }
                outcomes.withLock { $0.append(outcome) }
            }
            #expect(outcomes.withLock { $0.sorted() } == ["deleted", "notFound"])
            #expect(hub.adapterVersions(tenant: "acme", name: "support").isEmpty)
        }
    }

    @Test("a file deleted between resolving its id and reading it gives notFound")
    func deletedBetweenResolveAndRead() throws {
        try withTemporaryHub { hub in
            try hub.publishAdapter(F.graft(seed: 1), tenant: "acme", name: "support")
            let stored = try hub.resolveAdapter(adapterID("acme/support"))
            try FileManager.default.removeItem(at: stored.url)
            let loader = AdapterLoader(hub: hub, config: F.config, baseModelSHA256: nil)
            #expect(throws: AdapterStoreError.notFound("acme/support@1")) { try loader.load(resolved: stored) }
        }
    }
}
