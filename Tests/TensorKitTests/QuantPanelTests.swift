import GGUF
import TensorKit
import Testing

/// Every GGUF type as panels: the bits kept (decodeRow equals GGUF's dequantizer), the memory
/// close to the file's, and every path `Linear` uses equal to plain arithmetic on the decoded rows.
@Suite("Every GGUF type as panels", .serialized)
struct QuantPanelTests {
    static let pool = ThreadPool(threadCount: 3)

    /// Byte offsets of the f16 fields in one GGUF block of `type`.
    static func halfFields(_ type: GGMLType) -> [Int] {
        switch type {
        case .q4_0, .q5_0, .q8_0: [0]
        case .q4_1, .q5_1, .q4_K, .q5_K: [0, 2]
        case .q2_K: [80, 82]
        case .q3_K: [108]
        case .q6_K: [208]
        case .f16: Array(stride(from: 0, to: 2 * type.blockSize, by: 2))
        default: []
        }
    }

    /// Rows of uniformly random bytes, except that every f16 field is a finite half (any sign,
    /// zero and subnormals included) and F32/BF16 values are finite.
    static func randomBits(rows: Int, cols: Int, format: WeightFormat, rng: inout SeededRandom) -> TestWeight {
        let type = format.ggmlType
        if format == .f32 || format == .bf16 {
            return TestWeight.random(rows: rows, cols: cols, format: format, rng: &rng)
        }
        var bytes = (0..<rows * type.byteCount(elements: cols)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        for b in 0..<bytes.count / type.typeSize {
            for at in halfFields(type) {
                var h = UInt16.random(in: 0...0xFFFF, using: &rng)
                if (h >> 10) & 0x1F == 0x1F { h &= ~0x4000 }
                bytes[b * type.typeSize + at] = UInt8(h & 0xFF)
                bytes[b * type.typeSize + at + 1] = UInt8(h >> 8)
            }
        }
        return TestWeight(rows: rows, cols: cols, format: format, encoded: bytes)
    }

    static func expectRowsExact(_ w: TestWeight, _ label: String) throws {
        for r in 0..<w.rows {
            let source = try w.sourceRow(r), panel = w.panelRow(r)
            if source.map(\.bitPattern) != panel.map(\.bitPattern) {
                let j = source.indices.first { source[$0].bitPattern != panel[$0].bitPattern } ?? 0
                Issue.record("\(label) row \(r): element \(j) is \(panel[j]), GGUF decodes \(source[j])")
                return
            }
        }
    }

    @Test("decodeRow equals Dequantize.decode bit for bit, for encoded values and for arbitrary bits",
          arguments: WeightFormat.allCases)
    func decodeRowExact(format: WeightFormat) throws {
        var rng = SeededRandom(seed: 300 + UInt64(format.ggmlType.id))
        for rows in [1, 63, 65, 130] {
            for cols in [256, 512] {
                let w = TestWeight.random(rows: rows, cols: cols, format: format, rng: &rng)
                #expect(w.panels.rows == rows && w.panels.cols == cols && w.panels.format == format.panelFormat)
                try Self.expectRowsExact(w, "\(format) \(rows)x\(cols)")
                try Self.expectRowsExact(Self.randomBits(rows: rows, cols: cols, format: format, rng: &rng),
                                         "\(format) \(rows)x\(cols) arbitrary bits")
            }
        }
    }

    @Test("panels take at most 1.1x the GGUF bytes of their rows (F16/BF16 stay 16-bit)", arguments: WeightFormat.allCases)
    func memory(format: WeightFormat) {
        var rng = SeededRandom(seed: 310)
        let w = TestWeight.random(rows: 64, cols: 512, format: format, rng: &rng)
        let perRow = Double(w.panels.byteCount) / 64, gguf = Double(w.rowBytes)
        if format == .f32 {
            #expect(perRow == gguf)
        } else {
            #expect(perRow <= 1.1 * gguf, "\(format): \(perRow) bytes a row in panels, \(gguf) in GGUF")
        }
        if format == .f16 || format == .bf16 { #expect(perRow == 2 * 512) }
    }

    /// out = x · Wᵀ in Double from the GGUF-decoded rows.
    static func plainProject(_ x: [Float], rows m: Int, _ w: TestWeight) throws -> [Float] {
        var out = [Float](repeating: 0, count: m * w.rows)
        for r in 0..<w.rows {
            let row = try w.sourceRow(r)
            for i in 0..<m {
                var s = 0.0
                for k in 0..<w.cols { s += Double(x[i * w.cols + k]) * Double(row[k]) }
                out[i * w.rows + r] = Float(s)
            }
        }
        return out
    }

    @Test("Linear.project on the matrix-vector and the GEMM paths equals the plain product of the decoded rows",
          arguments: WeightFormat.allCases)
    func project(format: WeightFormat) throws {
        var rng = SeededRandom(seed: 320 + UInt64(format.ggmlType.id))
        let k = 512
        let weights = [130, 64].map { TestWeight.random(rows: $0, cols: k, format: format, rng: &rng) }
        for m in [1, 3, 7] {
            let x = rng.floats(m * k, in: -2...2)
            let expected = try weights.map { try Self.plainProject(x, rows: m, $0) }
            let tol = try LinearTests.tolerance(k: k, x: x, weights: weights)
            for minRows in [1, 1000] {
                LinearTests.check(weights: weights, m: m, k: k, xStride: k + 3, outPad: 5, expected: expected, x: x,
                                  tolerance: tol, label: "\(format) m=\(m) gemmMinRows=\(minRows)", gemmMinRows: minRows)
            }
        }
    }

    @Test("Linear.backward (transposed panels) equals the plain product with the decoded rows",
          arguments: WeightFormat.allCases)
    func backward(format: WeightFormat) throws {
        var rng = SeededRandom(seed: 330 + UInt64(format.ggmlType.id))
        let cols = 256
        let a = TestWeight.random(rows: 96, cols: cols, format: format, rng: &rng)
        let b = TestWeight.random(rows: 40, cols: cols, format: format, rng: &rng)
        let m = 5, k = 96 + 40
        let dy = rng.floats(m * k)
        var dx = [Float](repeating: .nan, count: m * cols)
        Linear.backward(dy, rows: m, ldy: k, weights: [.init(a.panels), .init(b.panels)], into: &dx, ldx: cols,
                        accumulate: false, pool: Self.pool)
        var w: [[Float]] = []
        for r in 0..<96 { w.append(try a.sourceRow(r)) }
        for r in 0..<40 { w.append(try b.sourceRow(r)) }
        var expected = [Float](repeating: 0, count: m * cols)
        var wMax: Float = 0
        for row in w { wMax = max(wMax, maxAbs(row)) }
        for i in 0..<m {
            for c in 0..<cols {
                var s = 0.0
                for o in 0..<k { s += Double(dy[i * k + o]) * Double(w[o][c]) }
                expected[i * cols + c] = Float(s)
            }
        }
        expectClose(dx, expected, tolerance: 1e-5 * Float(k).squareRoot() * maxAbs(dy) * wMax, "\(format) dX")
    }
}
