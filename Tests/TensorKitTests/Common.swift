import GGUF
import TensorKit
import TestSupport
import Testing

/// Visible to every file of this target.
typealias SeededRandom = TestSupport.SeededRandom

func maxAbs(_ x: [Float]) -> Float { x.reduce(0) { max($0, abs($1)) } }

/// Expects `actual` to match `expected` element by element within `tolerance`. A NaN anywhere
/// in `actual` fails (comparisons with NaN are false, so it is checked explicitly); only the
/// first few mismatches are recorded.
func expectClose(_ actual: [Float], _ expected: [Float], tolerance: Float, _ label: @autoclosure () -> String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.count == expected.count, "\(label()): count", sourceLocation: sourceLocation)
    var failures = 0
    for i in 0..<min(actual.count, expected.count) {
        let a = actual[i], e = expected[i]
        if a.isNaN || !(abs(a - e) <= tolerance) {
            failures += 1
            if failures <= 3 {
                Issue.record("\(label()): [\(i)] = \(a), expected \(e) (tolerance \(tolerance))", sourceLocation: sourceLocation)
            }
        }
    }
    if failures > 3 { Issue.record("\(label()): \(failures) mismatches in all", sourceLocation: sourceLocation) }
}

/// A row-major buffer with a row stride wider than its rows, filled with NaN so that any element
/// a kernel fails to write (or writes outside its rows) shows.
struct StridedBuffer {
    let rows: Int, width: Int, stride: Int
    var storage: [Float]

    init(rows: Int, width: Int, stride: Int, fill: Float = .nan) {
        self.rows = rows; self.width = width; self.stride = stride
        storage = [Float](repeating: fill, count: rows * stride)
    }

    /// Copies compact `values` [rows x width] into the strided layout; padding stays as it was.
    init(_ values: [Float], rows: Int, width: Int, stride: Int) {
        self.init(rows: rows, width: width, stride: stride)
        for r in 0..<rows { for c in 0..<width { storage[r * stride + c] = values[r * width + c] } }
    }

    /// The `width`-wide sub-block starting at column `column`, compacted.
    func compact(column: Int = 0, width w: Int? = nil) -> [Float] {
        let w = w ?? width
        var out: [Float] = []
        out.reserveCapacity(rows * w)
        for r in 0..<rows { out += storage[r * stride + column..<r * stride + column + w] }
        return out
    }

    /// True when every padding element (columns `width..<stride`) is still NaN.
    var paddingUntouched: Bool {
        (0..<rows).allSatisfy { r in (width..<stride).allSatisfy { storage[r * stride + $0].isNaN } }
    }
}

enum WeightFormat: String, CaseIterable, CustomTestStringConvertible {
    case f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q2_K, q3_K, q4_K, q5_K, q6_K
    var testDescription: String { rawValue }

    var ggmlType: GGMLType {
        switch self {
        case .f32: .f32
        case .f16: .f16
        case .bf16: .bf16
        case .q4_0: .q4_0
        case .q4_1: .q4_1
        case .q5_0: .q5_0
        case .q5_1: .q5_1
        case .q8_0: .q8_0
        case .q2_K: .q2_K
        case .q3_K: .q3_K
        case .q4_K: .q4_K
        case .q5_K: .q5_K
        case .q6_K: .q6_K
        }
    }

    var panelFormat: PanelMatrix.Format { PanelMatrix.Format(rawValue: ggmlType.name)! }

    /// Formats whose rows may be any multiple of 32 wide (all but the K types, which need 256).
    static let narrowBlocks = allCases.filter { $0.ggmlType.blockSize <= 32 }
}

/// A weight matrix in GGUF row layout and the same matrix as panels.
struct TestWeight {
    let rows: Int, cols: Int, format: WeightFormat
    /// GGUF-encoded rows, one after another.
    let encoded: [UInt8]
    let panels: PanelMatrix

    var rowBytes: Int { format.ggmlType.byteCount(elements: cols) }

    init(rows: Int, cols: Int, format: WeightFormat, encoded: [UInt8]) {
        self.rows = rows; self.cols = cols; self.format = format
        self.encoded = encoded
        panels = encoded.withUnsafeBytes { src in
            PanelMatrix(ggufRows: src.baseAddress!, format: format.panelFormat, rows: rows, cols: cols)
        }
    }

    /// Random values, `Quantize.encode`d row by row.
    static func random(rows: Int, cols: Int, format: WeightFormat, rng: inout SeededRandom) -> TestWeight {
        var bytes: [UInt8] = []
        for r in 0..<rows {
            // Vary the range per row so scales and minimums differ between rows.
            let scale = Float(r % 7 + 1) * 0.2
            bytes += Quantize.encode(rng.floats(cols, in: -scale...scale * 1.5), as: format.ggmlType)
        }
        return TestWeight(rows: rows, cols: cols, format: format, encoded: bytes)
    }

    /// Row `r` decoded by GGUF's plain dequantizer.
    func sourceRow(_ r: Int) throws -> [Float] {
        var out = [Float](repeating: .nan, count: cols)
        try encoded.withUnsafeBytes { src in
            try out.withUnsafeMutableBufferPointer { dst in
                try Dequantize.decode(format.ggmlType, src.baseAddress! + r * rowBytes, into: dst.baseAddress!, count: cols)
            }
        }
        return out
    }

    /// Row `r` as the panel matrix decodes it.
    func panelRow(_ r: Int) -> [Float] {
        var out = [Float](repeating: .nan, count: cols)
        out.withUnsafeMutableBufferPointer { panels.decodeRow(r, into: $0.baseAddress!) }
        return out
    }
}
