import Foundation
import Hub
import Hummingbird
import MultipartKit

/// OpenAI's files API: upload (multipart as the SDKs send it, or the raw body), list, show,
/// delete, content. A tenant sees only its own files; uploads stream to disk.
func registerFileRoutes(_ routes: RouteBook, _ server: GraftServer) {
    routes.add(.post, "/v1/files") { request, context in
        let record = try await server.upload(request, tenant: try context.principal.acting(for: tenantParameter(request)))
        return jsonResponse(fileJSON(record))
    }
    routes.add(.get, "/v1/files") { request, context in
        try server.listFiles(request, tenant: context.principal.acting(for: tenantParameter(request)))
    }
    routes.add(.get, "/v1/files/{id}") { _, context in
        jsonResponse(fileJSON(try server.file(context).file))
    }
    routes.add(.delete, "/v1/files/{id}") { _, context in
        let (tenant, record) = try server.file(context)
        try server.training.checkFileDeletable(record.id, tenant: tenant)
        try server.hub.deleteFile(record.id, tenant: tenant)
        return jsonResponse(["id": record.id, "object": "file", "deleted": true])
    }
    routes.add(.get, "/v1/files/{id}/content") { _, context in
        let (tenant, record) = try server.file(context)
        let url = server.hub.contentURL(of: record, tenant: tenant)
        guard let handle = FileHandle(forReadingAtPath: url.path) else { throw APIError.notFound("no file \(record.id)") }
        let headers: HTTPFields = [.contentType: "application/octet-stream",
                                   .contentDisposition: "attachment; filename=\"\(cleanFilename(record.filename))\""]
        return Response(status: .ok, headers: headers, body: ResponseBody(contentLength: record.bytes) { writer in
            defer { try? handle.close() }
            while let chunk = try handle.read(upToCount: 1 << 16), !chunk.isEmpty {
                try await writer.write(ByteBuffer(bytes: chunk))
            }
            try await writer.finish(nil)
        })
    }
}

func fileJSON(_ f: StoredFile) -> [String: Any] {
    ["id": f.id, "object": "file", "bytes": f.bytes, "created_at": f.createdAt, "filename": f.filename,
     "purpose": f.purpose, "status": "processed", "expires_at": NSNull(), "status_details": NSNull()]
}

/// A page of a newest-first list: the items after the one with id `after`, at most `limit`.
func paginate<T>(_ items: [T], id: KeyPath<T, String>, after: String?, limit: String?, defaultLimit: Int) throws
    -> (items: [T], hasMore: Bool) {
    var n = defaultLimit
    if let limit {
        guard let v = Int(limit), v >= 1, v <= 10000 else {
            throw APIError.badRequest("limit must be an integer from 1 to 10000, not '\(limit)'", param: "limit")
        }
        n = v
    }
    var rest = items[...]
    if let after {
        guard let i = items.firstIndex(where: { $0[keyPath: id] == after }) else {
            throw APIError.badRequest("after names no item of this list: '\(after)'", param: "after")
        }
        rest = items[(i + 1)...]
    }
    return (Array(rest.prefix(n)), rest.count > n)
}

/// The `tenant` query parameter (admins acting for another tenant).
func tenantParameter(_ request: Request) -> String? {
    request.uri.queryParameters["tenant"].map { String($0) }
}

/// The `after` and `limit` query parameters.
func pageParameters(_ request: Request) -> (after: String?, limit: String?) {
    let q = request.uri.queryParameters
    return (q["after"].map { String($0) }, q["limit"].map { String($0) })
}

extension GraftServer {
    func listFiles(_ request: Request, tenant: String) throws -> Response {
        let q = request.uri.queryParameters
        var files: [StoredFile] = hub.listFiles(tenant: tenant)
        if let purpose = q["purpose"] {
            let wanted = String(purpose)
            files = files.filter { $0.purpose == wanted }
        }
        if let order = q["order"] {
            guard order == "asc" || order == "desc" else { throw APIError.badRequest("order must be asc or desc", param: "order") }
            if order == "asc" { files.reverse() }
        }
        let (after, limit) = pageParameters(request)
        let page = try paginate(files, id: \StoredFile.id, after: after, limit: limit, defaultLimit: 10000)
        let data: [[String: Any]] = page.items.map { fileJSON($0) }
        let body: [String: Any] = ["object": "list", "data": data, "has_more": page.hasMore,
                                   "first_id": page.items.first?.id ?? NSNull(), "last_id": page.items.last?.id ?? NSNull()]
        return jsonResponse(body)
    }

    /// The file named in the path, of the caller's tenant (of any tenant for an admin).
    func file(_ context: GraftContext) throws -> (tenant: String, file: StoredFile) {
        let id = context.parameters.get("id") ?? ""
        let p = context.principal
        if let f = try? hub.file(id, tenant: p.tenant) { return (p.tenant, f) }
        if p.isAdmin, let found = hub.findFile(id) { return found }
        throw APIError.notFound("no file \(id)", param: "file_id")
    }

    /// Streams an upload to disk: multipart/form-data with `purpose` and `file` parts, or any
    /// other body as the file itself (`?purpose=&filename=`). Refuses a body over the per-file
    /// limit (413), over the tenant's storage quota (403), empty, or not UTF-8 (400).
    func upload(_ request: Request, tenant: String) async throws -> StoredFile {
        let limit = configuration.maxFileBytes
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > limit + 64 << 10 {
            throw APIError(.contentTooLarge, "the upload has \(declared) bytes, over the limit of \(limit) per file",
                           code: "file_too_large")
        }
        let quota = quotas(for: tenant).fileBytes
        let used = quota == nil ? 0 : hub.fileBytes(tenant: tenant)
        let upload = try hub.beginUpload(tenant: tenant)
        defer { upload.abandon() }
        func check() throws {
            if upload.count > limit {
                throw APIError(.contentTooLarge, "the file is over the limit of \(limit) bytes", code: "file_too_large")
            }
            if let quota, used + upload.count > quota {
                throw APIError(.forbidden, "tenant '\(tenant)' would store more than its quota of \(quota) bytes of files "
                               + "(\(used) used); delete files first", code: "storage_quota_exceeded")
            }
        }
        let query = request.uri.queryParameters
        var purpose = query["purpose"].map(String.init) ?? "fine-tune"
        var filename = query["filename"].map(String.init) ?? "upload.jsonl"
        let contentType = request.headers[.contentType] ?? ""
        if contentType.lowercased().hasPrefix("multipart/") {
            let form = try await StreamingForm(boundary: try multipartBoundary(contentType), upload: upload)
                .read(request.body, check: check)
            purpose = form.fields["purpose"] ?? purpose
            filename = form.filename
        } else {
            for try await buffer in request.body {
                try buffer.withUnsafeReadableBytes { try upload.write($0) }
                try check()
            }
        }
        guard ["fine-tune", "assistants", "batch", "vision", "user_data", "evals"].contains(purpose) else {
            throw APIError.badRequest("purpose '\(purpose)' is not one of fine-tune, assistants, batch, vision, user_data, evals",
                                      param: "purpose")
        }
        guard upload.count > 0 else { throw APIError.badRequest("the file \(filename) is empty", param: "file") }
        guard upload.utf8.isComplete else {
            throw APIError.badRequest("the file \(filename) is not UTF-8 text: line \(upload.utf8.newlines + 1) has an invalid "
                                      + "byte (offset \(upload.utf8.offset))", param: "file")
        }
        return try upload.finish(filename: cleanFilename(filename), purpose: purpose)
    }
}

/// A file name fit for listings and headers: its last path component, without control
/// characters or quotes, at most 255 characters.
func cleanFilename(_ name: String) -> String {
    let last = name.split(whereSeparator: { $0 == "/" || $0 == "\\" }).last.map(String.init) ?? ""
    let kept = String(last.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F && $0 != "\"" }.prefix(255))
    return kept.isEmpty ? "upload" : kept
}

/// A multipart/form-data body read as it arrives: the `file` part's bytes go to the upload,
/// other parts (small) are kept as text.
final class StreamingForm {
    let parser: MultipartParser
    let upload: FileUpload
    let closing: [UInt8]
    var headers: [(String, String)] = []
    var part: (name: String, filename: String?)?
    var value: [UInt8] = []
    var fields: [String: String] = [:]
    var filename = ""
    var sawFile = false
    var failure: (any Error)?
    var tail: [UInt8] = []

    init(boundary: String, upload: FileUpload) {
        parser = MultipartParser(boundary: boundary)
        self.upload = upload
        closing = Array("--\(boundary)--".utf8)
        parser.onHeader = { [unowned self] name, value in headers.append((name.lowercased(), value)) }
        parser.onBody = { [unowned self] buffer in
            guard failure == nil else { return }
            do {
                let part = try currentPart()
                if part.name == "file" {
                    try buffer.withUnsafeReadableBytes { try upload.write($0) }
                } else {
                    guard value.count + buffer.readableBytes <= 4096 else {
                        throw APIError.badRequest("the form field '\(part.name)' is over 4096 bytes")
                    }
                    value += buffer.readableBytesView
                }
            } catch { failure = error }
        }
        parser.onPartComplete = { [unowned self] in
            guard failure == nil else { return }
            do {
                let part = try currentPart()
                if part.name == "file" {
                    guard !sawFile else { throw APIError.badRequest("the form has more than one file part", param: "file") }
                    sawFile = true
                    filename = part.filename ?? ""
                } else {
                    fields[part.name] = String(decoding: value, as: UTF8.self)
                }
            } catch { failure = error }
            headers = []; value = []; self.part = nil
        }
    }

    private func currentPart() throws -> (name: String, filename: String?) {
        if let part { return part }
        let disposition = headers.first { $0.0 == "content-disposition" }?.1 ?? ""
        guard let name = dispositionParameter(disposition, "name") else {
            throw APIError.badRequest("a multipart part has no name in its Content-Disposition")
        }
        let filename = dispositionParameter(disposition, "filename")
        if name == "file", filename?.isEmpty ?? true {
            throw APIError.badRequest("the file part has no filename in its Content-Disposition", param: "file")
        }
        part = (name, filename)
        return (name, filename)
    }

    func read(_ body: RequestBody, check: () throws -> Void) async throws -> StreamingForm {
        for try await buffer in body {
            do {
                try parser.execute(buffer)
            } catch {
                throw APIError.badRequest("the multipart body is malformed")
            }
            if let failure { throw failure }
            try check()
            tail = Array((tail + buffer.readableBytesView).suffix(closing.count + 4))
        }
        guard (0...max(0, tail.count - closing.count)).contains(where: { tail.dropFirst($0).starts(with: closing) }) else {
            throw APIError.badRequest("the multipart body ends before its closing boundary (truncated upload?)")
        }
        guard sawFile else { throw APIError.badRequest("the form has no 'file' part", param: "file") }
        return self
    }
}
