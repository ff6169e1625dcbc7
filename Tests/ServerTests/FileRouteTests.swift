import Foundation
import Hub
import Hummingbird
import HummingbirdTesting
import Server
import Testing

/// A multipart/form-data body as the SDKs build it.
func formBody(_ parts: [(name: String, filename: String?, body: [UInt8])], boundary: String = "b0undary",
              close: Bool = true) -> ByteBuffer {
    var out: [UInt8] = []
    for p in parts {
        var head = "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(p.name)\""
        if let f = p.filename { head += "; filename=\"\(f)\"\r\nContent-Type: application/octet-stream" }
        out += Array((head + "\r\n\r\n").utf8) + p.body + Array("\r\n".utf8)
    }
    if close { out += Array("--\(boundary)--\r\n".utf8) }
    return ByteBuffer(bytes: out)
}

extension TestClientProtocol {
    /// Uploads `bytes` as `files.create(file=(name, bytes), purpose=...)` sends it.
    func uploadFile(_ bytes: [UInt8], name: String = "train.jsonl", purpose: String = "fine-tune",
                    headers: HTTPFields = [:]) async throws -> TestResponse {
        var h = headers
        h[.contentType] = "multipart/form-data; boundary=b0undary"
        return try await execute(uri: "/v1/files", method: .post, headers: h,
                                 body: formBody([("purpose", nil, Array(purpose.utf8)), ("file", name, bytes)]))
    }
}

@Suite("Files over the API: uploads streamed to the hub, listed, read, deleted", .serialized)
struct FileRouteTests {
    static let rows = Array(#"{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}"#.utf8)
        + [0x0A]

    @Test("upload (multipart and raw), list with pagination and order, retrieve, content and delete")
    func lifecycle() async throws {
        let h = try Harness()
        try await h.test { client in
            let up = try await client.uploadFile(Self.rows + Self.rows)
            #expect(up.status == .ok, "\(up.text)")
            let file = up.json
            let id = try #require(file["id"] as? String)
            #expect(id.hasPrefix("file-") && id.count == 29, "ids are long and random")
            #expect(file["object"] as? String == "file" && file["bytes"] as? Int == 2 * Self.rows.count)
            #expect(file["filename"] as? String == "train.jsonl" && file["purpose"] as? String == "fine-tune")
            #expect(file["status"] as? String == "processed")

            let raw = try await client.execute(uri: "/v1/files?purpose=fine-tune&filename=more.jsonl", method: .post,
                                               headers: [.contentType: "application/jsonl"], body: ByteBuffer(bytes: Self.rows))
            #expect(raw.status == .ok, "\(raw.text)")
            let rawID = try #require(raw.json["id"] as? String)
            #expect(raw.json["filename"] as? String == "more.jsonl")

            let all = try await client.get("/v1/files").json
            #expect((all["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == [rawID, id], "newest first")
            let page = try await client.get("/v1/files?limit=1").json
            #expect(page["has_more"] as? Bool == true && page["first_id"] as? String == rawID)
            let next = try await client.get("/v1/files?limit=1&after=\(rawID)").json
            #expect((next["data"] as? [[String: Any]])?.first?["id"] as? String == id && next["has_more"] as? Bool == false)
            let past = try await client.get("/v1/files?after=\(id)").json
            #expect((past["data"] as? [Any])?.isEmpty == true, "past the end the page is empty")
            let asc = try await client.get("/v1/files?order=asc").json
            #expect((asc["data"] as? [[String: Any]])?.first?["id"] as? String == id)

            #expect(try await client.get("/v1/files/\(id)").json["bytes"] as? Int == 2 * Self.rows.count)
            let content = try await client.execute(uri: "/v1/files/\(id)/content", method: .get,
                                                   headers: [.accept: "application/binary"])
            #expect(content.status == .ok && Array(content.body.readableBytesView) == Self.rows + Self.rows)

            let deleted = try await client.execute(uri: "/v1/files/\(id)", method: .delete)
            #expect(deleted.json["deleted"] as? Bool == true && deleted.json["id"] as? String == id)
            #expect(try await client.get("/v1/files/\(id)").status == .notFound)
            #expect(try await client.get("/v1/files/file-000000000000000000000000").error["param"] as? String == "file_id")
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: h.hub.filesDirectory(tenant: "default").path)
            #expect(leftovers.sorted() == [rawID, rawID + ".json"], "only the remaining file and its record")
        }
    }

    @Test("hostile uploads are refused with the reason, and leave nothing behind")
    func hostile() async throws {
        let h = try Harness { $0.maxFileBytes = 4096 }
        try await h.test { client in
            func send(_ contentType: String, _ body: ByteBuffer) async throws -> TestResponse {
                try await client.execute(uri: "/v1/files", method: .post, headers: [.contentType: contentType], body: body)
            }
            let file = [("purpose", String?.none, Array("fine-tune".utf8)), ("file", "t.jsonl", Self.rows)]
            let noBoundary = try await send("multipart/form-data", formBody(file))
            #expect(noBoundary.status == .badRequest
                    && noBoundary.error["message"] as? String == "the multipart Content-Type has no boundary")
            let truncated = try await send("multipart/form-data; boundary=b0undary", formBody(file, close: false))
            #expect(truncated.status == .badRequest && (truncated.error["message"] as? String ?? "").contains("truncated"))
            let noName = try await send("multipart/form-data; boundary=b0undary",
                                        formBody([("purpose", nil, Array("fine-tune".utf8)), ("file", nil, Self.rows)]))
            #expect(noName.status == .badRequest && (noName.error["message"] as? String ?? "").contains("no filename"))
            let empty = try await client.uploadFile([])
            #expect(empty.status == .badRequest && (empty.error["message"] as? String ?? "").contains("empty"))
            let latin1 = try await client.uploadFile(Self.rows + Array("{\"text\": \"caf".utf8) + [0xE9, 0x22, 0x7D, 0x0A])
            #expect(latin1.status == .badRequest)
            #expect((latin1.error["message"] as? String ?? "").contains("not UTF-8 text: line 2"), "\(latin1.text)")
            let big = try await client.uploadFile([UInt8](repeating: 0x41, count: 5000))
            #expect(big.status == .contentTooLarge && big.error["code"] as? String == "file_too_large")
            let purpose = try await client.uploadFile(Self.rows, purpose: "nonsense")
            #expect(purpose.status == .badRequest && purpose.error["param"] as? String == "purpose")
            let noFile = try await send("multipart/form-data; boundary=b0undary", formBody([("purpose", nil, Array("fine-tune".utf8))]))
            #expect(noFile.status == .badRequest && noFile.error["param"] as? String == "file")
            #expect((try await client.get("/v1/files").json["data"] as? [Any])?.isEmpty == true)
            let left = try FileManager.default.contentsOfDirectory(atPath: h.hub.filesDirectory(tenant: "default").path)
            #expect(left.isEmpty, "refused uploads leave no file: \(left)")
        }
    }

    @Test("a tenant's storage quota is enforced (403) and another tenant's files read as missing")
    func quotaAndIsolation() async throws {
        let h = try Harness { $0.defaultQuotas.fileBytes = 3 * Self.rows.count }
        let tenants = TenantStore(hub: h.hub)
        let acme = try tenants.add("acme")
        let globex = try tenants.add("globex")
        try await h.test { client in
            let first = try await client.uploadFile(Self.rows + Self.rows, headers: bearer(acme))
            #expect(first.status == .ok)
            let id = try #require(first.json["id"] as? String)
            let over = try await client.uploadFile(Self.rows + Self.rows, headers: bearer(acme))
            #expect(over.status == .forbidden && over.error["code"] as? String == "storage_quota_exceeded", "\(over.text)")
            #expect(try await client.uploadFile(Self.rows, headers: bearer(acme)).status == .ok, "within the quota")
            #expect(try await client.get("/v1/files/\(id)", headers: bearer(globex)).status == .notFound)
            #expect(try await client.get("/v1/files/\(id)/content", headers: bearer(globex)).status == .notFound)
            #expect(try await client.execute(uri: "/v1/files/\(id)", method: .delete, headers: bearer(globex)).status == .notFound)
            #expect((try await client.get("/v1/files", headers: bearer(globex)).json["data"] as? [Any])?.isEmpty == true)
            let job = try await client.post("/v1/fine_tuning/jobs", ["model": "tiny", "training_file": id], headers: bearer(globex))
            #expect(job.status == .notFound && job.error["param"] as? String == "training_file")
            let mine = try await client.post("/v1/fine_tuning/jobs", ["model": "tiny", "training_file": id], headers: bearer(acme))
            let jobID = try #require(mine.json["id"] as? String, "\(mine.text)")
            #expect(try await client.get("/v1/fine_tuning/jobs/\(jobID)", headers: bearer(globex)).status == .notFound)
            #expect(try await client.get("/v1/fine_tuning/jobs/\(jobID)/events", headers: bearer(globex)).status == .notFound)
            #expect(try await client.get("/v1/fine_tuning/jobs/\(jobID)/checkpoints", headers: bearer(globex)).status == .notFound)
            #expect(try await client.post("/v1/fine_tuning/jobs/\(jobID)/cancel", [:], headers: bearer(globex)).status == .notFound)
            #expect((try await client.get("/v1/fine_tuning/jobs", headers: bearer(globex)).json["data"] as? [Any])?.isEmpty == true)
            _ = try await client.waitForJob(jobID, headers: bearer(acme))
            let asOther = try await client.uploadFile(Self.rows, headers: bearer(globex)).status
            #expect(asOther == .ok)
            let acting = try await client.execute(uri: "/v1/files?tenant=acme", method: .post,
                                                  headers: bearer(globex), body: ByteBuffer(bytes: Self.rows))
            #expect(acting.status == .forbidden, "only admins act for another tenant")
        }
    }
}
