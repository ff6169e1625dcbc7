import ArgumentParser
import Foundation
import LlamaModel
import TensorKit

extension LlamaWeights.Storage: ExpressibleByArgument {}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure load time, prefill and decode speed and peak memory; write JSON.",
        discussion: "Prefill runs prompts of 64, 256 and 512 tokens; decode generates 128 tokens greedily at batch 1.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Write the JSON report here as well as to standard output.")
    var output: String?

    @Option(help: "Timed repetitions of each measurement (the best is reported).")
    var repeats = 3

    @Option(name: .customLong("decode-tokens"), help: "Tokens generated in the decode measurement.")
    var decodeTokens = 128

    @Option(help: "Weights in memory: quantized (default) or float32 (expanded once, for comparison).")
    var weights: LlamaWeights.Storage = .quantized

    struct Report: Encodable {
        var model: String
        var weights: String
        var threads: Int
        var load_seconds: Double
        var weights_bytes: Int
        var prefill_tokens_per_second: [String: Double]
        var decode_tokens_per_second: Double
        var decode_tokens: Int
        var peak_rss_bytes: Int?
        var peak_rss_mib: Double?
    }

    func run() throws {
        let t0 = Clock.now
        let model = try modelOptions.load(storage: weights)
        let loadSeconds = Clock.now - t0
        Terminal.note(String(format: "load: %.3f s", loadSeconds))

        // A deterministic prompt of ordinary text tokens.
        let text = String(repeating: "The quick brown fox jumps over the lazy dog while the farmer counts his sheep. ", count: 64)
        let pool = model.tokenizer.encode(text)
        var prefill: [String: Double] = [:]
        for n in [64, 256, 512] {
            let prompt = Array(pool.prefix(n))
            var best = Double.infinity
            for _ in 0..<max(1, repeats) {
                let cache = model.makeCache()
                let s = Clock.now
                _ = try model.forward(prompt, cache: cache, logits: .last(1))
                best = min(best, Clock.now - s)
            }
            prefill[String(n)] = Double(n) / best
            Terminal.note(String(format: "prefill %d tokens: %.1f tok/s", n, Double(n) / best))
        }

        var bestDecode = 0.0
        for _ in 0..<max(1, repeats) {
            let cache = model.makeCache()
            var logits = try model.forward(Array(pool.prefix(8)), cache: cache)
            let s = Clock.now
            for _ in 0..<decodeTokens {
                let next = logits.withUnsafeBufferPointer { Sampler.argmax($0) }
                logits = try model.forward([next], cache: cache)
            }
            bestDecode = max(bestDecode, Double(decodeTokens) / (Clock.now - s))
        }
        Terminal.note(String(format: "decode: %.1f tok/s", bestDecode))

        let rss = peakRSS()
        let report = Report(model: model.name, weights: weights.rawValue, threads: ThreadPool.shared.threadCount, load_seconds: loadSeconds,
                            weights_bytes: model.weights.byteCount, prefill_tokens_per_second: prefill,
                            decode_tokens_per_second: bestDecode, decode_tokens: decodeTokens,
                            peak_rss_bytes: rss, peak_rss_mib: rss.map { Double($0) / 1048576 })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let json = try encoder.encode(report)
        print(String(decoding: json, as: UTF8.self))
        if let output { try json.write(to: URL(fileURLWithPath: output), options: .atomic) }
    }
}
