import ArgumentParser
import Server

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the daemon (the same as graftd): OpenAI-compatible HTTP on a Unix socket.",
        discussion: "Pulls the base model if the hub lacks it, then listens on <registry>/graftd.sock until SIGTERM or SIGINT.")

    @OptionGroup var options: ServeOptions

    func run() async throws {
        try await startDaemon(options.settings, mergeMethods: MergePlugins.all, logger: options.logger)
    }
}
