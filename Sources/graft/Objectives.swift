import DPOObjective
import Foundation
import LlamaModel
import SFTObjective
import Tokenizer
import Training

/// Builds a run's objective from its spec: reads and tokenizes the data the way the method
/// needs it. Returns the objective and a one-line summary of the data.
func makeObjective(_ spec: JobSpec, model: LlamaModel) throws -> (any Objective, String) {
    var config = spec.config
    // Nothing longer than the model's context can be trained on.
    config.maxSeqLen = min(config.maxSeqLen, model.config.contextLength)
    let tokenizer = model.tokenizer
    var template: ChatTemplate?
    if config.chatTemplate {
        guard let t = tokenizer.chatTemplate else { throw CLIError("the model has no chat template; use --template none") }
        template = t
    }
    let eos = tokenizer.eosID.map { tokenizer.tokenText($0) } ?? ""
    let render = RenderOptions(chatTemplate: template, eosText: eos)
    let name = (spec.data.path as NSString).lastPathComponent
    let fraction = spec.validation == nil ? config.validationSplit : 0
    switch config.method {
    case "sft":
        let settings = DatasetLoader.Settings(render: render, maxSeqLen: config.maxSeqLen, truncate: config.truncate,
                                              lossOn: config.lossOn)
        let loader = DatasetLoader(formats: datasetFormats)
        let dataset: LoadedDataset
        do {
            dataset = try loader.load(try spec.data.read(), name: name, tokenizer: tokenizer, settings: settings)
        } catch let error as DatasetError {
            if looksLikePreferences(try spec.data.read()) {
                throw CLIError("\(name) holds preference pairs (chosen/rejected); train on it with --method dpo")
            }
            throw error
        }
        var (train, validation) = dataset.split(fraction: fraction, seed: config.seed)
        if let v = spec.validation {
            validation = try loader.load(try v.read(), name: (v.path as NSString).lastPathComponent, tokenizer: tokenizer,
                                         settings: settings).examples
        }
        let summary = "\(train.count) training and \(validation.count) validation examples (\(dataset.format) format"
            + (dataset.truncated > 0 ? ", \(dataset.truncated) truncated to \(config.maxSeqLen) tokens" : "")
            + (dataset.dropped > 0 ? ", \(dataset.dropped) without trainable tokens skipped" : "") + ")"
        return (SFTObjective(train: train, validation: validation), summary)
    case "dpo":
        let settings = config.preference ?? PreferenceSettings()
        guard let kind = DPOLoss.Kind(rawValue: settings.lossType) else {
            throw CLIError("--loss-type: unknown '\(settings.lossType)'; expected sigmoid, ipo or hinge")
        }
        let loader = PreferenceLoader(formats: preferenceFormats)
        let data = try loader.load(try spec.data.read(), name: name, tokenizer: tokenizer, options: render,
                                   maxSeqLen: config.maxSeqLen)
        var (train, validation) = data.split(fraction: fraction, seed: config.seed)
        if let v = spec.validation {
            validation = try loader.load(try v.read(), name: (v.path as NSString).lastPathComponent, tokenizer: tokenizer,
                                         options: render, maxSeqLen: config.maxSeqLen).examples
        }
        let summary = "\(train.count) training and \(validation.count) validation pairs (\(data.format) format"
            + (data.truncated > 0 ? ", \(data.truncated) truncated to \(config.maxSeqLen) tokens" : "")
            + (data.dropped > 0 ? ", \(data.dropped) skipped: prompt too long or completions equal once cut" : "") + ")"
        let started = Date()
        let objective = DPOObjective(
            train: train, validation: validation,
            loss: DPOLoss(beta: settings.beta, kind: kind, labelSmoothing: settings.labelSmoothing)
        ) { done, total in
            if done == total || done % 64 == 0 {
                Terminal.note(String(format: "reference log-probabilities: %d/%d pairs (%.0f s)", done, total,
                                     Date().timeIntervalSince(started)))
            }
        }
        return (objective, summary)
    default:
        throw CLIError("--method: unknown '\(config.method)'; expected one of \(objectiveMethods.joined(separator: ", "))")
    }
}

/// Whether the first JSON line of `data` is a preference pair (used to pick the method when
/// none is given, and to explain a failed SFT load).
func looksLikePreferences(_ data: Data) -> Bool {
    guard let text = String(data: data, encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { !$0.allSatisfy(\.isWhitespace) }),
          let value = try? JSONDecoder().decode(JSON.self, from: Data(line.utf8)), let object = value.object
    else { return false }
    return preferenceFormats.contains { $0.detect(object) }
}
