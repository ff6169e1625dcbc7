import AdapterFormat
import Foundation
import Hub
import LlamaModel
import Testing

@Suite("Loading adapters through the cache")
struct AdapterLoaderTests {
    typealias F = AdapterFixtures

    static func loader(_ hub: Hub, budget: Int = 256 << 20, sha: String? = F.baseSHA) -> AdapterLoader {
        AdapterLoader(hub: hub, config: F.config, baseModelSHA256: sha, budgetBytes: budget)
    }

    /// What one fixture adapter takes in memory once prepared.
    static var adapterBytes: Int { get throws { try PreparedAdapter(F.adapter(seed: 1), config: F.config).byteCount } }

    @Test("the first load comes from disk, the second from memory as the same prepared adapter")
    func coldThenWarm() throws {
        try withTemporaryHub { hub in
            try hub.publishAdapter(F.graft(seed: 1), tenant: "acme", name: "support")
            let loader = Self.loader(hub)
            #expect(loader.cachedCount == 0)
            let cold = try loader.load(adapterID("acme/support"))
            #expect(!cold.cached)
            #expect(cold.id == (try adapterID("acme/support@1")))
            #expect(F.holds(cold, seed: 1))
            #expect(cold.info == F.info())
            #expect(loader.cachedCount == 1)
            #expect(loader.cachedBytes == cold.adapter.byteCount)

            let warm = try loader.load(adapterID("acme/support@1"))
            #expect(warm.cached)
            #expect(warm.adapter === cold.adapter)
            #expect(warm.id == cold.id)
            #expect(warm.info == cold.info)
            #expect(loader.cachedCount == 1)
            #expect(loader.cachedBytes == cold.adapter.byteCount)
        }
    }

    @Test("prepared sizes count rank x (in + out) halves per target")
    func byteCountOfFixture() throws {
        let c = F.config
        let perLayer = 2 * (c.dim + c.dim) + 2 * (c.dim + c.kvDim) + 2 * (c.ffnDim + c.dim)
        #expect(try Self.adapterBytes == c.layers * perLayer * 2)
    }

    @Test("a new version is loaded on its own while the old one stays cached and unchanged")
    func newVersionLoadsSeparately() throws {
        try withTemporaryHub { hub in
            try hub.publishAdapter(F.graft(seed: 1), tenant: "acme", name: "support")
            let loader = Self.loader(hub)
            // A sequence resolves its adapter once and keeps it.
            let inFlight = try loader.load(adapterID("acme/support"))

            try hub.publishAdapter(F.graft(seed: 2), tenant: "acme", name: "support")
            let newer = try loader.load(adapterID("acme/support"))
            #expect(!newer.cached)
            #expect(newer.id.version == 2)
            #expect(newer.adapter !== inFlight.adapter)
            #expect(F.holds(newer, seed: 2))

            #expect(inFlight.id.version == 1)
            #expect(F.holds(inFlight, seed: 1))  // unchanged
            let old = try loader.load(adapterID("acme/support@1"))
            #expect(old.cached)
            #expect(old.adapter === inFlight.adapter)
            #expect(loader.cachedCount == 2)
        }
    }

    @Test("the byte budget evicts the least recently used adapter")
    func evictsLeastRecentlyUsed() throws {
        try withTemporaryHub { hub in
            for name in ["a", "b", "c"] {
                try hub.publishAdapter(F.graft(seed: UInt64(name.unicodeScalars.first!.value), name: name),
                                       tenant: "acme", name: name)
            }
            let size = try Self.adapterBytes
            let loader = Self.loader(hub, budget: 2 * size + size / 2)
            #expect(try !loader.load(adapterID("acme/a")).cached)
            #expect(try !loader.load(adapterID("acme/b")).cached)
            #expect(loader.cachedCount == 2)
            #expect(loader.cachedBytes == 2 * size)

            #expect(try !loader.load(adapterID("acme/c")).cached)  // a is the oldest: out
            #expect(loader.cachedCount == 2)
            #expect(loader.cachedBytes == 2 * size)
            #expect(try loader.load(adapterID("acme/c")).cached)
            #expect(try loader.load(adapterID("acme/b")).cached)
            #expect(try !loader.load(adapterID("acme/a")).cached)  // cold again; c was used before b: out
            #expect(loader.cachedCount == 2)
            #expect(loader.cachedBytes == 2 * size)
            #expect(try loader.load(adapterID("acme/b")).cached)
            #expect(try !loader.load(adapterID("acme/c")).cached)
        }
    }

    @Test("a recent hit protects an entry from eviction, unlike first-in first-out")
    func hitRefreshesRecency() throws {
        try withTemporaryHub { hub in
            for name in ["a", "b", "c"] {
                try hub.publishAdapter(F.graft(seed: UInt64(name.count) + 40, name: name), tenant: "acme", name: name)
            }
            let size = try Self.adapterBytes
            let loader = Self.loader(hub, budget: 2 * size + size / 2)
            let a = try loader.load(adapterID("acme/a"))
            _ = try loader.load(adapterID("acme/b"))
            let hit = try loader.load(adapterID("acme/a"))
            #expect(hit.cached && hit.adapter === a.adapter)
            _ = try loader.load(adapterID("acme/c"))  // b is now the least recently used
            let again = try loader.load(adapterID("acme/a"))
            #expect(again.cached)
            #expect(again.adapter === a.adapter)
            #expect(try !loader.load(adapterID("acme/b")).cached)
        }
    }

    @Test("an adapter larger than the whole budget is still served and is the only one kept")
    func oversizedAdapter() throws {
        try withTemporaryHub { hub in
            try hub.publishAdapter(F.graft(seed: 1, name: "a"), tenant: "acme", name: "a")
            try hub.publishAdapter(F.graft(seed: 2, name: "b"), tenant: "acme", name: "b")
            let size = try Self.adapterBytes
            let loader = Self.loader(hub, budget: size / 2)
            #expect(try !loader.load(adapterID("acme/a")).cached)
            #expect(loader.cachedCount == 1)
            let b = try loader.load(adapterID("acme/b"))
            #expect(!b.cached)
            #expect(F.holds(b, seed: 2))
            #expect(loader.cachedCount == 1)
            #expect(loader.cachedBytes == size)
            #expect(try loader.load(adapterID("acme/b")).cached)
        }
    }

    @Test("an adapter made for another base model is refused with both digests, and not cached")
    func baseModelMismatch() throws {
        try withTemporaryHub { hub in
            try hub.publishAdapter(F.graft(seed: 1, sha: F.otherSHA), tenant: "acme", name: "support")
            let loader = Self.loader(hub, sha: F.baseSHA)
            let error = #expect(throws: AdapterError.self) { try loader.load(adapterID("acme/support")) }
            guard case .wrongBase(let message)? = error else {
                Issue.record("expected AdapterError.wrongBase, got \(String(describing: error))")
                return
            }
            #expect(message.contains("acme/support@1"))
            #expect(message.contains("tiny-llama"))
            #expect(message.contains(String(F.otherSHA.prefix(12))))
            #expect(message.contains(String(F.baseSHA.prefix(12))))
            #expect(loader.cachedCount == 0)
            #expect(loader.cachedBytes == 0)
        }
    }

    @Test("an adapter is accepted when the loaded base's digest is unknown or the adapter records none")
    func digestOptional() throws {
        try withTemporaryHub { hub in
            try hub.publishAdapter(F.graft(seed: 1, name: "a", sha: F.otherSHA), tenant: "acme", name: "a")
            try hub.publishAdapter(F.graft(seed: 2, name: "b", sha: ""), tenant: "acme", name: "b")
            #expect(try !Self.loader(hub, sha: nil).load(adapterID("acme/a")).cached)
            #expect(try !Self.loader(hub, sha: F.baseSHA).load(adapterID("acme/b")).cached)
            #expect(try F.holds(Self.loader(hub, sha: F.otherSHA).load(adapterID("acme/a")), seed: 1))
        }
    }

    @Test("an adapter whose shapes do not fit the model is refused with shapeMismatch, and not cached")
    func shapeMismatch() throws {
        try withTemporaryHub { hub in
            let wider = LlamaConfig(layers: 2, dim: 96, ffnDim: 96, heads: 4, kvHeads: 2, vocabularySize: 300,
                                    contextLength: 64, ropeBase: 10000, normEps: 1e-5)
            try hub.publishAdapter(F.graft(seed: 1, name: "wide", config: wider), tenant: "acme", name: "wide")
            let deeper = LlamaConfig(layers: 3, dim: 64, ffnDim: 96, heads: 4, kvHeads: 2, vocabularySize: 300,
                                     contextLength: 64, ropeBase: 10000, normEps: 1e-5)
            try hub.publishAdapter(F.graft(seed: 1, name: "deep", config: deeper), tenant: "acme", name: "deep")
            let loader = Self.loader(hub)
            for name in ["wide", "deep"] {
                let error = #expect(throws: AdapterError.self) { try loader.load(adapterID("acme/\(name)")) }
                guard case .shapeMismatch(let target, let detail)? = error else {
                    Issue.record("expected shapeMismatch for \(name), got \(String(describing: error))")
                    continue
                }
                #expect(target.hasPrefix("layers."))
                #expect(detail.contains("maybe the wrong base model?"))
            }
            #expect(loader.cachedCount == 0)
        }
    }

    @Test("loading as another tenant is refused with otherTenant")
    func loadOtherTenant() throws {
        try withTemporaryHub { hub in
            try hub.publishAdapter(F.graft(seed: 1), tenant: "acme", name: "support")
            let loader = Self.loader(hub)
            let error = #expect(throws: AdapterStoreError.self) { try loader.load(adapterID("acme/support"), as: "other") }
            #expect(error == .otherTenant(id: "acme/support", tenant: "other"))
            #expect(loader.cachedCount == 0)
            #expect(try !loader.load(adapterID("acme/support"), as: "acme").cached)
        }
    }

    @Test("a deleted version is no longer served from the cache")
    func deletedVersionNotServed() throws {
        try withTemporaryHub { hub in
            try hub.publishAdapter(F.graft(seed: 1), tenant: "acme", name: "support")
            let loader = Self.loader(hub)
            _ = try loader.load(adapterID("acme/support@1"))
            try hub.deleteAdapter(adapterID("acme/support@1"))
            #expect(throws: AdapterStoreError.self) { try loader.load(adapterID("acme/support@1")) }
        }
    }

    // Deleting an adapter and publishing a new one under the same name must not make the
    // loader serve the deleted weights: either the store never reuses a version number, or
    // the cache notices that the file behind a version changed.
    @Test("after delete and publish under the same name, the loader serves the new adapter")
    func republishAfterDeleteServesNewWeights() throws {
        try withTemporaryHub { hub in
            try hub.publishAdapter(F.graft(seed: 1), tenant: "acme", name: "support")
            let loader = Self.loader(hub)
            #expect(try F.holds(loader.load(adapterID("acme/support")), seed: 1))
            try hub.deleteAdapter(adapterID("acme/support"))
            try hub.publishAdapter(F.graft(seed: 2), tenant: "acme", name: "support")
            let loaded = try loader.load(adapterID("acme/support"))
            #expect(F.holds(loaded, seed: 2), "the deleted version 1 was served instead of the new one")
            #expect(!loaded.cached)
            #expect(loaded.id.version == 2, "a deleted version's number is not issued again")
            #expect(throws: AdapterStoreError.self) { try loader.load(adapterID("acme/support@1")) }
            #expect(try loader.load(adapterID("acme/support")).cached)
        }
    }
}
