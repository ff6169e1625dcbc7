import Foundation
import Hub
import Hummingbird

/// Health, metrics, the OpenAI model list and the admin-only tenant routes.
func registerServiceRoutes(_ routes: RouteBook, _ server: GraftServer) {
    routes.add(.get, "/health") { _, _ in
        let s = server.engine.stats
        return jsonResponse(["status": server.engine.isDraining ? "draining" : "ok",
                             "model": server.configuration.baseModelName,
                             "active_sequences": s.active, "queued_requests": s.queued,
                             "adapters_cached": server.loader.cachedCount],
                            status: server.engine.isDraining ? .serviceUnavailable : .ok)
    }
    routes.add(.get, "/metrics") { _, _ in
        Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                 body: .init(byteBuffer: ByteBuffer(bytes: server.metrics.exposition(engine: server.engine, loader: server.loader))))
    }
    routes.add(.get, "/v1/models") { _, context in
        jsonResponse(["object": "list", "data": server.models(for: context.principal)])
    }
    routes.add(.get, "/v1/models/**") { _, context in
        let name = catchAll(context).joined(separator: "/")
        if ModelSelection.isBase(name, server) { return jsonResponse(server.baseModelJSON) }
        let id = try ModelSelection.resolveID(name, param: "model", principal: context.principal)
        let stored = try server.hub.resolveAdapter(id)
        return jsonResponse(server.modelJSON(stored, named: name))
    }

    routes.add(.get, "/v1/tenants") { _, context in
        try requireAdmin(context)
        let list = try server.tenants.all().map { t -> [String: Any] in
            ["name": t.name, "admin": t.admin, "created_at": t.createdAt, "quotas": quotaJSON(t.quotas)]
        }
        return jsonResponse(["object": "list", "data": list])
    }
    routes.add(.post, "/v1/tenants") { request, context in
        try requireAdmin(context)
        let body = try JSONBody.parse(try await request.readBody(limit: 1 << 16))
        let name = try body.requiredString("name")
        let quotas = try parseQuotas(body.object("quotas"))
        let key = try server.tenants.add(name, admin: try body.bool("admin") ?? false, quotas: quotas)
        return jsonResponse(["name": name, "key": key, "admin": try body.bool("admin") ?? false], status: .created)
    }
    routes.add(.delete, "/v1/tenants/{name}") { _, context in
        try requireAdmin(context)
        let name = try context.parameters.require("name")
        try server.tenants.remove(name)
        return jsonResponse(["name": name, "deleted": true])
    }
    routes.add(.post, "/v1/tenants/{name}/keys") { _, context in
        try requireAdmin(context)
        let name = try context.parameters.require("name")
        return jsonResponse(["name": name, "key": try server.tenants.rotateKey(name)], status: .created)
    }
    routes.add(.post, "/v1/tenants/{name}/quotas") { request, context in
        try requireAdmin(context)
        let name = try context.parameters.require("name")
        let body = try JSONBody.parse(try await request.readBody(limit: 1 << 16))
        let quotas = try parseQuotas(body)
        try server.tenants.setQuotas(name, quotas)
        return jsonResponse(["name": name, "quotas": quotaJSON(quotas)])
    }
}

func requireAdmin(_ context: GraftContext) throws {
    guard context.principal.isAdmin else {
        throw APIError(.forbidden, "this route needs an admin key", code: "admin_only", shouldRetry: false)
    }
}

func parseQuotas(_ body: JSONBody?) throws -> TenantQuotas {
    guard let body else { return TenantQuotas() }
    return TenantQuotas(adapterBytes: try body.int("adapter_bytes", in: 0...Int.max),
                        requestsPerMinute: try body.int("requests_per_minute", in: 0...1_000_000),
                        concurrentStreams: try body.int("concurrent_streams", in: 0...100_000),
                        fileBytes: try body.int("file_bytes", in: 0...Int.max))
}

func quotaJSON(_ q: TenantQuotas) -> [String: Any] {
    ["adapter_bytes": q.adapterBytes ?? NSNull(), "requests_per_minute": q.requestsPerMinute ?? NSNull(),
     "concurrent_streams": q.concurrentStreams ?? NSNull(), "file_bytes": q.fileBytes ?? NSNull()]
}

extension GraftServer {
    var baseModelJSON: [String: Any] {
        let path = (try? hub.modelPath(configuration.baseModelName))?.path ?? ""
        let created = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
        return ["id": configuration.baseModelName, "object": "model", "created": Int(created?.timeIntervalSince1970 ?? 0),
                "owned_by": "system"]
    }

    func modelJSON(_ stored: StoredAdapter, named name: String) -> [String: Any] {
        let created = (try? FileManager.default.attributesOfItem(atPath: stored.url.path))?[.modificationDate] as? Date
        return ["id": name, "object": "model", "created": Int(created?.timeIntervalSince1970 ?? 0),
                "owned_by": stored.id.tenant]
    }

    /// The base, then each adapter the principal can use (once per name: the newest version).
    func models(for principal: Principal) -> [[String: Any]] {
        var out = [baseModelJSON]
        var seen: Set<String> = []
        for stored in hub.listAdapters(tenant: principal.isAdmin ? nil : principal.tenant).reversed() {
            let name = "\(stored.id.tenant)/\(stored.id.name)"
            if seen.insert(name).inserted { out.append(modelJSON(stored, named: name)) }
        }
        return out
    }
}
