import DPOObjective
import Foundation
import LlamaModel
import SFTObjective
import Tokenizer
import Training

/// A job's objective with its data loaded and tokenized, and a one-line summary of the data.
public struct PreparedObjective: @unchecked Sendable {  // handed once from the loader to the job's runner
    public var objective: any Objective
    public var summary: String
}

extension JobSpec {
    /// Reads and tokenizes the data the way the method needs it (the validation split is
    /// seeded, so a resumed job gets the same one). Bad data throws `DatasetError` naming
    /// file:line and the field; `note` receives progress lines.
    public func makeObjective(model: LlamaModel,
                              note: @escaping @Sendable (String) -> Void = { _ in }) throws -> PreparedObjective {
        var config = self.config
        // Nothing longer than the model's context can be trained on.
        config.maxSeqLen = min(config.maxSeqLen, model.config.contextLength)
        let tokenizer = model.tokenizer
        var template: ChatTemplate?
        if config.chatTemplate {
            guard let t = tokenizer.chatTemplate else { throw JobError("the model has no chat template; use --template none") }
            template = t
        }
        let eos = tokenizer.eosID.map { tokenizer.tokenText($0) } ?? ""
        let render = RenderOptions(chatTemplate: template, eosText: eos)
        let fraction = validation == nil ? config.validationSplit : 0
        switch config.method {
        case "sft":
            let settings = DatasetLoader.Settings(render: render, maxSeqLen: config.maxSeqLen, truncate: config.truncate,
                                                  lossOn: config.lossOn)
            let loader = DatasetLoader(formats: TrainingPlugins.datasetFormats)
            let bytes = try data.read()
            let dataset: LoadedDataset
            do {
                dataset = try loader.load(bytes, name: data.name, tokenizer: tokenizer, settings: settings)
            } catch let error as DatasetError {
                if looksLikePreferences(bytes) {
                    throw JobError("\(data.name) holds preference pairs (chosen/rejected); train on it with the dpo method")
                }
                throw error
            }
            var (train, validationSet) = dataset.split(fraction: fraction, seed: config.seed)
            if let v = validation {
                validationSet = try loader.load(try v.read(), name: v.name, tokenizer: tokenizer, settings: settings).examples
            }
            let summary = "\(train.count) training and \(validationSet.count) validation examples (\(dataset.format) format"
                + (dataset.truncated > 0 ? ", \(dataset.truncated) truncated to \(config.maxSeqLen) tokens" : "")
                + (dataset.dropped > 0 ? ", \(dataset.dropped) without trainable tokens skipped" : "") + ")"
            return PreparedObjective(objective: SFTObjective(train: train, validation: validationSet), summary: summary)
        case "dpo":
            let settings = config.preference ?? PreferenceSettings()
            guard let kind = DPOLoss.Kind(rawValue: settings.lossType) else {
                throw JobError("loss type: unknown '\(settings.lossType)'; expected sigmoid, ipo or hinge")
            }
            let loader = PreferenceLoader(formats: TrainingPlugins.preferenceFormats)
            let loaded = try loader.load(try data.read(), name: data.name, tokenizer: tokenizer, options: render,
                                         maxSeqLen: config.maxSeqLen)
            var (train, validationSet) = loaded.split(fraction: fraction, seed: config.seed)
            if let v = validation {
                validationSet = try loader.load(try v.read(), name: v.name, tokenizer: tokenizer, options: render,
                                                maxSeqLen: config.maxSeqLen).examples
            }
            let summary = "\(train.count) training and \(validationSet.count) validation pairs (\(loaded.format) format"
                + (loaded.truncated > 0 ? ", \(loaded.truncated) truncated to \(config.maxSeqLen) tokens" : "")
                + (loaded.dropped > 0 ? ", \(loaded.dropped) skipped: prompt too long or completions equal once cut" : "") + ")"
            let started = Date()
            let objective = DPOObjective(
                train: train, validation: validationSet,
                loss: DPOLoss(beta: settings.beta, kind: kind, labelSmoothing: settings.labelSmoothing)
            ) { done, total in
                if done == total || done % 64 == 0 {
                    note(String(format: "reference log-probabilities: %d/%d pairs (%.0f s)", done, total,
                                Date().timeIntervalSince(started)))
                }
            }
            return PreparedObjective(objective: objective, summary: summary)
        default:
            throw JobError("method: unknown '\(config.method)'; expected one of \(TrainingPlugins.methods.joined(separator: ", "))")
        }
    }
}

/// Whether the first JSON line of `data` is a preference pair (used to pick the method when
/// none is given, and to explain a failed SFT load).
public func looksLikePreferences(_ data: Data) -> Bool {
    guard let text = String(data: data, encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { !$0.allSatisfy(\.isWhitespace) }),
          let value = try? JSONDecoder().decode(JSON.self, from: Data(line.utf8)), let object = value.object
    else { return false }
    return TrainingPlugins.preferenceFormats.contains { $0.detect(object) }
}
