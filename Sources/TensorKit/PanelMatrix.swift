/// A weight matrix W [rows x cols] (rows = output features, cols = input features, the
/// convention `out = input · Wᵀ`), stored as panels of 64 consecutive rows.
///
/// Within a panel the data runs along `cols` in blocks of 32, and inside a block k-major:
/// for each column k, the 64 rows' values lie together. Decoding therefore yields the packed
/// `[k][64]` layout the GEMM micro-kernel reads, with no transpose, and a matrix-vector product
/// handles 64 outputs per vector step. Quantized formats keep their bits exactly:
/// - `.q4_1` block: 64 f16 scales d, 64 f16 minimums m, then 32 x 32 bytes of nibbles
///   (byte i of column k: row i in the low nibble, row i + 32 in the high); w = d * q + m.
/// - `.q8_0` block: 64 f16 scales d, then 32 x 64 int8; w = d * q.
/// - `.f32`: `cols` x 64 floats per panel, no blocks; `.f16`/`.bf16` the same with 16-bit values.
/// - the other quantized formats are bit planes (see PanelPlanar.swift).
///
/// Safe to share: the storage is written only by the initializers and read-only afterwards.
public final class PanelMatrix: @unchecked Sendable {
    /// Raw values are the GGUF type names.
    public enum Format: String, Sendable, CaseIterable {
        case f32 = "F32", f16 = "F16", bf16 = "BF16"
        case q4_0 = "Q4_0", q4_1 = "Q4_1", q5_0 = "Q5_0", q5_1 = "Q5_1", q8_0 = "Q8_0"
        case q2_K = "Q2_K", q3_K = "Q3_K", q4_K = "Q4_K", q5_K = "Q5_K", q6_K = "Q6_K"

        /// Columns per stored block (a multiple of 32; 256 for the K types; 1 for plain floats).
        public var blockColumns: Int {
            switch self {
            case .f32, .f16, .bf16: 1
            case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0: 32
            case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K: 256
            }
        }
    }

    public static let width = 64
    public static let block = 32

    public let rows: Int
    public let cols: Int
    public let format: Format
    public let panelCount: Int
    /// Bytes per panel.
    public let panelStride: Int
    let storage: UnsafeMutableRawPointer

    static func blockBytes(_ format: Format) -> Int {
        switch format {
        case .q4_1: return 256 + 32 * 32
        case .q8_0: return 128 + 32 * 64
        default: preconditionFailure("blockBytes: \(format) has no 32-column block")
        }
    }

    /// Bytes of one panel of `cols` columns.
    static func panelBytes(_ format: Format, cols: Int) -> Int {
        switch format {
        case .f32: return cols * 64 * 4
        case .f16, .bf16: return cols * 64 * 2
        case .q4_1, .q8_0: return cols / Self.block * Self.blockBytes(format)
        default:
            let layout = PlanarLayout(format)
            return cols / (32 * layout.groupBlocks) * layout.groupBytes
        }
    }

    init(rows: Int, cols: Int, format: Format) {
        precondition(rows > 0 && cols > 0)
        precondition(cols % format.blockColumns == 0, "\(format) panels need cols % \(format.blockColumns) == 0")
        self.rows = rows
        self.cols = cols
        self.format = format
        panelCount = (rows + Self.width - 1) / Self.width
        panelStride = Self.panelBytes(format, cols: cols)
        storage = .allocate(byteCount: panelCount * panelStride, alignment: 64)
        storage.initializeMemory(as: UInt8.self, repeating: 0, count: panelCount * panelStride)
    }

    deinit { storage.deallocate() }

    /// Bytes held in memory.
    public var byteCount: Int { panelCount * panelStride }

    func panel(_ p: Int) -> UnsafeMutableRawPointer { storage + p * panelStride }

    /// Repacks GGUF Q4_1 rows (20-byte blocks: f16 d, f16 m, 16 bytes where byte j holds
    /// element j low and j + 16 high) without changing any value.
    public convenience init(q4_1Rows src: UnsafeRawPointer, rows: Int, cols: Int) {
        self.init(rows: rows, cols: cols, format: .q4_1)
        let blocks = cols / 32, rowBytes = blocks * 20
        for r in 0..<rows {
            let p = r / 64, j = r % 64
            for b in 0..<blocks {
                let s = src + r * rowBytes + b * 20
                let dst = panel(p) + b * Self.blockBytes(.q4_1)
                dst.storeBytes(of: s.loadUnaligned(as: UInt16.self), toByteOffset: 2 * j, as: UInt16.self)
                dst.storeBytes(of: s.loadUnaligned(fromByteOffset: 2, as: UInt16.self), toByteOffset: 128 + 2 * j, as: UInt16.self)
                let nib = dst + 256
                for e in 0..<32 {
                    let byte = s.load(fromByteOffset: 4 + (e & 15), as: UInt8.self)
                    let q = e < 16 ? byte & 0x0F : byte >> 4
                    // Column e, row j: byte (j % 32) of the column, low half for j < 32.
                    let at = nib + e * 32 + (j & 31)
                    let old = at.load(as: UInt8.self)
                    at.storeBytes(of: j < 32 ? (old & 0xF0) | q : (old & 0x0F) | (q << 4), as: UInt8.self)
                }
            }
        }
    }

    /// Repacks GGUF Q8_0 rows (34-byte blocks: f16 d, 32 int8) without changing any value.
    public convenience init(q8_0Rows src: UnsafeRawPointer, rows: Int, cols: Int) {
        self.init(rows: rows, cols: cols, format: .q8_0)
        let blocks = cols / 32, rowBytes = blocks * 34
        for r in 0..<rows {
            let p = r / 64, j = r % 64
            for b in 0..<blocks {
                let s = src + r * rowBytes + b * 34
                let dst = panel(p) + b * Self.blockBytes(.q8_0)
                dst.storeBytes(of: s.loadUnaligned(as: UInt16.self), toByteOffset: 2 * j, as: UInt16.self)
                for e in 0..<32 {
                    dst.storeBytes(of: s.load(fromByteOffset: 2 + e, as: UInt8.self), toByteOffset: 128 + e * 64 + j, as: UInt8.self)
                }
            }
        }
    }

    /// Repacks rows in GGUF layout (`format`'s raw value names the GGUF type; each row is
    /// `cols` elements, a whole number of that type's blocks) without changing any value.
    /// F32 rows are copied as they are; every other format keeps its bits.
    public convenience init(ggufRows src: UnsafeRawPointer, format: Format, rows: Int, cols: Int) {
        switch format {
        case .q4_1: self.init(q4_1Rows: src, rows: rows, cols: cols)
        case .q8_0: self.init(q8_0Rows: src, rows: rows, cols: cols)
        case .f32:
            self.init(rows: rows, cols: cols) { r, dst in
                for k in 0..<cols {
                    dst[k] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * (r * cols + k), as: UInt32.self)))
                }
            }
        case .f16, .bf16:
            self.init(rows: rows, cols: cols, format: format)
            for r in 0..<rows {
                let dst = panel(r / 64).assumingMemoryBound(to: UInt16.self) + r % 64
                for k in 0..<cols { dst[k * 64] = src.loadUnaligned(fromByteOffset: 2 * (r * cols + k), as: UInt16.self) }
            }
        case .q4_0, .q5_0, .q5_1, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K:
            self.init(rows: rows, cols: cols, format: format)
            repackPlanar(src)
        }
    }

    /// Builds an f32 matrix; `row(r, dst)` writes row r's `cols` values to dst.
    public convenience init(rows: Int, cols: Int, row: (Int, UnsafeMutablePointer<Float>) -> Void) {
        self.init(rows: rows, cols: cols, format: .f32)
        let tmp = UnsafeMutablePointer<Float>.allocate(capacity: cols)
        defer { tmp.deallocate() }
        for r in 0..<rows {
            row(r, tmp)
            let dst = panel(r / 64).assumingMemoryBound(to: Float.self) + r % 64
            for k in 0..<cols { dst[k * 64] = tmp[k] }
        }
    }

    /// Row-major Float32 values, e.g. a LoRA-merged copy.
    public convenience init(rows: Int, cols: Int, values: UnsafePointer<Float>) {
        self.init(rows: rows, cols: cols) { r, dst in dst.update(from: values + r * cols, count: cols) }
    }

    /// Writes row `r` (all `cols` values) as Float32.
    public func decodeRow(_ r: Int, into dst: UnsafeMutablePointer<Float>) {
        precondition(r >= 0 && r < rows)
        let base = panel(r / 64), j = r % 64
        switch format {
        case .f32:
            let p = base.assumingMemoryBound(to: Float.self) + j
            for k in 0..<cols { dst[k] = p[k * 64] }
        case .f16:
            let p = base.assumingMemoryBound(to: UInt16.self) + j
            for k in 0..<cols { dst[k] = Float(Float16(bitPattern: p[k * 64])) }
        case .bf16:
            let p = base.assumingMemoryBound(to: UInt16.self) + j
            for k in 0..<cols { dst[k] = Float(bitPattern: UInt32(p[k * 64]) << 16) }
        case .q4_0, .q5_0, .q5_1, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K:
            decodePlanarRow(UnsafeRawPointer(base), row: j, into: dst)
        case .q4_1:
            for b in 0..<cols / 32 {
                let blk = base + b * Self.blockBytes(.q4_1)
                let d = Float(Float16(bitPattern: blk.loadUnaligned(fromByteOffset: 2 * j, as: UInt16.self)))
                let m = Float(Float16(bitPattern: blk.loadUnaligned(fromByteOffset: 128 + 2 * j, as: UInt16.self)))
                for e in 0..<32 {
                    let byte = blk.load(fromByteOffset: 256 + e * 32 + (j & 31), as: UInt8.self)
                    let q = j < 32 ? byte & 0x0F : byte >> 4
                    dst[b * 32 + e] = d * Float(q) + m
                }
            }
        case .q8_0:
            for b in 0..<cols / 32 {
                let blk = base + b * Self.blockBytes(.q8_0)
                let d = Float(Float16(bitPattern: blk.loadUnaligned(fromByteOffset: 2 * j, as: UInt16.self)))
                for e in 0..<32 {
                    dst[b * 32 + e] = d * Float(blk.load(fromByteOffset: 128 + e * 64 + j, as: Int8.self))
                }
            }
        }
    }
}
