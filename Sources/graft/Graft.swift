import ArgumentParser

@main
struct Graft: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "graft",
        abstract: "Graft: a LoRA adapter server for one frozen base model, on CPU.",
        discussion: """
        The hub (model registry) lives in ./Registry unless --registry DIR or GRAFT_REGISTRY says otherwise.
        Start with `graft pull`, then `graft generate "..."`.
        """,
        subcommands: [Pull.self, Models.self, Generate.self, Train.self, DatasetCommand.self, Eval.self, Jobs.self, Adapters.self, Inspect.self, Tokenize.self, Logits.self, Bench.self]
    )
}
