import Foundation
import LlamaModel
import TensorKit
import ArgumentParser
import DPOObjective
import SFTObjective
import Training

/// `graft bench --train`: LoRA training speed on the fixed shape the targets are stated for:
/// rank 16 on all seven projections, 4 sequences x 256 tokens per step, the first 64 tokens of
/// each masked, AdamW. `--method dpo` runs the same tokens as 2 preference pairs: a 64-token
/// prompt shared by a chosen and a rejected 192-token completion, so both methods process and
/// label the same number of tokens.
extension Bench {
    struct TrainReport: Encodable {
        var model: String
        var threads: Int
        var method: String
        var rank: Int
        var sequences_per_step: Int
        var tokens_per_sequence: Int
        var masked_prefix: Int
        var steps_timed: Int
        var tokens_per_second_best: Double
        var tokens_per_second_median: Double
        var step_seconds: [Double]
        var peak_rss_mib: Double?
    }

    func runTrain() throws {
        let model = try modelOptions.load(verbose: true)
        let text = String(repeating: "The quick brown fox jumps over the lazy dog while the farmer counts his sheep. "
                          + "Rain fell on the old stone bridge as the river rose through the valley below. ", count: 64)
        let pool = model.tokenizer.encode(text)
        let length = 256, masked = 64, sequences = 4
        var config = TrainingConfig()
        config.lora = LoRAShape(rank: adapterRank, alpha: Float(2 * adapterRank))  // no dropout, as the reference script
        config.epochs = max(2, repeats) + 1
        let objective: any Objective
        switch method {
        case "sft":
            let examples = (0..<sequences).map { s in
                let tokens = Array(pool[(s * 37)..<(s * 37 + length)])
                return TokenizedExample(line: s + 1, tokens: tokens, trained: tokens.indices.map { $0 >= masked })
            }
            config.batchSize = sequences
            objective = SFTObjective(train: examples, validation: [])
        case "dpo":
            let pairs = (0..<sequences / 2).map { p in
                let prompt = Array(pool[(p * 74)..<(p * 74 + masked)])
                let chosen = Array(pool[(p * 74 + masked)..<(p * 74 + length)])
                let rejected = Array(pool[(p * 74 + 37 + masked)..<(p * 74 + 37 + length)])
                return PreferenceExample(line: p + 1, prompt: prompt, chosen: chosen, rejected: rejected)
            }
            config.method = "dpo"
            config.preference = PreferenceSettings()
            config.batchSize = sequences / 2
            objective = DPOObjective(train: pairs, validation: [], loss: DPOLoss())
        default:
            throw ValidationError("--method takes sft or dpo")
        }
        let trainer = try Trainer(model: model, config: config, objective: objective)
        _ = try trainer.step()  // warm-up: scratch buffers, page faults
        var times: [Double] = []
        while !trainer.isFinished {
            let r = try trainer.step()
            times.append(r.seconds)
            Terminal.note(String(format: "train step: %.3f s, %.1f tok/s, loss %.4f", r.seconds, r.tokensPerSecond, r.trainLoss))
        }
        let tokens = Double(sequences * length)
        let sorted = times.sorted()
        let report = TrainReport(model: model.name, threads: ThreadPool.shared.threadCount, method: method, rank: adapterRank,
                                 sequences_per_step: sequences, tokens_per_sequence: length, masked_prefix: masked,
                                 steps_timed: times.count, tokens_per_second_best: tokens / sorted[0],
                                 tokens_per_second_median: tokens / sorted[sorted.count / 2], step_seconds: times,
                                 peak_rss_mib: peakRSS().map { Double($0) / 1048576 })
        Terminal.note(String(format: "training: %.1f tok/s best, %.1f median", report.tokens_per_second_best, report.tokens_per_second_median))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let json = try encoder.encode(report)
        print(String(decoding: json, as: UTF8.self))
        if let output { try json.write(to: URL(fileURLWithPath: output), options: .atomic) }
    }
}
