import Foundation
import Hub
import LlamaModel

/// What a request's `model` (and the `adapters` extension) asks for: the base alone, or a
/// weighted mix of adapters on it.
struct ModelSelection: Sendable {
    var entries: [(id: AdapterID, weight: Float)]

    var isBase: Bool { entries.isEmpty }

    /// Parses `model`: the base's name, `tenant/name[@version]` (a tenant may leave out its
    /// own prefix), or a mix `a:0.7+b:0.3`. Another tenant's id reads as unknown (404).
    static func parse(model: String, adapters: [Any]?, server: GraftServer, principal: Principal) throws -> ModelSelection {
        var entries: [(AdapterID, Float)] = []
        if let adapters {
            for (i, item) in adapters.enumerated() {
                guard let o = item as? [String: Any], let id = o["id"] as? String else {
                    throw APIError.badRequest("'adapters[\(i)]' must be an object with a string 'id'", param: "adapters")
                }
                var weight: Float = 1
                if let s = o["scale"] {
                    guard let n = s as? NSNumber, !(s is String), n.doubleValue.isFinite, abs(n.doubleValue) <= 100 else {
                        throw APIError.badRequest("'adapters[\(i)].scale' must be a finite number", param: "adapters")
                    }
                    weight = n.floatValue
                }
                entries.append((try resolveID(id, param: "adapters", principal: principal), weight))
            }
        }
        let trimmed = model.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty && entries.isEmpty { throw APIError.badRequest("'model' must name a model", param: "model") }
        if !trimmed.isEmpty && !isBase(trimmed, server) {
            for part in trimmed.split(separator: "+", omittingEmptySubsequences: false) {
                var text = String(part).trimmingCharacters(in: .whitespaces)
                var weight: Float = 1
                if let colon = text.lastIndex(of: ":"), let w = Float(text[text.index(after: colon)...]) {
                    guard w.isFinite, abs(w) <= 100 else {
                        throw APIError.badRequest("adapter weight in '\(part)' must be a finite number", param: "model")
                    }
                    weight = w
                    text = String(text[..<colon])
                }
                entries.append((try resolveID(text, param: "model", principal: principal), weight))
            }
        }
        return ModelSelection(entries: entries)
    }

    static func isBase(_ name: String, _ server: GraftServer) -> Bool {
        name == server.configuration.baseModelName || name == server.model.name
    }

    /// An adapter id as this principal may use it.
    static func resolveID(_ text: String, param: String, principal: Principal) throws -> AdapterID {
        let full = text.contains("/") ? text : "\(principal.tenant)/\(text)"
        let id: AdapterID
        do {
            id = try AdapterID(parsing: full)
        } catch {
            throw APIError.notFound("the model '\(text)' does not exist: \(error)", param: param)
        }
        if !principal.isAdmin && id.tenant != principal.tenant {
            throw APIError.notFound("the model '\(text)' does not exist", param: param)
        }
        return id
    }

    /// Loads every adapter (from the cache, or the hub once however many requests ask) and
    /// pins the exact versions for the whole request.
    func load(_ server: GraftServer) async throws -> (AdapterMix, String) {
        if isBase { return (.none, server.configuration.baseModelName) }
        var mix: [(adapter: PreparedAdapter, weight: Float)] = []
        var names: [String] = []
        for (id, weight) in entries {
            do {
                let loaded = try await server.loader.load(id)
                mix.append((loaded.adapter, weight))
                names.append(weight == 1 ? loaded.id.description : "\(loaded.id):\(weight)")
            } catch let e as AdapterStoreError {
                if case .notFound = e { throw APIError.notFound("the model '\(id)' does not exist", param: "model") }
                throw APIError.badRequest("\(e)", param: "model")
            } catch let e as AdapterError {
                switch e {
                case .wrongBase, .shapeMismatch:  // made for another base model
                    throw APIError.badRequest("the adapter '\(id)' cannot be used with this base model: \(e)", param: "model")
                case .invalid:
                    throw APIError(.unprocessableContent, "the adapter '\(id)' cannot be used: \(e)", param: "model",
                                   shouldRetry: false)
                }
            } catch {
                throw APIError(.unprocessableContent, "the adapter '\(id)' cannot be used: \(error)", param: "model",
                               shouldRetry: false)
            }
        }
        return (AdapterMix(mix), names.joined(separator: "+"))
    }
}
