#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import GGUF
import TensorKit
import Testing

/// Single-core matrix-vector speed per weight type, in billions of weights per second (the
/// figures in docs/MODELS.md). Timing only, so it runs on request:
/// `GRAFT_KERNEL_BENCH=1 swift test -c release --filter KernelSpeed` (GRAFT_KERNEL_BENCH may
/// also name the shape, e.g. `576x576`, and GRAFT_KERNEL_TYPES a comma-separated list of types).
@Suite("Matrix-vector speed per type", .enabled(if: getenv("GRAFT_KERNEL_BENCH") != nil), .serialized)
struct KernelSpeedTests {
    static var shape: (rows: Int, cols: Int) {
        let spec = String(cString: getenv("GRAFT_KERNEL_BENCH"))
        let parts = spec.split(separator: "x").compactMap { Int($0) }
        return parts.count == 2 ? (parts[0], parts[1]) : (2048, 2048)
    }

    static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }

    @Test("one thread, best of several runs")
    func speed() {
        let pool = ThreadPool(threadCount: 1)
        let (rows, cols) = Self.shape
        var types = WeightFormat.allCases.filter { $0 != .f32 && $0 != .bf16 }
        if let list = getenv("GRAFT_KERNEL_TYPES") {
            let names = String(cString: list).split(separator: ",").map(String.init)
            types = types.filter { names.contains($0.rawValue) }
        }
        var rng = SeededRandom(seed: 7)
        let x = rng.floats(cols, in: -1...1)
        var out = [Float](repeating: 0, count: rows)
        var line: [String] = []
        for format in types {
            if cols % format.ggmlType.blockSize != 0 { continue }
            // Real quantized values (random bytes could hold subnormal scales).
            let w = TestWeight.random(rows: rows, cols: cols, format: format, rng: &rng)
            let output = Linear.Output(w.panels, &out)
            let calls = max(3, 40_000_000 / (rows * cols))
            var best = Double.infinity
            for _ in 0..<7 {
                let start = Self.now()
                for _ in 0..<calls { Linear.project(x, rows: 1, ldx: cols, into: [output], pool: pool) }
                best = min(best, (Self.now() - start) / Double(calls))
            }
            let rate = Double(rows * cols) / best / 1e9
            line.append("\(format.rawValue) \(String(format: "%.1f", rate))")
            print("matvec \(rows)x\(cols) \(format.rawValue): \(String(format: "%.2f", best * 1e6)) µs, \(String(format: "%.1f", rate)) G weights/s")
        }
        print("matvec \(rows)x\(cols) summary: " + line.joined(separator: ", "))
    }
}
