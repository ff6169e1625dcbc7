import ArgumentParser
import DaemonClient
import Foundation
import Hub

struct Tenants: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage tenants and their keys (through the daemon when one runs, which then needs an admin key).",
        discussion: """
        With no tenants the daemon is single-user and the socket's file mode is the protection. Once a tenant \\
        exists, every request needs 'Authorization: Bearer <key>'; add an admin first (--admin) to keep \\
        managing tenants through the daemon.
        """,
        subcommands: [TenantsAdd.self, TenantsList.self, TenantsDelete.self, TenantsRotateKey.self])
}

struct TenantsAdd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "add", abstract: "Add a tenant and print its key (shown only once).")
    @OptionGroup var registryOptions: RegistryOptions
    @OptionGroup var daemonOptions: DaemonOptions
    @Argument(help: "Tenant name: letters, digits, '.', '_' or '-'.") var name: String
    @Flag(help: "May manage tenants and see every tenant's adapters.") var admin = false
    @Option(name: .customLong("requests-per-minute"), help: "Quota: inference requests per minute.") var requestsPerMinute: Int?
    @Option(name: .customLong("concurrent-streams"), help: "Quota: inference requests at once.") var concurrentStreams: Int?
    @Option(name: .customLong("adapter-bytes"), help: "Quota: bytes of stored adapters.") var adapterBytes: Int?

    func run() async throws {
        let quotas = TenantQuotas(adapterBytes: adapterBytes, requestsPerMinute: requestsPerMinute, concurrentStreams: concurrentStreams)
        let key: String
        if let client = daemonOptions.client(for: registryOptions.hub) {
            var q: [String: Any] = [:]
            if let adapterBytes { q["adapter_bytes"] = adapterBytes }
            if let requestsPerMinute { q["requests_per_minute"] = requestsPerMinute }
            if let concurrentStreams { q["concurrent_streams"] = concurrentStreams }
            let answer = try await client.call(.POST, "/v1/tenants", json: ["name": name, "admin": admin, "quotas": q])
            key = answer["key"] as? String ?? ""
        } else {
            key = try TenantStore(hub: registryOptions.hub).add(name, admin: admin, quotas: quotas)
        }
        Terminal.note("added tenant \(name)\(admin ? " (admin)" : ""); its key follows and is not stored, only its hash:")
        print(key)
    }
}

struct TenantsList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List tenants and their quotas.")
    @OptionGroup var registryOptions: RegistryOptions
    @OptionGroup var daemonOptions: DaemonOptions

    func run() async throws {
        if let client = daemonOptions.client(for: registryOptions.hub) {
            let answer = try await client.call(.GET, "/v1/tenants")
            for t in answer["data"] as? [[String: Any]] ?? [] {
                print("\(t["name"] as? String ?? "?")\((t["admin"] as? Bool) == true ? "  admin" : "")  quotas \(t["quotas"] ?? [:])")
            }
            return
        }
        let all = try TenantStore(hub: registryOptions.hub).all()
        if all.isEmpty { print("no tenants: the daemon is single-user"); return }
        for t in all {
            let q = t.quotas
            print("\(t.name)\(t.admin ? "  admin" : "")  requests/min \(q.requestsPerMinute.map(String.init) ?? "-")  streams \(q.concurrentStreams.map(String.init) ?? "-")  adapter bytes \(q.adapterBytes.map(String.init) ?? "-")")
        }
    }
}

struct TenantsDelete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delete", abstract: "Remove a tenant (its adapters stay until deleted).")
    @OptionGroup var registryOptions: RegistryOptions
    @OptionGroup var daemonOptions: DaemonOptions
    @Argument(help: "Tenant name.") var name: String

    func run() async throws {
        if let client = daemonOptions.client(for: registryOptions.hub) {
            _ = try await client.call(.DELETE, "/v1/tenants/\(name)")
        } else {
            try TenantStore(hub: registryOptions.hub).remove(name)
        }
        print("deleted tenant \(name)")
    }
}

struct TenantsRotateKey: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rotate-key", abstract: "Give a tenant a new key; the old one stops working.")
    @OptionGroup var registryOptions: RegistryOptions
    @OptionGroup var daemonOptions: DaemonOptions
    @Argument(help: "Tenant name.") var name: String

    func run() async throws {
        let key: String
        if let client = daemonOptions.client(for: registryOptions.hub) {
            key = try await client.call(.POST, "/v1/tenants/\(name)/keys")["key"] as? String ?? ""
        } else {
            key = try TenantStore(hub: registryOptions.hub).rotateKey(name)
        }
        Terminal.note("new key for \(name):")
        print(key)
    }
}
