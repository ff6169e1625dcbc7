import AdapterFormat
import Foundation
import Hub
import Hummingbird
import LlamaModel
import MultipartKit

/// One part of a multipart/form-data body.
struct FormPart {
    var name: String
    var filename: String?
    var body: [UInt8]
}

/// The boundary parameter of a multipart Content-Type (any position, quoted or not).
func multipartBoundary(_ contentType: String?) throws -> String {
    guard let contentType, contentType.lowercased().hasPrefix("multipart/form-data") else {
        throw APIError.badRequest("expected a multipart/form-data body")
    }
    for parameter in contentType.split(separator: ";").dropFirst() {
        let kv = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
        if kv.count == 2, kv[0].lowercased() == "boundary" {
            let value = kv[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            if !value.isEmpty && value.count <= 200 { return value }
        }
    }
    throw APIError.badRequest("the multipart Content-Type has no boundary")
}

/// Splits a whole multipart body into parts; a body that ends before its closing boundary
/// (a truncated upload) is refused.
func parseMultipart(_ bytes: [UInt8], boundary: String, maxParts: Int = 16) throws -> [FormPart] {
    let parser = MultipartParser(boundary: boundary)
    var parts: [FormPart] = []
    var headers: [(String, String)] = []
    var body: [UInt8] = []
    var failure: APIError?
    parser.onHeader = { name, value in headers.append((name.lowercased(), value)) }
    parser.onBody = { buffer in body += buffer.readableBytesView }
    parser.onPartComplete = {
        guard parts.count < maxParts else { failure = APIError.badRequest("more than \(maxParts) parts"); return }
        let disposition = headers.first { $0.0 == "content-disposition" }?.1 ?? ""
        guard let name = dispositionParameter(disposition, "name") else {
            failure = APIError.badRequest("a multipart part has no name in its Content-Disposition")
            return
        }
        parts.append(FormPart(name: name, filename: dispositionParameter(disposition, "filename"), body: body))
        headers = []
        body = []
    }
    do {
        try parser.execute(bytes)
    } catch {
        throw APIError.badRequest("the multipart body is malformed")
    }
    if let failure { throw failure }
    // The closing delimiter is "--boundary--"; without it the upload was cut short.
    let closing = Array("--\(boundary)--".utf8)
    let tail = bytes.suffix(closing.count + 4)
    guard tail.count >= closing.count,
          (0...(tail.count - closing.count)).contains(where: { Array(tail.dropFirst($0).prefix(closing.count)) == closing }) else {
        throw APIError.badRequest("the multipart body ends before its closing boundary (truncated upload?)")
    }
    return parts
}

/// `name="x"` / `filename="y"` from a Content-Disposition value; quoted values may hold ';'.
func dispositionParameter(_ header: String, _ key: String) -> String? {
    var rest = Substring(header)
    while let semi = rest.firstIndex(of: ";") {
        rest = rest[rest.index(after: semi)...].drop { $0 == " " }
        guard let eq = rest.firstIndex(of: "=") else { return nil }
        let k = rest[..<eq].trimmingCharacters(in: .whitespaces).lowercased()
        var value = rest[rest.index(after: eq)...]
        var parsed: String
        if value.first == "\"" {
            value = value.dropFirst()
            let end = value.firstIndex(of: "\"") ?? value.endIndex
            parsed = String(value[..<end])
            rest = end < value.endIndex ? value[value.index(after: end)...] : value[end...]
        } else {
            let end = value.firstIndex(of: ";") ?? value.endIndex
            parsed = String(value[..<end]).trimmingCharacters(in: .whitespaces)
            rest = value[end...]
        }
        if k == key { return parsed }
    }
    return nil
}

/// A ustar archive of `files`: what `export` sends, so `curl ... | tar x` gives a PEFT directory.
func tarArchive(_ files: [(name: String, bytes: [UInt8])], modified: Int) -> [UInt8] {
    var out: [UInt8] = []
    for (name, bytes) in files {
        var header = [UInt8](repeating: 0, count: 512)
        func put(_ s: String, _ offset: Int, _ length: Int) {
            for (i, b) in s.utf8.prefix(length).enumerated() { header[offset + i] = b }
        }
        put(name, 0, 100)
        put("0000644", 100, 8)
        put("0000000", 108, 8)
        put("0000000", 116, 8)
        put(String(format: "%011o", bytes.count), 124, 12)
        put(String(format: "%011o", modified), 136, 12)
        put("        ", 148, 8)
        header[156] = UInt8(ascii: "0")
        put("ustar", 257, 6)
        put("00", 263, 2)
        let sum = header.reduce(0) { $0 + Int($1) }
        put(String(format: "%06o", sum), 148, 6)
        header[154] = 0
        header[155] = UInt8(ascii: " ")
        out += header
        out += bytes
        out += [UInt8](repeating: 0, count: (512 - bytes.count % 512) % 512)
    }
    out += [UInt8](repeating: 0, count: 1024)
    return out
}

extension GraftServer {
    /// `POST /v1/adapters/import`: multipart with `name` (and `tenant`, for admins), a
    /// `config` part (adapter_config.json) and a `weights` part (adapter_model.safetensors).
    func importPEFT(_ request: Request, principal: Principal) async throws -> Response {
        let boundary = try multipartBoundary(request.headers[.contentType])
        let parts = try parseMultipart(try await request.readBody(limit: configuration.maxBodyBytes), boundary: boundary)
        func part(_ names: [String]) -> FormPart? { parts.first { names.contains($0.name) } }
        guard let nameText = part(["name"]).flatMap({ String(validating: $0.body, as: UTF8.self) }) else {
            throw APIError.badRequest("missing the 'name' field", param: "name")
        }
        let tenantText = part(["tenant"]).flatMap { String(validating: $0.body, as: UTF8.self) }
        let target = try ModelSelection.resolveID(tenantText.map { "\($0)/\(nameText)" } ?? nameText, param: "name",
                                                  principal: principal)
        guard let config = part(["config", "adapter_config.json", "adapter_config"]) else {
            throw APIError.badRequest("missing the 'config' part (adapter_config.json)", param: "config")
        }
        guard let weights = part(["weights", "adapter_model.safetensors", "adapter_model"]) else {
            throw APIError.badRequest("missing the 'weights' part (adapter_model.safetensors)", param: "weights")
        }
        let adapter: LoRAAdapter
        do {
            adapter = try PEFTAdapter.decode(configJSON: config.body, safetensors: weights.body, config: model.config)
        } catch {
            throw APIError.badRequest("not a usable PEFT LoRA adapter: \(error)")
        }
        let id = try publish(adapter, as: target, extra: ["source": "peft-import"])
        return jsonResponse(adapterJSON(try hub.resolveAdapter(id)), status: .created)
    }

    /// `GET /v1/adapters/{id}/export`: the PEFT files as a tar archive.
    func exportAdapter(_ id: AdapterID, as principal: Principal) throws -> Response {
        let stored = try hub.resolveAdapter(id)
        let (adapter, info) = try GraftFile.decode(try Array(Data(contentsOf: stored.url)))
        let (configJSON, safetensors) = try PEFTAdapter.encode(adapter, config: model.config, baseModelName: info.baseModel)
        let tar = tarArchive([("adapter_config.json", configJSON), ("adapter_model.safetensors", safetensors)],
                             modified: Int(info.created.timeIntervalSince1970))
        let file = "\(stored.id.tenant)-\(stored.id.name)-\(stored.id.version ?? 0).tar"
        return Response(status: .ok, headers: [.contentType: "application/x-tar",
                                               .contentDisposition: "attachment; filename=\"\(file)\""],
                        body: .init(byteBuffer: ByteBuffer(bytes: tar)))
    }
}
