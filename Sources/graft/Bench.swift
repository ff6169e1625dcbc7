import AdapterFormat
import ArgumentParser
import Foundation
import Hub
import LlamaModel
import TensorKit

extension LlamaWeights.Storage: ExpressibleByArgument {}

/// A random adapter of `rank` on all seven projections, scaled like a trained one.
func benchAdapterValues(_ config: LlamaConfig, rank: Int, seed: UInt64) -> LoRAAdapter {
    var rng = SeededGenerator(seed: seed)
    func uniform() -> Float { Float(rng.next() >> 40) / Float(1 << 24) * 2 - 1 }
    var pairs: [LoRATarget: LoRAPair] = [:]
    for l in 0..<config.layers {
        for p in Projection.allCases {
            let (out, inF) = config.shape(of: p)
            let a = (0..<rank * inF).map { _ in uniform() / Float(inF).squareRoot() }
            let b = (0..<out * rank).map { _ in uniform() * 0.035 }
            pairs[LoRATarget(layer: l, projection: p)] = LoRAPair(rank: rank, inFeatures: inF, outFeatures: out, a: a, b: b)
        }
    }
    return LoRAAdapter(rank: rank, alpha: Float(2 * rank), pairs: pairs)
}

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure load time, prefill and decode speed and peak memory; write JSON.",
        discussion: "Prefill runs prompts of 64, 256 and 512 tokens; decode generates 128 tokens greedily at batch 1, then 4 and 8 sequences decode together with a rank-16 adapter.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Write the JSON report here as well as to standard output.")
    var output: String?

    @Option(help: "Timed repetitions of each measurement (the best is reported).")
    var repeats = 3

    @Option(name: .customLong("decode-tokens"), help: "Tokens generated in the decode measurement.")
    var decodeTokens = 128

    @Flag(name: .customLong("decode-only"), help: "Skip the prefill measurements.")
    var decodeOnly = false

    @Option(help: "Weights in memory: quantized (default) or float32 (expanded once, for comparison).")
    var weights: LlamaWeights.Storage = .quantized

    @Flag(help: "Measure LoRA training speed instead (rank 16, all projections, 4 x 256 tokens per step, 64 masked).")
    var train = false

    @Flag(help: "Load-test a running daemon over its socket instead (concurrent streams, one or many adapters).")
    var serve = false

    @OptionGroup var serveOptions: BenchServeOptions

    @Option(help: ArgumentHelp("With --train: the objective, sft or dpo (2 pairs of 256-token sequences sharing a 64-token prompt, reference log-probabilities precomputed).", valueName: "sft|dpo"))
    var method = "sft"

    var adapterRank: Int { 16 }

    /// Speed of `decodeTokens` greedy steps after `prompt`.
    func decodeSpeed(_ model: LlamaModel, prompt: [Int], adapters: AdapterMix) throws -> Double {
        let cache = model.makeCache()
        var logits = try model.forward(prompt, cache: cache, adapters: adapters)
        let s = Clock.now
        for _ in 0..<decodeTokens {
            let next = logits.withUnsafeBufferPointer { Sampler.argmax($0) }
            logits = try model.forward([next], cache: cache, adapters: adapters)
        }
        return Double(decodeTokens) / (Clock.now - s)
    }

    /// Aggregate speed of `batch` sequences decoding together, one forward of `batch` one-token
    /// segments per step (the daemon's decode step without its server).
    func batchDecodeSpeed(_ model: LlamaModel, prompt: [Int], adapters: [AdapterMix]) throws -> Double {
        let batch = adapters.count
        let caches = (0..<batch).map { _ in model.makeCache() }
        var next: [Int] = []
        for (cache, mix) in zip(caches, adapters) {
            let logits = try model.forward(prompt, cache: cache, adapters: mix)
            next.append(logits.withUnsafeBufferPointer { Sampler.argmax($0) })
        }
        let steps = max(1, decodeTokens / batch * 2)
        let s = Clock.now
        for _ in 0..<steps {
            let segments = next.indices.map {
                LlamaModel.Segment(tokens: [next[$0]], cache: caches[$0], adapters: adapters[$0], logits: .last(1))
            }
            next = try model.forward(segments).map { row in row.withUnsafeBufferPointer { Sampler.argmax($0) } }
        }
        return Double(steps * batch) / (Clock.now - s)
    }

    /// Stores a random rank-16 adapter on all seven projections in a scratch hub and times
    /// "id to ready to apply": cold (read, decode, validate, prepare) and warm (LRU hit).
    func benchAdapter(_ model: LlamaModel) throws -> (prepared: PreparedAdapter, fileBytes: Int, coldMs: Double, warmMs: Double) {
        let adapter = benchAdapterValues(model.config, rank: adapterRank, seed: 16)
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("graft-bench-\(UInt32.random(in: 0...UInt32.max))")
        defer { try? FileManager.default.removeItem(at: root) }
        let hub = Hub(root: root)
        let info = AdapterInfo(baseModel: model.name, baseModelSHA256: "", tenant: "bench", name: "r16")
        let bytes = try GraftFile.encode(adapter, info: info)
        let id = try hub.publishAdapter(bytes, tenant: "bench", name: "r16")
        var cold = Double.infinity, warm = Double.infinity
        var prepared: PreparedAdapter?
        for _ in 0..<max(10, repeats) {
            let loader = AdapterLoader(hub: hub, config: model.config, baseModelSHA256: nil)
            var s = Clock.now
            prepared = try loader.load(id).adapter
            cold = min(cold, Clock.now - s)
            s = Clock.now
            _ = try loader.load(id)
            warm = min(warm, Clock.now - s)
        }
        Terminal.note(String(format: "adapter rank %d, %d bytes on disk: load cold %.2f ms, warm %.3f ms",
                             adapterRank, bytes.count, cold * 1000, warm * 1000))
        return (prepared!, bytes.count, cold * 1000, warm * 1000)
    }

    struct Report: Encodable {
        var model: String
        var weights: String
        var threads: Int
        var load_seconds: Double
        var weights_bytes: Int
        var prefill_tokens_per_second: [String: Double]
        var decode_tokens_per_second: Double
        var decode_tokens: Int
        var adapter_rank: Int
        var decode_with_adapter_tokens_per_second: Double
        var decode_adapter_ratio: Double
        /// Aggregate decode speed of 4 and 8 sequences stepped together, with the adapter.
        var batched_decode_tokens_per_second: [String: Double]
        /// 8 sequences decoded together, each with a different rank-16 adapter.
        var batched_decode_8_adapters_tokens_per_second: Double
        var adapter_file_bytes: Int
        var adapter_load_cold_ms: Double
        var adapter_load_warm_ms: Double
        /// Peak after load and prefill (before any adapter is made).
        var peak_rss_base_mib: Double?
        /// Peak over the whole run, adapter measurements included.
        var peak_rss_mib: Double?
    }

    func run() async throws {
        if train { return try runTrain() }
        if serve { return serveOptions.withJob ? try await runTrainServe() : try await runServe() }
        let t0 = Clock.now
        let model = try modelOptions.load(storage: weights)
        let loadSeconds = Clock.now - t0
        Terminal.note(String(format: "load: %.3f s", loadSeconds))

        // A deterministic prompt of ordinary text tokens.
        let text = String(repeating: "The quick brown fox jumps over the lazy dog while the farmer counts his sheep. ", count: 64)
        let pool = model.tokenizer.encode(text)
        var prefill: [String: Double] = [:]
        for n in [64, 256, 512] where !decodeOnly {
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

        let prefillRSS = peakRSS()
        // Base and adapter decode runs alternate, so drifts in machine speed hit both alike.
        let prompt = Array(pool.prefix(8))
        let adapterBench = try benchAdapter(model)
        let withMix = AdapterMix(adapterBench.prepared)
        var bestDecode = 0.0, withAdapter = 0.0
        for _ in 0..<max(1, repeats) {
            bestDecode = max(bestDecode, try decodeSpeed(model, prompt: prompt, adapters: .none))
            withAdapter = max(withAdapter, try decodeSpeed(model, prompt: prompt, adapters: withMix))
        }
        Terminal.note(String(format: "decode: %.1f tok/s", bestDecode))
        Terminal.note(String(format: "decode with a rank-%d adapter on all projections: %.1f tok/s (%.2fx)",
                             adapterRank, withAdapter, withAdapter / bestDecode))
        var batched: [String: Double] = [:]
        for batch in [4, 8] {
            var best = 0.0
            for _ in 0..<max(1, repeats) {
                best = max(best, try batchDecodeSpeed(model, prompt: prompt, adapters: Array(repeating: withMix, count: batch)))
            }
            batched[String(batch)] = best
            Terminal.note(String(format: "decode of %d sequences in one batch, with that adapter: %.1f tok/s (%.2fx)",
                                 batch, best, best / withAdapter))
        }
        // Eight sequences, each with an adapter of its own: every step reads eight adapters' matrices.
        let eight = try (0..<8).map { i in
            AdapterMix(try PreparedAdapter(benchAdapterValues(model.config, rank: adapterRank, seed: 200 + UInt64(i)), config: model.config))
        }
        var different = 0.0
        for _ in 0..<max(1, repeats) { different = max(different, try batchDecodeSpeed(model, prompt: prompt, adapters: eight)) }
        Terminal.note(String(format: "decode of 8 sequences in one batch, each with its own adapter: %.1f tok/s (%.2fx of one adapter)",
                             different, different / (batched["8"] ?? different)))

        let rss = peakRSS()
        let report = Report(model: model.name, weights: weights.rawValue, threads: ThreadPool.shared.threadCount, load_seconds: loadSeconds,
                            weights_bytes: model.weights.byteCount, prefill_tokens_per_second: prefill,
                            decode_tokens_per_second: bestDecode, decode_tokens: decodeTokens,
                            adapter_rank: adapterRank, decode_with_adapter_tokens_per_second: withAdapter,
                            decode_adapter_ratio: withAdapter / bestDecode, batched_decode_tokens_per_second: batched,
                            batched_decode_8_adapters_tokens_per_second: different,
                            adapter_file_bytes: adapterBench.fileBytes,
                            adapter_load_cold_ms: adapterBench.coldMs, adapter_load_warm_ms: adapterBench.warmMs,
                            peak_rss_base_mib: prefillRSS.map { Double($0) / 1048576 },
                            peak_rss_mib: rss.map { Double($0) / 1048576 })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let json = try encoder.encode(report)
        print(String(decoding: json, as: UTF8.self))
        if let output { try json.write(to: URL(fileURLWithPath: output), options: .atomic) }
    }
}
