import ArgumentParser

@main
struct Graft: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "graft",
        abstract: "Graft: a LoRA adapter server for one frozen base model, on CPU.",
        discussion: """
        The hub (model registry) lives in ./Registry unless --registry DIR or GRAFT_REGISTRY says otherwise.
        Start with `graft pull`, then `graft generate "..."`.
        """,
        subcommands: [Serve.self, Pull.self, Models.self, Generate.self, Train.self, DatasetCommand.self, Eval.self, Jobs.self,
                      Adapters.self, Tenants.self, Inspect.self, Tokenize.self, Logits.self, Bench.self]
    )
}
