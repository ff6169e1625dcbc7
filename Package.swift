// swift-tools-version:6.1
import PackageDescription

// The kernels need an ISA flag: without it Swift lowers SIMD FMA to libm calls (see
// docs/ARCHITECTURE.md). GRAFT_MARCH overrides the default (e.g. x86-64-v3 for AVX2-only hosts).
let march = Context.environment["GRAFT_MARCH"] ?? "native"
#if arch(x86_64)
let fastMath: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-march=\(march)"])]
#else
let fastMath: [SwiftSetting] = []
#endif

/// New targets: Swift 6 language mode, complete concurrency checking.
let swift6: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "Graft",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "graft", targets: ["graft"]),
        .executable(name: "graftd", targets: ["graftd"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        // The daemon's stack. Hummingbird's default traits would add swift-configuration.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/vapor/multipart-kit", from: "4.7.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .target(name: "TensorKit", exclude: ["gen_microkernel.py"], swiftSettings: fastMath),
        .target(name: "GGUF", swiftSettings: fastMath),
        // Chat templates: a Jinja engine rendering as Python jinja2 does under Hugging Face's settings.
        .target(name: "Jinja", swiftSettings: swift6 + [.unsafeFlags(["-enable-testing"])]),
        .target(name: "Tokenizer", dependencies: ["GGUF", "Jinja"]),
        .target(name: "LlamaModel", dependencies: ["TensorKit", "GGUF", "Tokenizer"], swiftSettings: fastMath),
        // Tests build malformed files with the codec's internals, also in release builds.
        .target(name: "AdapterFormat", dependencies: ["LlamaModel", "CZlib"], swiftSettings: [.unsafeFlags(["-enable-testing"])]),
        .target(name: "Hub", dependencies: ["CZlib", "AdapterFormat", "LlamaModel", .product(name: "Crypto", package: "swift-crypto")]),
        // Merge methods, one plugin each; the executables register them.
        .target(name: "MergeSupport", dependencies: ["LlamaModel"], path: "Plugins/MergeSupport", swiftSettings: fastMath),
        .target(name: "LinearMerge", dependencies: ["LlamaModel", "MergeSupport"], path: "Plugins/LinearMerge"),
        .target(name: "CatMerge", dependencies: ["LlamaModel", "MergeSupport"], path: "Plugins/CatMerge"),
        .target(name: "SVDMerge", dependencies: ["LlamaModel", "MergeSupport"], path: "Plugins/SVDMerge"),
        .target(name: "TiesMerge", dependencies: ["LlamaModel", "MergeSupport"], path: "Plugins/TiesMerge"),
        .target(name: "DareMerge", dependencies: ["LlamaModel", "MergeSupport"], path: "Plugins/DareMerge"),
        // Training: the trainer core, and the dataset formats as plugins.
        .target(name: "Training", dependencies: ["LlamaModel", "Tokenizer"], swiftSettings: swift6),
        .target(name: "ChatFormat", dependencies: ["Training"], path: "Plugins/ChatFormat", swiftSettings: swift6),
        .target(name: "CompletionsFormat", dependencies: ["Training"], path: "Plugins/CompletionsFormat", swiftSettings: swift6),
        .target(name: "QAFormat", dependencies: ["Training"], path: "Plugins/QAFormat", swiftSettings: swift6),
        .target(name: "InstructionFormat", dependencies: ["Training"], path: "Plugins/InstructionFormat", swiftSettings: swift6),
        .target(name: "TextFormat", dependencies: ["Training"], path: "Plugins/TextFormat", swiftSettings: swift6),
        .target(name: "PromptPreferenceFormat", dependencies: ["Training"], path: "Plugins/PromptPreferenceFormat", swiftSettings: swift6),
        .target(name: "ImplicitPreferenceFormat", dependencies: ["Training"], path: "Plugins/ImplicitPreferenceFormat", swiftSettings: swift6),
        .target(name: "OpenAIPreferenceFormat", dependencies: ["Training"], path: "Plugins/OpenAIPreferenceFormat", swiftSettings: swift6),
        // Training objectives, one plugin each.
        .target(name: "SFTObjective", dependencies: ["Training", "LlamaModel"], path: "Plugins/SFTObjective", swiftSettings: swift6),
        .target(name: "DPOObjective", dependencies: ["Training", "LlamaModel"], path: "Plugins/DPOObjective", swiftSettings: swift6),
        // Evaluation report writers.
        .target(name: "HTMLReport", dependencies: ["Training"], path: "Plugins/HTMLReport", swiftSettings: swift6),
        .target(name: "MarkdownReport", dependencies: ["Training"], path: "Plugins/MarkdownReport", swiftSettings: swift6),
        // Training jobs: the plugin registry, job specs and the runner shared by the CLI and the daemon.
        .target(name: "Jobs", dependencies: [
            "Training", "Hub", "LlamaModel", "AdapterFormat", "Tokenizer",
            "ChatFormat", "CompletionsFormat", "QAFormat", "InstructionFormat", "TextFormat",
            "PromptPreferenceFormat", "ImplicitPreferenceFormat", "OpenAIPreferenceFormat", "SFTObjective", "DPOObjective",
            .product(name: "Crypto", package: "swift-crypto"),
        ], swiftSettings: swift6),
        // The daemon: the engine owns the model and the compute threads; the server speaks HTTP.
        .target(name: "Engine", dependencies: ["LlamaModel", "Tokenizer", "Hub", "AdapterFormat"], swiftSettings: swift6),
        .target(name: "Server", dependencies: [
            "Engine", "Hub", "LlamaModel", "Tokenizer", "AdapterFormat", "Jobs", "Training",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "MultipartKit", package: "multipart-kit"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: swift6),
        .target(name: "DaemonClient", dependencies: [
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
        ], swiftSettings: swift6),
        .executableTarget(name: "graftd", dependencies: [
            "Server", "LinearMerge", "CatMerge", "SVDMerge", "TiesMerge", "DareMerge",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: swift6),
        .executableTarget(name: "graft", dependencies: [
            "LinearMerge", "CatMerge", "SVDMerge", "TiesMerge", "DareMerge",
            "Training", "ChatFormat", "CompletionsFormat", "QAFormat", "InstructionFormat", "TextFormat",
            "PromptPreferenceFormat", "ImplicitPreferenceFormat", "OpenAIPreferenceFormat", "SFTObjective", "DPOObjective",
            "HTMLReport", "MarkdownReport", "TensorKit", "GGUF", "Tokenizer", "LlamaModel", "AdapterFormat", "Hub",
            "Server", "DaemonClient", "Jobs",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Crypto", package: "swift-crypto"),
        ], swiftSettings: fastMath),
        .target(name: "TestSupport", dependencies: ["GGUF", "LlamaModel", "TensorKit"], path: "Tests/Support"),
        .testTarget(name: "TensorKitTests", dependencies: ["TensorKit", "GGUF", "TestSupport"], swiftSettings: fastMath),
        .testTarget(name: "GGUFTests", dependencies: ["GGUF", "TestSupport"]),
        .testTarget(name: "JinjaTests", dependencies: ["Jinja"], swiftSettings: swift6),
        .testTarget(name: "TokenizerTests", dependencies: ["Tokenizer", "GGUF", "TestSupport"]),
        .testTarget(name: "LlamaModelTests", dependencies: ["LlamaModel", "TensorKit", "GGUF", "Tokenizer", "TestSupport",
                                                          "AdapterFormat", "Training", "DPOObjective"],
                    swiftSettings: fastMath),
        .testTarget(name: "AdapterFormatTests", dependencies: ["AdapterFormat", "LlamaModel", "GGUF", "TestSupport"]),
        .testTarget(name: "HubTests", dependencies: ["Hub", "CZlib", "AdapterFormat", "LlamaModel", "TestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "LlamaModel", "Tokenizer", "GGUF", "TestSupport",
                                                         "AdapterFormat", "CZlib",
                                                         "ChatFormat", "CompletionsFormat", "QAFormat", "InstructionFormat",
                                                         "TextFormat", "PromptPreferenceFormat", "ImplicitPreferenceFormat",
                                                         "OpenAIPreferenceFormat", "SFTObjective", "DPOObjective",
                                                         "HTMLReport", "MarkdownReport"],
                    swiftSettings: swift6),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "LlamaModel", "TensorKit", "Hub", "TestSupport"], swiftSettings: swift6),
        .testTarget(name: "ServerTests", dependencies: [
            "Server", "Engine", "Hub", "LlamaModel", "TensorKit", "AdapterFormat", "TestSupport", "DaemonClient", "LinearMerge",
            .product(name: "HummingbirdTesting", package: "hummingbird"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
        ], exclude: ["openai_sdk_check.py"], swiftSettings: swift6),
        .testTarget(name: "MergePluginsTests", dependencies: ["LlamaModel", "MergeSupport", "LinearMerge", "CatMerge",
                                                             "SVDMerge", "TiesMerge", "DareMerge"]),
    ],
    swiftLanguageModes: [.v5]
)
