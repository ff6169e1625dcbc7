import AdapterFormat
import Foundation
import Hub
import Hummingbird
import LlamaModel

/// Graft's own adapter routes: list, show, delete, merge, import (PEFT upload), export (PEFT
/// as a tar archive). A tenant sees its own adapters; an admin sees all.
func registerAdapterRoutes(_ routes: RouteBook, _ server: GraftServer) {
    routes.add(.get, "/v1/adapters") { request, context in
        let p = context.principal
        let tenant = p.isAdmin ? request.uri.queryParameters["tenant"].map(String.init) : p.tenant
        let items = server.hub.listAdapters(tenant: tenant).map { server.adapterJSON($0) }
        return jsonResponse(["object": "list", "data": items])
    }
    routes.add(.get, "/v1/adapters/**") { request, context in
        var parts = catchAll(context)
        if parts.last == "export" && parts.count == 3 {
            parts.removeLast()
            return try server.exportAdapter(try adapterID(parts, context.principal), as: context.principal)
        }
        let stored = try server.hub.resolveAdapter(try adapterID(parts, context.principal))
        return jsonResponse(server.adapterJSON(stored, detail: true))
    }
    routes.add(.delete, "/v1/adapters/**") { _, context in
        let id = try adapterID(catchAll(context), context.principal)
        let deleted = try server.hub.deleteAdapter(id)
        return jsonResponse(["id": id.description, "object": "adapter", "deleted": true,
                             "versions": deleted.map { $0.version ?? 0 }])
    }
    routes.add(.post, "/v1/adapters/merge") { request, context in
        let body = try JSONBody.parse(try await request.readBody(limit: server.configuration.maxBodyBytes))
        return try server.merge(body, principal: context.principal)
    }
    routes.add(.post, "/v1/adapters/import") { request, context in
        try await server.importPEFT(request, principal: context.principal)
    }
}

/// The path components after the route's prefix, percent-decoded (SDKs send `a%2Fb`).
func catchAll(_ context: GraftContext) -> [String] {
    context.parameters.getCatchAll().flatMap { part in
        (String(part).removingPercentEncoding ?? String(part)).split(separator: "/").map(String.init)
    }
}

/// `tenant/name[@version]` (or `name[@version]` for the caller's own), as the principal may see it.
func adapterID(_ parts: [String], _ principal: Principal) throws -> AdapterID {
    guard parts.count == 1 || parts.count == 2 else {
        throw APIError.notFound("no adapter '\(parts.joined(separator: "/"))'")
    }
    return try ModelSelection.resolveID(parts.joined(separator: "/"), param: "id", principal: principal)
}

func jsonResponse(_ object: Any, status: HTTPResponse.Status = .ok) -> Response {
    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
    return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
}

extension GraftServer {
    func adapterJSON(_ stored: StoredAdapter, detail: Bool = false) -> [String: Any] {
        var o: [String: Any] = ["id": stored.id.description, "object": "adapter", "tenant": stored.id.tenant,
                                "name": stored.id.name, "version": stored.id.version ?? 0, "bytes": stored.size]
        if let s = try? GraftFile.summary(hub.adapterHeader(stored)) {
            o["rank"] = s.rank
            o["alpha"] = Double(s.alpha)
            o["target_modules"] = s.targetModules
            o["base_model"] = s.info.baseModel
            o["created_at"] = Int(s.info.created.timeIntervalSince1970)
            if detail {
                o["use_rslora"] = s.useRSLoRA
                o["parameters"] = s.parameterCount
                o["base_model_sha256"] = s.info.baseModelSHA256
                o["metadata"] = s.info.extra
                o["versions"] = hub.adapterVersions(tenant: stored.id.tenant, name: stored.id.name)
            }
        }
        return o
    }

    /// Stores `adapter` as the next version of `target`, within the tenant's storage quota.
    func publish(_ adapter: LoRAAdapter, as target: AdapterID, extra: [String: String]) throws -> AdapterID {
        try adapter.validate(against: model.config)
        let info = AdapterInfo(baseModel: configuration.baseModelName, baseModelSHA256: configuration.baseModelSHA256 ?? "",
                               tenant: target.tenant, name: target.name, extra: extra)
        let bytes = try GraftFile.encode(adapter, info: info)
        if let limit = quotas(for: target.tenant).adapterBytes {
            let used = hub.listAdapters(tenant: target.tenant).reduce(0) { $0 + $1.size }
            if used + bytes.count > limit {
                throw APIError(.tooManyRequests,
                               "tenant '\(target.tenant)' would store \(used + bytes.count) bytes of adapters, over its quota of \(limit)",
                               code: "storage_quota_exceeded", shouldRetry: false)
            }
        }
        return try hub.publishAdapter(bytes, tenant: target.tenant, name: target.name)
    }

    /// `{"into": "name", "method": "ties", "inputs": ["a:0.5", {"id": "b", "weight": 0.5}], ...}`
    func merge(_ body: JSONBody, principal: Principal) throws -> Response {
        let method = try body.requiredString("method")
        guard let plugin = mergeMethods.first(where: { $0.name == method }) else {
            throw APIError.badRequest("\(MergeError.unknownMethod(method, available: mergeMethods.map(\.name)))", param: "method")
        }
        let target = try ModelSelection.resolveID(try body.requiredString("into"), param: "into", principal: principal)
        guard let inputs = try body.array("inputs"), !inputs.isEmpty else {
            throw APIError.badRequest("'inputs' must list at least one adapter", param: "inputs")
        }
        var weighted: [WeightedAdapter] = []
        var names: [String] = []
        for (i, item) in inputs.enumerated() {
            let text: String, weight: Float
            if let s = item as? String {
                let spec = try ModelSelection.parse(model: s, adapters: nil, server: self, principal: principal)
                guard spec.entries.count == 1 else { throw APIError.badRequest("'inputs[\(i)]' must name one adapter", param: "inputs") }
                (text, weight) = (spec.entries[0].id.description, spec.entries[0].weight)
            } else if let o = item as? [String: Any], let id = o["id"] as? String {
                text = id
                weight = (o["weight"] as? NSNumber)?.floatValue ?? 1
            } else {
                throw APIError.badRequest("'inputs[\(i)]' must be \"id[:weight]\" or {\"id\", \"weight\"}", param: "inputs")
            }
            let id = try ModelSelection.resolveID(text, param: "inputs", principal: principal)
            let stored = try hub.resolveAdapter(id)
            var (adapter, _) = try GraftFile.decode(try Array(Data(contentsOf: stored.url)))
            adapter.metadata["name"] = stored.id.description
            weighted.append(WeightedAdapter(adapter, weight: weight))
            names.append("\(stored.id):\(weight)")
        }
        let majority = try body.string("majority_sign").map { s -> MergeOptions.MajoritySign in
            guard let m = MergeOptions.MajoritySign(rawValue: s) else {
                throw APIError.badRequest("'majority_sign' must be total or frequency", param: "majority_sign")
            }
            return m
        } ?? .total
        let options = MergeOptions(rank: try body.int("rank", in: 1...4096), density: Float(try body.number("density", in: 0...1) ?? 0.5),
                                   seed: UInt64(try body.int("seed", in: 0...Int.max) ?? 0), majoritySign: majority)
        var merged = try plugin.merge(weighted, options: options)
        merged.metadata["merge_method"] = method
        merged.metadata["merge_inputs"] = names.joined(separator: ",")
        let id = try publish(merged, as: target, extra: [:])
        return jsonResponse(adapterJSON(try hub.resolveAdapter(id)), status: .created)
    }
}
