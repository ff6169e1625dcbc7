import AdapterFormat
import Dispatch
import Foundation
import Hub
import LlamaModel
import Synchronization
import Testing

@Suite("Publishing and resolving adapters")
struct AdapterPublishTests {
    typealias F = AdapterFixtures

    @Test("the first publish is version 1 and the next is version 2, stored as <version>.graft")
    func versionsCount() throws {
        try withTemporaryHub { hub in
            let first = try hub.publishAdapter(F.graft(seed: 1), tenant: "acme", name: "support")
            let second = try hub.publishAdapter(F.graft(seed: 2), tenant: "acme", name: "support")
            #expect(first == (try adapterID("acme/support@1")))
            #expect(second == (try adapterID("acme/support@2")))
            #expect(F.allFiles(hub.root) == ["tenants/acme/adapters/support/1.graft",
                                             "tenants/acme/adapters/support/2.graft"])
            #expect(hub.adapterVersions(tenant: "acme", name: "support") == [1, 2])
        }
    }

    @Test("publishing leaves no temporary file beside the versions")
    func noTemporaryFiles() throws {
        try withTemporaryHub { hub in
            for seed in 1...3 { try hub.publishAdapter(F.graft(seed: UInt64(seed)), tenant: "acme", name: "support") }
            #expect(F.entries(F.adapterDirectory(hub)) == ["1.graft", "2.graft", "3.graft"])
            #expect(F.entries(hub.tenantsDirectory) == ["acme"])
            #expect(F.entries(hub.tenantsDirectory.appendingPathComponent("acme")) == ["adapters"])
        }
    }

    @Test("the published file holds the given bytes and decodes to the same adapter and info")
    func roundTrip() throws {
        try withTemporaryHub { hub in
            let adapter = F.adapter(seed: 7)
            let bytes = try GraftFile.encode(adapter, info: F.info())
            let published = try hub.publishAdapter(bytes, tenant: "acme", name: "support")
            let stored = try hub.resolveAdapter(published)
            #expect(stored.size == bytes.count)
            let onDisk = try F.read(stored.url)
            #expect(onDisk == bytes)
            let (decoded, info) = try GraftFile.decode(onDisk)
            let same = decoded == adapter
            #expect(same)
            #expect(info == F.info())
        }
    }

    @Test("bytes that are not a .graft file are refused and leave nothing in the hub",
          arguments: [[UInt8](), Array("hello, not an adapter".utf8), [UInt8](repeating: 0, count: 64),
                      [8, 0, 0, 0, 0, 0, 0, 0] + Array("{\"a\": 1}".utf8)])
    func refusesGarbage(_ bytes: [UInt8]) throws {
        try withTemporaryHub { hub in
            #expect(throws: AdapterFormatError.self) { try hub.publishAdapter(bytes, tenant: "acme", name: "support") }
            #expect(F.allFiles(hub.root).isEmpty)
            #expect(!FileManager.default.fileExists(atPath: F.adapterDirectory(hub).path))
            #expect(hub.listAdapters().isEmpty)
        }
    }

    @Test("a safetensors file without Graft's metadata is refused")
    func refusesForeignHeader() throws {
        try withTemporaryHub { hub in
            let header = Array("{\"__metadata__\": {\"format\": \"pt\"}}".utf8)
            var bytes = withUnsafeBytes(of: UInt64(header.count).littleEndian) { [UInt8]($0) }
            bytes += header
            #expect(throws: AdapterFormatError.self) { try hub.publishAdapter(bytes, tenant: "acme", name: "support") }
            #expect(F.allFiles(hub.root).isEmpty)
        }
    }

    // The store promises never to keep something that does not decode; a valid header in
    // front of missing or damaged tensor data does not decode.
    @Test("a .graft file cut short after its header is refused and leaves nothing")
    func refusesTruncatedData() throws {
        try withTemporaryHub { hub in
            let whole = try F.graft(seed: 3)
            let cut = Array(whole.dropLast(100))
            #expect(throws: AdapterFormatError.self) { try GraftFile.decode(cut) }
            #expect(throws: AdapterFormatError.self) { try hub.publishAdapter(cut, tenant: "acme", name: "support") }
            #expect(F.allFiles(hub.root).isEmpty)
        }
    }

    @Test("a .graft file with a damaged tensor is refused and leaves nothing")
    func refusesDamagedData() throws {
        try withTemporaryHub { hub in
            var damaged = try F.graft(seed: 3)
            damaged[damaged.count - 5] ^= 0xFF
            #expect(throws: AdapterFormatError.self) { try GraftFile.decode(damaged) }
            #expect(throws: AdapterFormatError.self) { try hub.publishAdapter(damaged, tenant: "acme", name: "support") }
            #expect(F.allFiles(hub.root).isEmpty)
        }
    }

    @Test("an invalid tenant or name is refused before anything is written")
    func refusesInvalidNames() throws {
        try withTemporaryHub { hub in
            let bytes = try F.graft(seed: 1)
            for (tenant, name) in [("..", "x"), ("acme", "../../escape"), ("acme", ".hidden"), ("", "x"), ("acme", "a b")] {
                #expect(throws: AdapterStoreError.self) { try hub.publishAdapter(bytes, tenant: tenant, name: name) }
            }
            #expect(F.allFiles(hub.root.deletingLastPathComponent()).isEmpty)
        }
    }

    @Test("publishing again never changes the bytes of an existing version")
    func versionsAreImmutable() throws {
        try withTemporaryHub { hub in
            let v1 = try F.graft(seed: 1)
            try hub.publishAdapter(v1, tenant: "acme", name: "support")
            let url1 = try hub.resolveAdapter(adapterID("acme/support@1")).url
            let before = try F.read(url1)
            let inode = try FileManager.default.attributesOfItem(atPath: url1.path)[.systemFileNumber] as? Int
            for seed in 2...4 { try hub.publishAdapter(F.graft(seed: UInt64(seed)), tenant: "acme", name: "support") }
            // Same bytes again make a new version too, not a no-op on the old one.
            let again = try hub.publishAdapter(v1, tenant: "acme", name: "support")
            #expect(again.version == 5)
            #expect(try F.read(url1) == before)
            #expect(before == v1)
            #expect(try FileManager.default.attributesOfItem(atPath: url1.path)[.systemFileNumber] as? Int == inode)
            for v in 2...4 {
                let stored = try hub.resolveAdapter(adapterID("acme/support@\(v)"))
                #expect(try F.read(stored.url) == F.graft(seed: UInt64(v)))
            }
        }
    }

    @Test("concurrent publishes from 8 threads get distinct versions 1...40 and lose no write")
    func concurrentPublishes() throws {
        try withTemporaryHub { hub in
            let payloads = try (0..<40).map { try F.graft(seed: 100 + UInt64($0)) }
            let results = Mutex<[(payload: Int, version: Int)]>([])
            let failures = Mutex<[String]>([])
            DispatchQueue.concurrentPerform(iterations: 8) { thread in
                for k in 0..<5 {
                    let index = thread * 5 + k
                    do {
                        let published = try hub.publishAdapter(payloads[index], tenant: "acme", name: "support")
                        results.withLock { $0.append((index, published.version ?? -1)) }
                    } catch {
                        failures.withLock { $0.append("\(error)") }
                    }
                }
            }
            #expect(failures.withLock { $0 }.isEmpty)
            let all = results.withLock { $0 }
            #expect(all.map(\.version).sorted() == Array(1...40))
            #expect(Set(all.map(\.payload)).count == 40)
            #expect(hub.adapterVersions(tenant: "acme", name: "support") == Array(1...40))
            for (payload, version) in all {
                let stored = try hub.resolveAdapter(adapterID("acme/support@\(version)"))
                #expect(try F.read(stored.url) == payloads[payload], "version \(version)")
            }
            #expect(F.entries(F.adapterDirectory(hub)).allSatisfy { !$0.hasPrefix(".") })
        }
    }

    @Test("resolving without a version gives the newest; with one gives exactly that version")
    func resolvesVersions() throws {
        try withTemporaryHub { hub in
            for seed in 1...3 { try hub.publishAdapter(F.graft(seed: UInt64(seed)), tenant: "acme", name: "support") }
            let newest = try hub.resolveAdapter(adapterID("acme/support"))
            #expect(newest.id == (try adapterID("acme/support@3")))
            #expect(newest.url.lastPathComponent == "3.graft")
            #expect(try F.read(newest.url) == F.graft(seed: 3))
            let second = try hub.resolveAdapter(adapterID("acme/support@2"))
            #expect(second.id.version == 2)
            #expect(second.url == F.adapterDirectory(hub).appendingPathComponent("2.graft"))
            #expect(second.size == (try F.graft(seed: 2)).count)
        }
    }

    @Test("a missing version is notFound and lists the versions there are")
    func missingVersion() throws {
        try withTemporaryHub { hub in
            for seed in 1...2 { try hub.publishAdapter(F.graft(seed: UInt64(seed)), tenant: "acme", name: "support") }
            let error = #expect(throws: AdapterStoreError.self) { try hub.resolveAdapter(adapterID("acme/support@7")) }
            #expect(error == .notFound("acme/support@7 (versions: 1, 2)"))
            #expect(error?.description == "no adapter acme/support@7 (versions: 1, 2) in the hub")
        }
    }

    @Test("an unknown adapter is notFound, with or without a version")
    func unknownAdapter() throws {
        try withTemporaryHub { hub in
            try hub.publishAdapter(F.graft(seed: 1), tenant: "acme", name: "support")
            for text in ["acme/other", "acme/other@1", "globex/support"] {
                let error = #expect(throws: AdapterStoreError.self) { try hub.resolveAdapter(adapterID(text)) }
                #expect(error == .notFound(text))
            }
        }
    }

    @Test("resolving another tenant's adapter is refused with otherTenant, even when it exists")
    func resolveOtherTenant() throws {
        try withTemporaryHub { hub in
            try hub.publishAdapter(F.graft(seed: 1), tenant: "acme", name: "support")
            for text in ["acme/support", "acme/support@1", "acme/missing"] {
                let error = #expect(throws: AdapterStoreError.self) {
                    try hub.resolveAdapter(adapterID(text), as: "other")
                }
                #expect(error == .otherTenant(id: text, tenant: "other"))
            }
            #expect(try hub.resolveAdapter(adapterID("acme/support"), as: "acme").id.version == 1)
        }
    }
}

@Suite("Publishing checks the file's own identity")
struct AdapterIdentityTests {
    typealias F = AdapterFixtures

    @Test("a file made for another tenant or name is refused and leaves nothing")
    func identityMismatch() throws {
        try withTemporaryHub { hub in
            #expect(throws: AdapterStoreError.self) {
                try hub.publishAdapter(F.graft(seed: 1, tenant: "initech"), tenant: "acme", name: "support")
            }
            #expect(throws: AdapterStoreError.self) {
                try hub.publishAdapter(F.graft(seed: 1, name: "other"), tenant: "acme", name: "support")
            }
            #expect(F.allFiles(hub.root).isEmpty)
        }
    }

    @Test("version text must be a plain number")
    func canonicalVersions() {
        for text in ["acme/a@03", "acme/a@+3", "acme/a@ 3"] {
            #expect(throws: AdapterStoreError.self) { try AdapterID(parsing: text) }
        }
    }
}
