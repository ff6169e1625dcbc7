import Foundation
import Hub
import Testing

@Suite("Listing and deleting adapters, and crash leftovers")
struct AdapterListDeleteTests {
    typealias F = AdapterFixtures

    static func publish(_ hub: Hub, _ tenant: String, _ name: String, count: Int = 1, seed: UInt64 = 1) throws {
        for k in 0..<count {
            try hub.publishAdapter(F.graft(seed: seed + UInt64(k), tenant: tenant, name: name), tenant: tenant, name: name)
        }
    }

    static func listed(_ stored: [StoredAdapter]) -> [String] { stored.map(\.id.description) }

    @Test("listing covers every tenant, sorted by tenant, name and version")
    func listsAcrossTenants() throws {
        try withTemporaryHub { hub in
            #expect(hub.listAdapters().isEmpty)
            try Self.publish(hub, "globex", "tone", count: 1)
            try Self.publish(hub, "acme", "zeta", count: 2)
            try Self.publish(hub, "acme", "alpha", count: 1)
            try Self.publish(hub, "acme", "support", count: 3)
            let all = hub.listAdapters()
            #expect(Self.listed(all) == ["acme/alpha@1", "acme/support@1", "acme/support@2", "acme/support@3",
                                         "acme/zeta@1", "acme/zeta@2", "globex/tone@1"])
            for stored in all {
                #expect(stored.size > 0)
                #expect(stored.size == (try? FileManager.default.attributesOfItem(atPath: stored.url.path)[.size] as? Int))
            }
        }
    }

    @Test("versions are listed in numeric order, 10 after 9")
    func numericVersionOrder() throws {
        try withTemporaryHub { hub in
            try Self.publish(hub, "acme", "support", count: 11)
            #expect(hub.adapterVersions(tenant: "acme", name: "support") == Array(1...11))
            #expect(hub.listAdapters().compactMap(\.id.version) == Array(1...11))
        }
    }

    @Test("listing by tenant shows only that tenant's adapters")
    func listsOneTenant() throws {
        try withTemporaryHub { hub in
            try Self.publish(hub, "acme", "support", count: 2)
            try Self.publish(hub, "globex", "support", count: 1)
            #expect(Self.listed(hub.listAdapters(tenant: "acme")) == ["acme/support@1", "acme/support@2"])
            #expect(Self.listed(hub.listAdapters(tenant: "globex")) == ["globex/support@1"])
            #expect(hub.listAdapters(tenant: "initech").isEmpty)
            #expect(hub.listAdapters(tenant: "..").isEmpty)
            #expect(hub.listAdapters(tenant: "acme/adapters").isEmpty)
        }
    }

    @Test("stray files and directories with invalid names are ignored by listing and versioning")
    func ignoresStrays() throws {
        try withTemporaryHub { hub in
            try Self.publish(hub, "acme", "support", count: 2)
            let fm = FileManager.default
            let dir = F.adapterDirectory(hub)
            for name in [".2.graft.k3x9.tmp", "notes.txt", "latest.graft", "0.graft", "-1.graft", "3.graft.bak", "3"] {
                try Data("junk".utf8).write(to: dir.appendingPathComponent(name))
            }
            let adapters = hub.tenantsDirectory.appendingPathComponent("acme/adapters")
            for bad in [".hidden", "bad name", "_x"] {
                let d = adapters.appendingPathComponent(bad)
                try fm.createDirectory(at: d, withIntermediateDirectories: true)
                try Data("junk".utf8).write(to: d.appendingPathComponent("1.graft"))
            }
            try Data("junk".utf8).write(to: adapters.appendingPathComponent("stray.txt"))
            let badTenant = hub.tenantsDirectory.appendingPathComponent(".trash/adapters/x")
            try fm.createDirectory(at: badTenant, withIntermediateDirectories: true)
            try Data("junk".utf8).write(to: badTenant.appendingPathComponent("1.graft"))
            try Data("junk".utf8).write(to: hub.tenantsDirectory.appendingPathComponent("README"))

            #expect(Self.listed(hub.listAdapters()) == ["acme/support@1", "acme/support@2"])
            #expect(Self.listed(hub.listAdapters(tenant: "acme")) == ["acme/support@1", "acme/support@2"])
            #expect(hub.adapterVersions(tenant: "acme", name: "support") == [1, 2])
            #expect(try hub.resolveAdapter(adapterID("acme/support")).id.version == 2)
            #expect(try hub.publishAdapter(F.graft(seed: 9), tenant: "acme", name: "support").version == 3)
        }
    }

    // A version's file is exactly "<version>.graft"; any other spelling of the number is a
    // stray, or one version would be listed twice and resolved to a file that is not there.
    @Test("a zero-padded or signed version file is a stray, not a second copy of a version")
    func ignoresNonCanonicalVersionFiles() throws {
        try withTemporaryHub { hub in
            try Self.publish(hub, "acme", "support", count: 1)
            let dir = F.adapterDirectory(hub)
            for name in ["01.graft", "+1.graft", "007.graft"] {
                try Data("junk".utf8).write(to: dir.appendingPathComponent(name))
            }
            #expect(hub.adapterVersions(tenant: "acme", name: "support") == [1])
            #expect(Self.listed(hub.listAdapters()) == ["acme/support@1"])
            #expect(try hub.publishAdapter(F.graft(seed: 2), tenant: "acme", name: "support").version == 2)
        }
    }

    @Test("deleting one version keeps the others; deleted numbers are never issued again")
    func deletesVersions() throws {
        try withTemporaryHub { hub in
            try Self.publish(hub, "acme", "support", count: 3)
            try Self.publish(hub, "acme", "other", count: 1)
            let deleted = try hub.deleteAdapter(adapterID("acme/support@2"))
            #expect(deleted == [try adapterID("acme/support@2")])
            #expect(hub.adapterVersions(tenant: "acme", name: "support") == [1, 3])
            #expect(F.entries(F.adapterDirectory(hub)) == ["1.graft", "2.deleted", "3.graft"])
            #expect(throws: AdapterStoreError.self) { try hub.resolveAdapter(adapterID("acme/support@2")) }

            let rest = try hub.deleteAdapter(adapterID("acme/support"))
            #expect(rest == [try adapterID("acme/support@1"), try adapterID("acme/support@3")])
            #expect(hub.adapterVersions(tenant: "acme", name: "support").isEmpty)
            #expect(Self.listed(hub.listAdapters()) == ["acme/other@1"])
            let next = try hub.publishAdapter(F.graft(seed: 9), tenant: "acme", name: "support")
            #expect(next.version == 4)
        }
    }

    @Test("deleting each version one by one leaves only markers, and listing shows nothing")
    func deletesLastSingleVersion() throws {
        try withTemporaryHub { hub in
            try Self.publish(hub, "acme", "support", count: 2)
            try hub.deleteAdapter(adapterID("acme/support@1"))
            try hub.deleteAdapter(adapterID("acme/support@2"))
            #expect(F.entries(F.adapterDirectory(hub)) == ["1.deleted", "2.deleted"])
            #expect(hub.listAdapters().isEmpty)
            #expect(throws: AdapterStoreError.notFound("acme/support")) { try hub.resolveAdapter(adapterID("acme/support")) }
        }
    }

    @Test("deleting a missing version or adapter is notFound and deletes nothing")
    func deleteMissing() throws {
        try withTemporaryHub { hub in
            try Self.publish(hub, "acme", "support", count: 2)
            let before = F.allFiles(hub.root)
            for text in ["acme/support@3", "acme/nothing", "acme/nothing@1", "globex/support"] {
                let error = #expect(throws: AdapterStoreError.self) { try hub.deleteAdapter(adapterID(text)) }
                #expect(error == .notFound(text))
            }
            #expect(F.allFiles(hub.root) == before)
            #expect(hub.adapterVersions(tenant: "acme", name: "support") == [1, 2])
        }
    }

    @Test("deleting another tenant's adapter is refused with otherTenant and deletes nothing")
    func deleteOtherTenant() throws {
        try withTemporaryHub { hub in
            try Self.publish(hub, "acme", "support", count: 2)
            let before = F.allFiles(hub.root)
            for text in ["acme/support", "acme/support@1"] {
                let error = #expect(throws: AdapterStoreError.self) { try hub.deleteAdapter(adapterID(text), as: "other") }
                #expect(error == .otherTenant(id: text, tenant: "other"))
            }
            #expect(F.allFiles(hub.root) == before)
            #expect(try hub.deleteAdapter(adapterID("acme/support@1"), as: "acme") == [adapterID("acme/support@1")])
        }
    }

    /// Leaves what an interrupted `AtomicFile.write` of `version` would: a hidden,
    /// partly written temporary file next to where the version would go.
    static func leaveCrashedWrite(_ hub: Hub, version: Int) throws -> URL {
        let dir = F.adapterDirectory(hub)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let partial = Array(try F.graft(seed: 99).prefix(300))
        let url = dir.appendingPathComponent(".\(version).graft.\(String(UInt64.random(in: 0...UInt64.max), radix: 36)).tmp")
        try Data(partial).write(to: url)
        return url
    }

    @Test("a temporary file left by a crash before any version is neither listed nor resolved, and publish still works")
    func crashBeforeFirstVersion() throws {
        try withTemporaryHub { hub in
            let leftover = try Self.leaveCrashedWrite(hub, version: 1)
            #expect(hub.listAdapters().isEmpty)
            #expect(hub.adapterVersions(tenant: "acme", name: "support").isEmpty)
            let error = #expect(throws: AdapterStoreError.self) { try hub.resolveAdapter(adapterID("acme/support")) }
            #expect(error == .notFound("acme/support"))
            #expect(throws: AdapterStoreError.self) { try hub.resolveAdapter(adapterID("acme/support@1")) }

            let published = try hub.publishAdapter(F.graft(seed: 1), tenant: "acme", name: "support")
            #expect(published.version == 1)
            #expect(try F.read(hub.resolveAdapter(adapterID("acme/support")).url) == F.graft(seed: 1))
            #expect(Self.listed(hub.listAdapters()) == ["acme/support@1"])
            #expect(FileManager.default.fileExists(atPath: leftover.path))
        }
    }

    @Test("a temporary file left by a crash after version 1 does not hide it or take version 2")
    func crashAfterFirstVersion() throws {
        try withTemporaryHub { hub in
            try Self.publish(hub, "acme", "support", count: 1)
            _ = try Self.leaveCrashedWrite(hub, version: 2)
            #expect(Self.listed(hub.listAdapters()) == ["acme/support@1"])
            #expect(try hub.resolveAdapter(adapterID("acme/support")).id.version == 1)
            let error = #expect(throws: AdapterStoreError.self) { try hub.resolveAdapter(adapterID("acme/support@2")) }
            #expect(error == .notFound("acme/support@2 (versions: 1)"))
            #expect(try hub.publishAdapter(F.graft(seed: 2), tenant: "acme", name: "support").version == 2)
            #expect(try F.read(hub.resolveAdapter(adapterID("acme/support@2")).url) == F.graft(seed: 2))
        }
    }

    @Test("deleting every version of an adapter with a crash leftover keeps the leftover and the directory")
    func deleteWithLeftover() throws {
        try withTemporaryHub { hub in
            try Self.publish(hub, "acme", "support", count: 1)
            let leftover = try Self.leaveCrashedWrite(hub, version: 2)
            #expect(try hub.deleteAdapter(adapterID("acme/support")) == [adapterID("acme/support@1")])
            #expect(F.entries(F.adapterDirectory(hub)) == [leftover.lastPathComponent, "1.deleted"])
            #expect(hub.listAdapters().isEmpty)
        }
    }
}
