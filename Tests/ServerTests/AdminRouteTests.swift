import AdapterFormat
import Foundation
import Hub
import Hummingbird
import HummingbirdTesting
import LlamaModel
import Server
import TestSupport
import Testing

@Suite("Tenants, keys, isolation and adapter administration", .serialized)
struct AdminRouteTests {
    @Test("with tenants, keys are required, a tenant sees only its own adapters (others are 404) and admin routes need an admin")
    func isolation() async throws {
        let h = try Harness()
        let tenants = TenantStore(hub: h.hub)
        let admin = try tenants.add("ops", admin: true)
        let acme = try tenants.add("acme")
        let globex = try tenants.add("globex")
        try h.publish("acme", "support", seed: 1)
        try h.publish("globex", "secret", seed: 2)
        #expect(!(try String(contentsOf: tenants.url, encoding: .utf8)).contains(acme), "keys are stored only as hashes")
        try await h.test { client in
            let ask: [String: Any] = ["model": "acme/support", "prompt": "hi", "max_tokens": 2]
            #expect(try await client.post("/v1/completions", ask).status == .unauthorized)
            #expect(try await client.post("/v1/completions", ask, headers: bearer("gft-wrong")).status == .unauthorized)
            #expect(try await client.post("/v1/completions", ask, headers: bearer(acme)).status == .ok)
            let foreign = try await client.post("/v1/completions", ask, headers: bearer(globex))
            #expect(foreign.status == .notFound, "another tenant's adapter reads as missing, not forbidden")
            #expect(try await client.get("/v1/adapters/acme/support", headers: bearer(globex)).status == .notFound)
            let own = try await client.get("/v1/adapters", headers: bearer(globex))
            #expect((own.json["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == ["globex/secret@1"])
            let models = try await client.get("/v1/models", headers: bearer(acme))
            #expect((models.json["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == ["tiny", "acme/support"])
            #expect(try await client.get("/v1/tenants", headers: bearer(acme)).status == .forbidden)
            let list = try await client.get("/v1/tenants", headers: bearer(admin))
            #expect((list.json["data"] as? [[String: Any]])?.count == 3)
            #expect(!list.text.contains("key"), "no key or hash is ever listed")
            // Rotation: the old key stops working at once.
            let rotated = try await client.execute(uri: "/v1/tenants/acme/keys", method: .post, headers: bearer(admin))
            let newKey = try #require(rotated.json["key"] as? String)
            #expect(try await client.post("/v1/completions", ask, headers: bearer(acme)).status == .unauthorized)
            #expect(try await client.post("/v1/completions", ask, headers: bearer(newKey)).status == .ok)
            let made = try await client.post("/v1/tenants", ["name": "initech"], headers: bearer(admin))
            #expect(made.status == .created)
            #expect((made.json["key"] as? String)?.hasPrefix("gft-") == true)
            #expect(try await client.post("/v1/tenants", ["name": "initech"], headers: bearer(admin)).status == .conflict)
            #expect(try await client.post("/v1/tenants", ["name": "../x"], headers: bearer(admin)).status == .badRequest)
            #expect(try await client.execute(uri: "/v1/tenants/initech", method: .delete, headers: bearer(admin)).status == .ok)
            #expect(try await client.execute(uri: "/v1/tenants/initech", method: .delete, headers: bearer(admin)).status == .notFound)
        }
    }

    @Test("adapters: show, merge, import a PEFT upload, export as a tar of PEFT files, delete; a deleted id is 404")
    func adapterAdministration() async throws {
        let h = try Harness()
        try h.publish("default", "a", seed: 1)
        try h.publish("default", "b", seed: 2)
        let config = Harness.model.config
        let peft = try PEFTAdapter.encode(randomAdapter(config, rank: 2, seed: 3), config: config, baseModelName: "tiny")
        try await h.test { client in
            let shown = try await client.get("/v1/adapters/default/a")
            #expect(shown.json["rank"] as? Int == 4)
            #expect(shown.json["versions"] as? [Int] == [1])
            let merged = try await client.post("/v1/adapters/merge", ["into": "ab", "method": "linear", "inputs": ["a:0.5", "default/b:0.5"]])
            #expect(merged.status == .created, "\(merged.text)")
            #expect(merged.json["id"] as? String == "default/ab@1")
            let unknown = try await client.post("/v1/adapters/merge", ["into": "x", "method": "magic", "inputs": ["a"]])
            #expect(unknown.status == .badRequest)
            #expect((unknown.error["message"] as? String)?.contains("linear") == true)

            let boundary = "XyZ123"
            var body = Data()
            func part(_ name: String, _ filename: String?, _ bytes: [UInt8]) {
                body += Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"".utf8)
                if let filename { body += Data("; filename=\"\(filename)\"".utf8) }
                body += Data("\r\n\r\n".utf8) + Data(bytes) + Data("\r\n".utf8)
            }
            part("name", nil, Array("imported".utf8))
            part("config", "adapter_config.json", peft.configJSON)
            part("weights", "adapter_model.safetensors", peft.safetensors)
            let complete = body + Data("--\(boundary)--\r\n".utf8)
            let headers: HTTPFields = [.contentType: "multipart/form-data; boundary=\(boundary)"]
            let imported = try await client.execute(uri: "/v1/adapters/import", method: .post, headers: headers,
                                                    body: ByteBuffer(bytes: complete))
            #expect(imported.status == .created, "\(imported.text)")
            #expect(imported.json["rank"] as? Int == 2)
            let truncated = try await client.execute(uri: "/v1/adapters/import", method: .post, headers: headers,
                                                     body: ByteBuffer(bytes: body.prefix(body.count - 40)))
            #expect(truncated.status == .badRequest)
            let noBoundary = try await client.execute(uri: "/v1/adapters/import", method: .post,
                                                      headers: [.contentType: "multipart/form-data"], body: ByteBuffer(bytes: complete))
            #expect((noBoundary.error["message"] as? String)?.contains("boundary") == true)

            let tar = try await client.get("/v1/adapters/default/imported/export")
            #expect(tar.status == .ok)
            let files = untar(Array(tar.body.readableBytesView))
            #expect(files.map(\.0) == ["adapter_config.json", "adapter_model.safetensors"])
            let roundTrip = try PEFTAdapter.decode(configJSON: files[0].1, safetensors: files[1].1, config: config)
            #expect(roundTrip.rank == 2)

            #expect(try await client.execute(uri: "/v1/adapters/default/a", method: .delete).status == .ok)
            #expect(try await client.execute(uri: "/v1/adapters/default/a", method: .delete).status == .notFound)
            let gone = try await client.post("/v1/completions", ["model": "default/a", "prompt": "hi", "max_tokens": 2])
            #expect(gone.status == .notFound)
        }
    }
}

/// The files of a ustar archive.
func untar(_ bytes: [UInt8]) -> [(String, [UInt8])] {
    var out: [(String, [UInt8])] = []
    var offset = 0
    while offset + 512 <= bytes.count, bytes[offset] != 0 {
        let header = Array(bytes[offset..<offset + 512])
        let name = String(decoding: header[0..<100].prefix { $0 != 0 }, as: UTF8.self)
        let sizeText = String(decoding: header[124..<136].prefix { $0 != 0 && $0 != 0x20 }, as: UTF8.self)
        let size = Int(sizeText, radix: 8) ?? 0
        out.append((name, Array(bytes[offset + 512..<offset + 512 + size])))
        offset += 512 + (size + 511) / 512 * 512
    }
    return out
}
