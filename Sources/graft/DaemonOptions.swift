import ArgumentParser
import DaemonClient
import Foundation
import Hub
import Server

/// How the CLI reaches a running daemon: through its socket when it answers, unless --offline.
struct DaemonOptions: ParsableArguments {
    @Flag(help: "Work on the hub in this process even when a daemon is running.")
    var offline = false

    @Option(help: ArgumentHelp("The daemon's socket (default: <registry>/graftd.sock).", valueName: "path"))
    var socket: String?

    @Option(name: .customLong("api-key"), help: ArgumentHelp("Key for a daemon with tenants (default: $GRAFT_API_KEY).", valueName: "key"))
    var apiKey: String?

    /// A client of the daemon serving `hub`, or nil to work offline.
    func client(for hub: Hub) -> DaemonClient? {
        if offline { return nil }
        let path = socket ?? hub.root.appendingPathComponent("graftd.sock").path
        guard socketAnswers(path) else { return nil }
        return DaemonClient(socketPath: path, apiKey: apiKey ?? ProcessInfo.processInfo.environment["GRAFT_API_KEY"])
    }
}
