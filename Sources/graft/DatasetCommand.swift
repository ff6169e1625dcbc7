import ArgumentParser
import Foundation
import LlamaModel
import Training

struct DatasetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dataset", abstract: "Check, split and make training data.",
        subcommands: [DatasetCheckCommand.self, DatasetSplit.self, DatasetFromText.self])
}

struct DatasetCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Report a JSONL file's format, rows, token counts, truncation, duplicates, bad lines and training time.",
        discussion: "Exits with status 1 when a line is bad. The time estimate comes from a training pass measured now, on this machine.")

    @Argument(help: ArgumentHelp("Training data, JSON Lines (SFT or preference pairs).", valueName: "file")) var file: String
    @Option(help: "Longest sequence in tokens, as for graft train.") var maxSeqLen = TrainingConfig().maxSeqLen
    @Option(help: "Epochs assumed by the time estimate (default: graft train's for the file's method).") var epochs: Int?
    @Option(help: ArgumentHelp("Prompt template: chat (the model's) or none.", valueName: "chat|none")) var template = "chat"
    @Flag(help: "Skip the speed measurement (no time estimate).") var noEstimate = false
    @OptionGroup var modelOptions: ModelOptions

    func run() throws {
        guard let data = FileManager.default.contents(atPath: file) else { throw CLIError("cannot read \(file)") }
        guard ["chat", "none"].contains(template) else { throw ValidationError("--template takes chat or none") }
        let model = try modelOptions.load()
        let tokenizer = model.tokenizer
        let eos = tokenizer.eosID.map { tokenizer.tokenText($0) } ?? ""
        let options = RenderOptions(chatTemplate: template == "chat" ? tokenizer.chatTemplate : nil, eosText: eos)
        let name = (file as NSString).lastPathComponent
        let check = try DatasetCheck.run(data, name: name, sft: datasetFormats, preference: preferenceFormats,
                                         tokenizer: tokenizer, options: options, maxSeqLen: maxSeqLen)
        print("file:        \(file)")
        print("format:      \(check.format.map { "\($0) (\(check.method == "dpo" ? "preference pairs, --method dpo" : "SFT"))" } ?? "not recognised")")
        print("rows:        \(check.rows) valid, \(check.issues.count + check.moreIssues) bad")
        if check.rows > 0 {
            print(String(format: "tokens:      min %d, median %.0f, max %d, total %d%@", check.minTokens, check.medianTokens,
                         check.maxTokens, check.totalTokens, check.method == "dpo" ? " (prompt + longer completion)" : ""))
            print("truncated:   \(check.truncated) row(s) longer than --max-seq-len \(maxSeqLen)")
            print("duplicates:  \(check.duplicates.count)" + (check.duplicates.isEmpty ? "" : ": "
                + check.duplicates.prefix(10).map { "line \($0.line) repeats line \($0.of)" }.joined(separator: ", ")
                + (check.duplicates.count > 10 ? ", ..." : "")))
            if !noEstimate {
                let speed = try measureTrainingSpeed(model)
                let epochs = self.epochs ?? (check.method == "dpo" ? TrainingConfig.dpoEpochs : TrainingConfig().epochs)
                let seconds = Double(check.epochTokens * epochs) / speed
                print(String(format: "estimate:    %@ for %d epochs (%d tokens per epoch at %.0f tokens/s measured now)",
                             duration(seconds), epochs, check.epochTokens, speed))
            }
        }
        if !check.issues.isEmpty {
            print("bad lines:")
            print(DatasetError(file: name, issues: check.issues, more: check.moreIssues).description)
            throw ExitCode(1)
        }
    }
}

/// Training tokens per second on this machine: a forward and backward pass over 256 tokens
/// (fewer for a model with a shorter context) with the default adapter shape, timed after a
/// warm-up pass.
func measureTrainingSpeed(_ model: LlamaModel) throws -> Double {
    let config = TrainingConfig()
    let lora = TrainableLoRA(shape: config.lora, config: model.config, seed: 1)
    let length = min(256, model.config.contextLength), prompt = length / 4
    let tokens = (0..<length).map { (100 + $0 * 7) % model.config.vocabularySize }
    let seq = TrainingSequence(tokens: tokens, targets: tokens.indices.map { $0 >= prompt && $0 + 1 < tokens.count ? tokens[$0 + 1] : -1 },
                               weight: 1 / Float(length - prompt - 1))
    _ = try model.trainingPass([seq], lora: lora, backward: true)
    let start = Date()
    _ = try model.trainingPass([seq], lora: lora, backward: true)
    return Double(tokens.count) / max(Date().timeIntervalSince(start), 1e-6)
}

struct DatasetSplit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "split", abstract: "Split a JSONL file into seeded train and validation files.",
        discussion: "Writes NAME.train.jsonl and NAME.validation.jsonl next to the input (or in --output-dir); blank lines are dropped, lines are kept verbatim.")

    @Argument(help: ArgumentHelp("A JSON Lines file.", valueName: "file")) var file: String
    @Option(help: "Share of the rows for validation, in (0, 1).") var validation = 0.1
    @Option(help: "Seed of the shuffle.") var seed: UInt64 = 42
    @Option(help: ArgumentHelp("Directory for the two files (default: the input's).", valueName: "dir")) var outputDir: String?

    func run() throws {
        guard validation > 0 && validation < 1 else { throw ValidationError("--validation must be in (0, 1)") }
        guard let data = FileManager.default.contents(atPath: file) else { throw CLIError("cannot read \(file)") }
        guard let text = String(data: data, encoding: .utf8) else { throw CLIError("\(file) is not UTF-8 text") }
        let lines = text.split(separator: "\n").map(String.init).filter { !$0.allSatisfy(\.isWhitespace) }
        guard lines.count >= 2 else { throw CLIError("\(file) has \(lines.count) row(s); a split needs at least 2") }
        let (train, held) = seededSplit(lines, fraction: validation, seed: seed)
        let url = URL(fileURLWithPath: file)
        let dir = outputDir.map { URL(fileURLWithPath: $0) } ?? url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let stem = url.deletingPathExtension().lastPathComponent
        let trainURL = dir.appendingPathComponent("\(stem).train.jsonl"), validURL = dir.appendingPathComponent("\(stem).validation.jsonl")
        try Data(train.map { $0 + "\n" }.joined().utf8).write(to: trainURL, options: .atomic)
        try Data(held.map { $0 + "\n" }.joined().utf8).write(to: validURL, options: .atomic)
        print("\(trainURL.path)\t\(train.count) rows")
        print("\(validURL.path)\t\(held.count) rows")
    }
}

/// A seeded split of `items` (order kept within each part): about `fraction` of them, at
/// least one, for validation.
func seededSplit<T>(_ items: [T], fraction: Double, seed: UInt64) -> ([T], [T]) {
    var rng = SeededGenerator(seed: SeedMix.mix(seed ^ 0x5A11_7000))
    var order = Array(items.indices)
    order.shuffle(using: &rng)
    let n = min(items.count - 1, max(1, Int((Double(items.count) * fraction).rounded())))
    let held = Set(order.prefix(n))
    return (items.indices.filter { !held.contains($0) }.map { items[$0] }, items.indices.filter { held.contains($0) }.map { items[$0] })
}

struct DatasetFromText: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "from-text", abstract: "Turn prose (.txt, Markdown, HTML) into prompt/completion pairs.",
        discussion: """
        Splits each section into sentences (not at decimals, abbreviations such as e.g., Dr. or U.S., or inside \
        quotes); every Nth sentence becomes a prompt and the sentences up to the next prompt its completion. Each \
        heading (or the HTML title) also becomes a prompt whose completion is the section under it. HTML: the visible \
        text of headings, paragraphs and list items; scripts, styles and navigation are dropped. Writes JSON Lines \
        in the completions format ({"prompt", "completion"}) to standard output or --output.
        """)

    @Argument(help: ArgumentHelp("Text, Markdown (.md) or HTML (.html) files.", valueName: "file")) var files: [String]
    @Option(help: "Every Nth sentence is a prompt (at least 2).") var every = 3
    @Flag(help: "A heading's completion is its first paragraph rather than its whole section.") var headingParagraph = false
    @Option(help: ArgumentHelp("Write here instead of standard output.", valueName: "out.jsonl")) var output: String?

    func run() throws {
        guard every >= 2 else { throw ValidationError("--every must be at least 2: a prompt needs a sentence after it") }
        guard !files.isEmpty else { throw ValidationError("give at least one file") }
        var out = ""
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        func json(_ s: String) throws -> String { String(decoding: try encoder.encode(s), as: UTF8.self) }
        var total = 0
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else { throw CLIError("cannot read \(file)") }
            let text = try TextDocument.text(data, name: file)
            let document = TextDocument(text, kind: TextDocument.kind(ofFile: file))
            let pairs = TextPairs.pairs(document, every: every, headingParagraph: headingParagraph)
            for p in pairs { out += "{\"prompt\": \(try json(p.prompt)), \"completion\": \(try json(p.completion))}\n" }
            Terminal.note("\(file): \(document.sections.count) section(s), \(pairs.count) pair(s)")
            total += pairs.count
        }
        if total == 0 { throw CLIError("no pairs: the files hold no section with at least two sentences or a heading with text") }
        if let output {
            try Data(out.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
            Terminal.note("wrote \(total) pairs to \(output)")
        } else {
            print(out, terminator: "")
        }
    }
}
