import GGUF
import TensorKit
import Testing

@Suite("PanelMatrix keeps every weight exactly")
struct PanelMatrixTests {
    static let rowCounts = [1, 63, 65, 130]
    static let colCounts = [32, 96, 576]

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

    @Test("decodeRow equals Dequantize.decode of the same GGUF row, bit for bit",
          arguments: WeightFormat.narrowBlocks)
    func decodeRowMatchesGGUF(format: WeightFormat) throws {
        var rng = SeededRandom(seed: 100)
        for rows in Self.rowCounts {
            for cols in Self.colCounts {
                let w = TestWeight.random(rows: rows, cols: cols, format: format, rng: &rng)
                #expect(w.panels.rows == rows && w.panels.cols == cols)
                #expect(w.panels.panelCount == (rows + 63) / 64)
                try Self.expectRowsExact(w, "\(format) \(rows)x\(cols)")
            }
        }
    }

    @Test("every nibble and byte pattern survives repacking, not just those Quantize produces",
          arguments: [WeightFormat.q4_1, .q8_0])
    func arbitraryBlockBytes(format: WeightFormat) throws {
        var rng = SeededRandom(seed: 101)
        let rows = 70, cols = 64
        var bytes = TestWeight.random(rows: rows, cols: cols, format: format, rng: &rng).encoded
        // Keep each block's f16 scale (and minimum) but replace its quantized bytes with noise.
        let block = format.ggmlType.typeSize, header = format == .q4_1 ? 4 : 2
        for b in 0..<bytes.count / block {
            for i in header..<block { bytes[b * block + i] = UInt8.random(in: 0...255, using: &rng) }
        }
        try Self.expectRowsExact(TestWeight(rows: rows, cols: cols, format: format, encoded: bytes), "\(format) noise")
    }

    @Test("an f32 matrix built from row-major values returns each row, for widths that are not multiples of 32")
    func f32Values() {
        var rng = SeededRandom(seed: 102)
        for (rows, cols) in [(1, 1), (3, 7), (65, 33), (64, 100)] {
            let values = rng.floats(rows * cols)
            let m = values.withUnsafeBufferPointer { PanelMatrix(rows: rows, cols: cols, values: $0.baseAddress!) }
            for r in 0..<rows {
                var row = [Float](repeating: .nan, count: cols)
                row.withUnsafeMutableBufferPointer { m.decodeRow(r, into: $0.baseAddress!) }
                #expect(row == Array(values[r * cols..<(r + 1) * cols]), "\(rows)x\(cols) row \(r)")
            }
        }
    }

    @Test("quantized panels take fewer bytes than f32 ones, in proportion to the format")
    func byteCounts() {
        var rng = SeededRandom(seed: 103)
        let q4 = TestWeight.random(rows: 65, cols: 96, format: .q4_1, rng: &rng).panels
        let q8 = TestWeight.random(rows: 65, cols: 96, format: .q8_0, rng: &rng).panels
        let f = TestWeight.random(rows: 65, cols: 96, format: .f32, rng: &rng).panels
        // Two panels of 64 rows; per 32 columns: Q4_1 20 bytes a row, Q8_0 34, f32 128.
        #expect(q4.byteCount == 2 * 3 * 64 * 20)
        #expect(q8.byteCount == 2 * 3 * 64 * 34)
        #expect(f.byteCount == 2 * 96 * 64 * 4)
    }
}
