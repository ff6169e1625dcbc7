import ArgumentParser
import CatMerge
import DareMerge
import LinearMerge
import LlamaModel
import Server
import SVDMerge
import TiesMerge

/// The merge methods this daemon offers: the one place they are registered.
let mergeMethods: [any MergeMethod] = [
    LinearMerge(), CatMerge(), SVDMerge(), TiesMerge(), DareLinearMerge(), DareTiesMerge(),
]

@main
struct GraftDaemon: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "graftd",
        abstract: "Graft's daemon: one base model, every tenant's LoRA adapters, OpenAI-compatible HTTP on a Unix socket.",
        discussion: """
        Pulls the base model into the hub if it is missing, loads it and listens on <registry>/graftd.sock.
        Try: curl --unix-socket Registry/graftd.sock http://localhost/v1/models
        SIGTERM or SIGINT stops it after the requests in flight finish.
        """)

    @OptionGroup var options: ServeOptions

    func run() async throws {
        try await startDaemon(options.settings, mergeMethods: mergeMethods, logger: options.logger)
    }
}
