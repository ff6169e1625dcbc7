import Foundation
import LlamaModel
import Testing
@testable import AdapterFormat

/// The measurements behind `GraftFile.defaultStorage`: file size per dtype with and without
/// compression, and the error each dtype puts into the delta B·A. Opt-in (RUN_BENCHMARKS=1);
/// prints a Markdown table.
@Suite("storage dtype measurements", .enabled(if: ProcessInfo.processInfo.environment["RUN_BENCHMARKS"] == "1"))
struct StorageMeasurementTests {
    /// Sizes in bytes of the whole adapter stored as `dtype`: plain, deflated, shuffled and deflated.
    private func sizes(_ adapter: LoRAAdapter, _ dtype: StorageType) throws -> (plain: Int, zlib: Int, shuffled: Int) {
        let plain = try GraftFile.encode(adapter, info: sampleInfo, dtype: dtype, compress: false).count
        let shuffled = try GraftFile.encode(adapter, info: sampleInfo, dtype: dtype, compress: true, minimumSaving: 0).count
        // Deflate without the shuffle, to show what the shuffle itself buys.
        var zlib = 0
        for pair in adapter.pairs.values {
            zlib += Compression.deflate(dtype.encode(pair.a)!).count + Compression.deflate(dtype.encode(pair.b)!).count
        }
        return (plain, zlib, shuffled)
    }

    /// Max abs error, max |delta| and Frobenius relative error of B·A after a round trip
    /// through `dtype`, over the pairs of `layers`, accumulated in Float64.
    private func deltaError(_ adapter: LoRAAdapter, _ dtype: StorageType, layers: [Int])
        -> (maxAbs: Double, maxDelta: Double, frobenius: Double) {
        var maxAbs = 0.0, maxDelta = 0.0, errSquares = 0.0, deltaSquares = 0.0
        for (target, pair) in adapter.pairs where layers.contains(target.layer) {
            let aq = dtype.decode(dtype.encode(pair.a)![...]), bq = dtype.decode(dtype.encode(pair.b)![...])
            let r = pair.rank, n = pair.inFeatures
            pair.a.withUnsafeBufferPointer { a in aq.withUnsafeBufferPointer { aq in
                pair.b.withUnsafeBufferPointer { b in bq.withUnsafeBufferPointer { bq in
                    var exact = [Double](repeating: 0, count: n), stored = [Double](repeating: 0, count: n)
                    for o in 0..<pair.outFeatures {
                        for c in 0..<n { exact[c] = 0; stored[c] = 0 }
                        for k in 0..<r {
                            let bx = Double(b[o * r + k]), bs = Double(bq[o * r + k])
                            for c in 0..<n {
                                exact[c] += bx * Double(a[k * n + c])
                                stored[c] += bs * Double(aq[k * n + c])
                            }
                        }
                        for c in 0..<n {
                            let e = abs(exact[c] - stored[c])
                            maxAbs = max(maxAbs, e); maxDelta = max(maxDelta, abs(exact[c]))
                            errSquares += e * e; deltaSquares += exact[c] * exact[c]
                        }
                    }
                }}
            }}
        }
        return (maxAbs, maxDelta, (errSquares / deltaSquares).squareRoot())
    }

    @Test("print file sizes and delta errors per storage dtype")
    func measure() throws {
        let cases: [(String, LoRAAdapter)] = [
            ("fixture (bf16-exact values)", try PEFTAdapter.read(directory: Fixture.adapterDirectory, config: smolConfig)),
            ("trained-like, B ~ N(0, 0.02)", syntheticAdapter(config: smolConfig, rank: 8, alpha: 16, bStd: 0.02, seed: 11)),
            ("early training, B ~ N(0, 1e-5)", syntheticAdapter(config: smolConfig, rank: 8, alpha: 16, bStd: 1e-5, seed: 12)),
        ]
        let layers = [0, 10, 20, 29]
        print("| adapter | dtype | stored | zlib | shuffle+zlib | max abs err of B·A | max abs err / max abs B·A | relative Frobenius err |")
        print("|---|---|---|---|---|---|---|---|")
        for (name, adapter) in cases {
            let rawF32 = adapter.parameterCount * 4
            for dtype in StorageType.allCases {
                let s = try sizes(adapter, dtype)
                let e = deltaError(adapter, dtype, layers: layers)
                func mb(_ n: Int) -> String { String(format: "%.2f MB (%.0f%%)", Double(n) / 1e6, 100 * Double(n) / Double(rawF32)) }
                print("| \(name) | \(dtype.rawValue) | \(mb(s.plain)) | \(mb(s.zlib)) | \(mb(s.shuffled)) | "
                      + String(format: "%.2e | %.2e | %.2e |", e.maxAbs, e.maxAbs / e.maxDelta, e.frobenius))
            }
        }
        print("(errors over the 28 pairs of layers \(layers); percentages of the raw Float32 size)")
    }
}
