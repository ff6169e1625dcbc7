import TensorKit
import Testing

/// Serialized: these tests share one pool.
@Suite("Linear.project matches Reference.project", .serialized)
struct LinearTests {
    static let pool = ThreadPool(threadCount: 3)
    static let inputRows = [1, 2, 5, 6, 7, 13, 64]


    static func tolerance(k: Int, x: [Float], weights: [TestWeight]) throws -> Float {
        var wMax: Float = 0
        for w in weights { for r in 0..<w.rows { wMax = max(wMax, maxAbs(try w.sourceRow(r))) } }
        return 1e-5 * Float(k).squareRoot() * maxAbs(x) * wMax
    }

    /// Projects `x` [m x k] through all `weights` in one call, writing them side by side into one
    /// output buffer whose row stride exceeds their total width, and checks each against the
    /// reference and the padding against stray writes.
    static func check(weights: [TestWeight], m: Int, k: Int, xStride: Int, outPad: Int,
                      expected: [[Float]], x: [Float], tolerance: Float, label: String, gemmMinRows: Int? = nil) {
        let xs = StridedBuffer(x, rows: m, width: k, stride: xStride)
        let total = weights.reduce(0) { $0 + $1.rows }
        var out = StridedBuffer(rows: m, width: total, stride: total + outPad)
        var columns: [Int] = []
        var next = 0
        for w in weights { columns.append(next); next += w.rows }
        xs.storage.withUnsafeBufferPointer { xp in
            out.storage.withUnsafeMutableBufferPointer { op in
                let outputs = weights.indices.map { i in
                    Linear.Output(weights[i].panels, op.baseAddress! + columns[i], ldo: total + outPad)
                }
                Linear.project(xp.baseAddress!, rows: m, ldx: xStride, into: outputs, pool: pool,
                               gemmMinRows: gemmMinRows ?? Linear.gemmMinRows)
            }
        }
        for (i, w) in weights.enumerated() {
            expectClose(out.compact(column: columns[i], width: w.rows), expected[i], tolerance: tolerance,
                        "\(label) output \(i) (\(w.rows) rows)")
        }
        #expect(out.paddingUntouched, "\(label): a write landed past the outputs")
    }

    @Test("several weights of different heights in one call, for every input height, on both the matrix-vector and the GEMM path",
          arguments: WeightFormat.narrowBlocks)
    func severalWeights(format: WeightFormat) throws {
        var rng = SeededRandom(seed: 200 + UInt64(format.rawValue.count))
        let k = 96
        let weights = [576, 192, 192, 100].map { TestWeight.random(rows: $0, cols: k, format: format, rng: &rng) }
        for m in Self.inputRows {
            let x = rng.floats(m * k, in: -2...2)
            let expected = weights.map { Reference.project(x: x, rows: m, weight: $0.panels) }
            let tol = try Self.tolerance(k: k, x: x, weights: weights)
            for minRows in [nil, 1, 1000] {
                Self.check(weights: weights, m: m, k: k, xStride: k + 5, outPad: 7, expected: expected, x: x,
                           tolerance: tol, label: "\(format) m=\(m) gemmMinRows=\(minRows.map(String.init) ?? "default")",
                           gemmMinRows: minRows)
            }
        }
    }

    @Test("a deep input (576 columns) with the default output stride matches on both paths",
          arguments: WeightFormat.narrowBlocks)
    func deepInput(format: WeightFormat) throws {
        var rng = SeededRandom(seed: 210 + UInt64(format.rawValue.count))
        let k = 576
        let w = TestWeight.random(rows: 65, cols: k, format: format, rng: &rng)
        for m in [1, 7] {
            let x = rng.floats(m * k)
            let expected = Reference.project(x: x, rows: m, weight: w.panels)
            let tol = try Self.tolerance(k: k, x: x, weights: [w])
            for minRows in [1, 1000] {
                var out = [Float](repeating: .nan, count: m * w.rows)
                x.withUnsafeBufferPointer { xp in
                    out.withUnsafeMutableBufferPointer { op in
                        Linear.project(xp.baseAddress!, rows: m, ldx: k, into: [Linear.Output(w.panels, op.baseAddress!)],
                                       pool: Self.pool, gemmMinRows: minRows)
                    }
                }
                expectClose(out, expected, tolerance: tol, "\(format) k=\(k) m=\(m) gemmMinRows=\(minRows)")
            }
        }
    }

    @Test("the two paths agree with each other on the same inputs")
    func pathsAgree() {
        var rng = SeededRandom(seed: 220)
        let k = 64
        let w = TestWeight.random(rows: 130, cols: k, format: .q4_1, rng: &rng)
        let m = 5
        let x = rng.floats(m * k)
        var results: [[Float]] = []
        for minRows in [1, 1000] {
            var out = [Float](repeating: .nan, count: m * w.rows)
            x.withUnsafeBufferPointer { xp in
                out.withUnsafeMutableBufferPointer { op in
                    Linear.project(xp.baseAddress!, rows: m, ldx: k, into: [Linear.Output(w.panels, op.baseAddress!)],
                                   pool: Self.pool, gemmMinRows: minRows)
                }
            }
            results.append(out)
        }
        expectClose(results[0], results[1], tolerance: 1e-4 * maxAbs(results[1]), "GEMM vs matrix-vector")
    }

    @Test("zero input rows write nothing")
    func zeroRows() {
        var rng = SeededRandom(seed: 230)
        let w = TestWeight.random(rows: 10, cols: 32, format: .q8_0, rng: &rng)
        var out = [Float](repeating: .nan, count: 10)
        let x = [Float](repeating: 1, count: 32)
        x.withUnsafeBufferPointer { xp in
            out.withUnsafeMutableBufferPointer { op in
                Linear.project(xp.baseAddress!, rows: 0, ldx: 32, into: [Linear.Output(w.panels, op.baseAddress!)], pool: Self.pool)
            }
        }
        #expect(out.allSatisfy { $0.isNaN })
    }
}
