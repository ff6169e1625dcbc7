import AdapterFormat
import ArgumentParser
import DPOObjective
import Foundation
import Hub
import Jobs
import LlamaModel
import Training

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate an adapter on a JSONL file, optionally beside the base model, and write a report.",
        discussion: """
        SFT data: loss, perplexity, mean token accuracy and exact match of the greedy answer against the target \
        (case, surrounding white space and punctuation ignored); rows with "must_contain": [words] also score \
        whether the answer contains them. Preference data: TRL's DPO metrics of the adapter against its reference \
        (the adapter its training started from, else the base). \
        The report lists every row worst first, with the job's loss curve when the adapter came from a job; \
        .html writes one self-contained page, .md Markdown.
        """)

    @Argument(help: ArgumentHelp("The adapter (tenant/name[@version]).", valueName: "adapter")) var adapter: String
    @Argument(help: ArgumentHelp("Evaluation data, JSON Lines (SFT formats or preference pairs).", valueName: "file")) var file: String
    @Flag(help: "Evaluate the base model on the same rows and show both.") var baseToo = false
    @Option(help: ArgumentHelp("Write a report (out.html or out.md).", valueName: "file")) var report: String?
    @Flag(help: "Print the numbers as JSON on standard output.") var json = false
    @Option(help: "Longest greedy answer in tokens.") var maxNewTokens = 64
    @Option(help: "Evaluate only the first N rows.") var limit: Int?
    @Option(help: ArgumentHelp("Prompt template: chat (the model's) or none.", valueName: "chat|none")) var template = "chat"
    @OptionGroup var modelOptions: ModelOptions

    func run() throws {
        guard ["chat", "none"].contains(template) else { throw ValidationError("--template takes chat or none") }
        let writer: (any ReportWriter)? = try report.map { path in
            let ext = (path as NSString).pathExtension.lowercased()
            guard let w = reportWriters.first(where: { $0.fileExtensions.contains(ext) }) else {
                throw ValidationError("--report: unknown extension '.\(ext)'; expected "
                    + reportWriters.flatMap(\.fileExtensions).map { ".\($0)" }.joined(separator: ", "))
            }
            return w
        }
        guard let data = FileManager.default.contents(atPath: file) else { throw CLIError("cannot read \(file)") }
        let hub = modelOptions.registryOptions.hub
        let (id, lora, info) = try readAdapter(hub, adapter)
        let model = try modelOptions.load(verbose: true)
        let tokenizer = model.tokenizer
        let eos = tokenizer.eosID.map { tokenizer.tokenText($0) } ?? ""
        let options = RenderOptions(chatTemplate: template == "chat" ? tokenizer.chatTemplate : nil, eosText: eos)
        let name = (file as NSString).lastPathComponent
        var result: EvalReport
        if looksLikePreferences(data) {
            // The reference is the one the adapter was trained against: its starting adapter, else the base.
            let config = info.extra["training_config"].flatMap { try? JSONDecoder().decode(TrainingConfig.self, from: Data($0.utf8)) }
            let reference = try config?.initAdapter.map { try readAdapter(hub, $0) }
            result = try evaluatePreferences(data, name: name, model: model, adapter: lora, reference: reference?.1,
                                             options: options)
            result.reference = reference?.0.description
        } else {
            result = try evaluateSFT(data, name: name, model: model, adapter: lora, options: options)
        }
        result.adapterID = id.description
        result.baseModel = info.baseModel
        if let job = info.extra["job_id"], let dir = try? hub.job(job) {
            result.job = job
            let curve = LossCurve(events: dir.events())
            result.trainCurve = curve.train.map { .init(step: $0.step, loss: $0.loss) }
            result.validationCurve = curve.validation.map { .init(step: $0.step, loss: $0.loss) }
        }
        if let writer, let report {
            try Data(writer.render(result).utf8).write(to: URL(fileURLWithPath: report), options: .atomic)
            Terminal.note("wrote \(report)")
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(result), as: UTF8.self))
        } else {
            printSummary(result)
        }
    }

    func evaluateSFT(_ data: Data, name: String, model: LlamaModel, adapter: LoRAAdapter, options: RenderOptions) throws -> EvalReport {
        let (_, lines) = try DatasetLoader(formats: datasetFormats).parse(data, name: name, options: options)
        // Key words per line, read from the raw objects.
        let raw = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        var items: [Evaluator.Item] = []
        for (line, pieces) in lines.prefix(limit ?? Int.max) {
            var words: [String] = []
            if let object = (try? JSONDecoder().decode(JSON.self, from: Data(raw[line - 1].utf8)))?.object, let list = object["must_contain"] {
                guard let array = list.array, array.allSatisfy({ $0.string != nil }) else {
                    throw DatasetError(file: name, line: line, field: "must_contain", "expected an array of strings")
                }
                words = array.compactMap(\.string)
            }
            items.append(Evaluator.Item(line: line, pieces: pieces, mustContain: words))
        }
        var evaluator = Evaluator(model: model)
        evaluator.maxNewTokens = maxNewTokens
        var report = EvalReport(adapterID: "", baseModel: "", file: file, kind: "sft", rowCount: items.count)
        func note(_ who: String) -> (Int) -> Void {
            { n in if n == items.count || n % 10 == 0 { Terminal.note("\(who): \(n)/\(items.count) rows") } }
        }
        let tuned = try evaluator.answers(items, adapter: adapter, progress: note("adapter"))
        report.adapter = tuned.summary
        var base: [EvalReport.Answer]?
        if baseToo {
            let b = try evaluator.answers(items, adapter: nil, progress: note("base"))
            report.base = b.summary
            base = b.answers
        }
        for (i, item) in items.enumerated() {
            let (prompt, target) = evaluator.split(item)!
            report.rows.append(EvalReport.Row(line: item.line, prompt: displayPrompt(prompt), target: evaluator.strip(target),
                                              mustContain: item.mustContain, adapter: tuned.answers[i], base: base?[i]))
        }
        report.sortWorstFirst()
        return report
    }

    func evaluatePreferences(_ data: Data, name: String, model: LlamaModel, adapter: LoRAAdapter, reference: LoRAAdapter?,
                             options: RenderOptions) throws -> EvalReport {
        let loaded = try PreferenceLoader(formats: preferenceFormats).load(data, name: name, tokenizer: model.tokenizer,
                                                                           options: options, maxSeqLen: TrainingConfig().maxSeqLen)
        let pairs = Array(loaded.examples.prefix(limit ?? Int.max))
        let objective = DPOObjective(train: [], validation: pairs, loss: DPOLoss())
        let context = ObjectiveContext(model: model, lora: try TrainableLoRA(adapter: adapter, config: model.config),
                                       config: TrainingConfig())
        try objective.prepare(context, reference: try reference.map { try TrainableLoRA(adapter: $0, config: model.config) })
        var report = EvalReport(adapterID: "", baseModel: "", file: file, kind: "dpo", rowCount: pairs.count)
        let result = try objective.evaluatePairs(.validation, limit: nil, context: context)
        let e = result?.evaluation
        report.preference = [Metric("loss", e?.loss ?? 0)] + (e?.metrics ?? [])
        let tokenizer = model.tokenizer
        report.pairs = zip(pairs, result?.rewards ?? []).map { p, r in
            EvalReport.Pair(line: p.line, prompt: displayPrompt(tokenizer.decode(p.prompt)),
                            chosen: Evaluator(model: model).strip(tokenizer.decode(p.chosen)),
                            rejected: Evaluator(model: model).strip(tokenizer.decode(p.rejected)),
                            chosenReward: r.chosen, rejectedReward: r.rejected)
        }
        report.sortWorstFirst()
        if baseToo { Terminal.note("--base-too: on preference data the reference is the comparison; nothing more to score") }
        return report
    }

    func printSummary(_ r: EvalReport) {
        print("adapter: \(r.adapterID) on \(r.baseModel); \(r.rowCount) rows of \(r.file)")
        func show(_ who: String, _ s: EvalReport.Summary) {
            print(String(format: "%@ loss %.4f  perplexity %.3f  token accuracy %.3f  exact match %.3f", who, s.loss, s.perplexity,
                         s.meanTokenAccuracy, s.exactMatch) + (s.mustContain.map { String(format: "  key words %.3f", $0) } ?? ""))
        }
        if let a = r.adapter { show("adapter:", a) }
        if let b = r.base { show("base:   ", b) }
        if r.preference != nil { print("reference: \(r.reference ?? "the base model")") }
        for m in r.preference ?? [] { print(String(format: "%@ %.4f", m.name.padding(toLength: 20, withPad: " ", startingAt: 0), m.value)) }
    }

    /// A rendered chat prompt as a reader wants it in a report: its last user message (the
    /// whole text when it is not a ChatML prompt).
    func displayPrompt(_ prompt: String) -> String {
        guard let start = prompt.range(of: "<|im_start|>user\n", options: .backwards) else { return prompt }
        let rest = prompt[start.upperBound...]
        return String(rest[..<(rest.range(of: "<|im_end|>")?.lowerBound ?? rest.endIndex)])
    }
}
