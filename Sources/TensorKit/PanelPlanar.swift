// Bit-plane panel formats: Q4_0, Q5_0, Q5_1 and the K quants, with their GGUF bits kept.
//
// A panel is a run of groups; a group covers `groupBlocks` blocks of 32 columns (1 for the
// 32-element types, 8 = one 256-element super-block for the K types):
//   header: `headerFields` x 64 f16, field f of row j at 128f + 2j
//           (Q4_0/Q5_0: d; Q5_1: d, m; Q2_K/Q4_K/Q5_K: d, dmin; Q3_K/Q6_K: d)
//   then per block: `scaleBytes` x 64 bytes, byte s of row j at 64s + j
//           (Q4_K/Q5_K: 6-bit scale, 6-bit min; Q2_K: the two packed scale|min<<4 bytes of
//            its 16-column halves; Q3_K: the two scales minus 32, Q6_K the two scales, int8)
//   then the bit planes of the 32 x 64 quantized values q, in this order when present. Row j
//   of a column is its byte lane b = 4(j % 16) + j / 16 in a 64-byte vector, so that read as
//   16 32-bit lanes, byte k of lanes 0 ..< 16 holds rows 16k ..< 16k + 16:
//     nibbles: 64 bytes per two columns; byte b holds column 2p (low half) and 2p + 1 (high)
//     2 bits:  64 bytes per four columns; byte b holds column 4p + i in bits 2i..2i+1
//     1 bit:   64 bytes per eight columns; byte b holds column 8p + i in bit i
//   q = nibble | 2-bit << 4 | 1-bit << 4 (with nibbles; Q6_K, Q5 types),
//   q = 2-bit | 1-bit << 2 (Q3_K, Q2_K).
// A row's value is A · (q − offset) (+ B), with A and B formed exactly as ggml does:
//   Q4_0/Q5_0: A = d; Q5_1: A = d, B = m; Q4_K/Q5_K/Q2_K: A = d·sc, B = −(dmin·m);
//   Q3_K/Q6_K: A = d·sc. So `decodeRow` equals GGUF's dequantizer bit for bit.

struct PlanarLayout {
    let groupBlocks: Int, headerFields: Int, scaleBytes: Int
    let nibbles: Bool, twoBits: Bool, oneBit: Bool

    init(_ format: PanelMatrix.Format) {
        switch format {
        case .q4_0: (groupBlocks, headerFields, scaleBytes, nibbles, twoBits, oneBit) = (1, 1, 0, true, false, false)
        case .q5_0: (groupBlocks, headerFields, scaleBytes, nibbles, twoBits, oneBit) = (1, 1, 0, true, false, true)
        case .q5_1: (groupBlocks, headerFields, scaleBytes, nibbles, twoBits, oneBit) = (1, 2, 0, true, false, true)
        case .q2_K: (groupBlocks, headerFields, scaleBytes, nibbles, twoBits, oneBit) = (8, 2, 2, false, true, false)
        case .q3_K: (groupBlocks, headerFields, scaleBytes, nibbles, twoBits, oneBit) = (8, 1, 2, false, true, true)
        case .q4_K: (groupBlocks, headerFields, scaleBytes, nibbles, twoBits, oneBit) = (8, 2, 2, true, false, false)
        case .q5_K: (groupBlocks, headerFields, scaleBytes, nibbles, twoBits, oneBit) = (8, 2, 2, true, false, true)
        case .q6_K: (groupBlocks, headerFields, scaleBytes, nibbles, twoBits, oneBit) = (8, 1, 2, true, true, false)
        default: preconditionFailure("\(format) is not a bit-plane format")
        }
    }

    /// The byte lane of row j (0 ..< 64) in a column's 64 plane positions.
    static func lane(_ j: Int) -> Int { 4 * (j % 16) + j / 16 }

    var headerBytes: Int { 128 * headerFields }
    var planeBytes: Int { (nibbles ? 1024 : 0) + (twoBits ? 512 : 0) + (oneBit ? 256 : 0) }
    var blockBytes: Int { 64 * scaleBytes + planeBytes }
    var groupBytes: Int { headerBytes + groupBlocks * blockBytes }
    /// Offsets within a panel of block b's group header and of its block.
    func header(_ b: Int) -> Int { b / groupBlocks * groupBytes }
    func block(_ b: Int) -> Int { header(b) + headerBytes + b % groupBlocks * blockBytes }
}

extension PanelMatrix {
    /// Repacks GGUF rows of a bit-plane format into the panels.
    func repackPlanar(_ src: UnsafeRawPointer) {
        let layout = PlanarLayout(format)
        let ggufBlock = 32 * layout.groupBlocks
        let typeSize = Self.ggufTypeSize(format), rowBytes = cols / ggufBlock * typeSize
        var header = [UInt16](repeating: 0, count: 2)
        var scales = [UInt8](repeating: 0, count: 16)
        var q = [UInt8](repeating: 0, count: ggufBlock)
        for r in 0..<rows {
            let base = panel(r / 64), j = r % 64
            for g in 0..<cols / ggufBlock {
                unpackGGUF(src + r * rowBytes + g * typeSize, header: &header, scales: &scales, q: &q)
                let h = base + g * layout.groupBytes
                for f in 0..<layout.headerFields { h.storeBytes(of: header[f], toByteOffset: 128 * f + 2 * j, as: UInt16.self) }
                for i in 0..<layout.groupBlocks {
                    let blk = base + layout.block(g * layout.groupBlocks + i)
                    for s in 0..<layout.scaleBytes { blk.storeBytes(of: scales[i * 2 + s], toByteOffset: 64 * s + j, as: UInt8.self) }
                    let planes = blk + 64 * layout.scaleBytes
                    for e in 0..<32 {
                        let v = q[i * 32 + e]
                        var high = v
                        var at = planes
                        let b = PlanarLayout.lane(j)
                        if layout.nibbles {
                            let byte = at + 64 * (e / 2) + b
                            let old = byte.load(as: UInt8.self)
                            byte.storeBytes(of: e % 2 == 0 ? (old & 0xF0) | (v & 15) : (old & 0x0F) | (v & 15) << 4, as: UInt8.self)
                            high = v >> 4; at += 1024
                        }
                        if layout.twoBits {
                            let byte = at + 64 * (e / 4) + b
                            byte.storeBytes(of: byte.load(as: UInt8.self) | (high & 3) << UInt8(2 * (e % 4)), as: UInt8.self)
                            high >>= 2; at += 512
                        }
                        if layout.oneBit {
                            let byte = at + 64 * (e / 8) + b
                            byte.storeBytes(of: byte.load(as: UInt8.self) | (high & 1) << UInt8(e % 8), as: UInt8.self)
                        }
                    }
                }
            }
        }
    }

    static func ggufTypeSize(_ format: Format) -> Int {
        switch format {
        case .q4_0: 18
        case .q5_0: 22
        case .q5_1: 24
        case .q2_K: 84
        case .q3_K: 110
        case .q4_K: 144
        case .q5_K: 176
        case .q6_K: 210
        default: preconditionFailure("\(format) is not a bit-plane format")
        }
    }

    /// One GGUF block of this format: its f16 header fields, the scale bytes of each
    /// 32-column block (two each), and every element's q (offset not subtracted).
    private func unpackGGUF(_ p: UnsafeRawPointer, header: inout [UInt16], scales: inout [UInt8], q: inout [UInt8]) {
        let u8 = { (k: Int) in p.load(fromByteOffset: k, as: UInt8.self) }
        let u16 = { (k: Int) in UInt16(littleEndian: p.loadUnaligned(fromByteOffset: k, as: UInt16.self)) }
        /// Nibble of element i of a 32-element block's 16 bytes at `at`.
        func nibble32(_ at: Int, _ i: Int) -> UInt8 { i < 16 ? u8(at + i) & 15 : u8(at + i - 16) >> 4 }
        /// The 2-bit value of K element i in the 64 bytes at `at`.
        func two(_ at: Int, _ i: Int) -> UInt8 { (u8(at + 32 * (i / 128) + i % 32) >> UInt8(2 * ((i % 128) / 32))) & 3 }
        switch format {
        case .q4_0:
            header[0] = u16(0)
            for i in 0..<32 { q[i] = nibble32(2, i) }
        case .q5_0, .q5_1:
            let at = format == .q5_0 ? 2 : 4
            header[0] = u16(0); header[1] = u16(2)
            let qh = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: at, as: UInt32.self))
            for i in 0..<32 { q[i] = nibble32(at + 4, i) | UInt8((qh >> UInt32(i)) & 1) << 4 }
        case .q2_K:
            header[0] = u16(80); header[1] = u16(82)
            for s in 0..<16 { scales[s] = u8(s) }
            for i in 0..<256 { q[i] = two(16, i) }
        case .q3_K:
            header[0] = u16(108)
            for k in 0..<16 {
                let low = u8(96 + k % 8), high = u8(104 + k % 4)
                let sc = (k < 8 ? low & 15 : low >> 4) | ((high >> UInt8(2 * (k / 4))) & 3) << 4
                scales[k] = UInt8(bitPattern: Int8(Int(sc) - 32))
            }
            for i in 0..<256 { q[i] = two(32, i) | ((u8(i % 32) >> UInt8(i / 32)) & 1) << 2 }
        case .q4_K, .q5_K:
            header[0] = u16(0); header[1] = u16(2)
            for j in 0..<8 {
                let b = { (k: Int) in u8(4 + k) }
                if j < 4 {
                    scales[2 * j] = b(j) & 63; scales[2 * j + 1] = b(j + 4) & 63
                } else {
                    scales[2 * j] = (b(j + 4) & 15) | (b(j - 4) >> 6) << 4
                    scales[2 * j + 1] = (b(j + 4) >> 4) | (b(j) >> 6) << 4
                }
            }
            let qs = format == .q4_K ? 16 : 48
            for i in 0..<256 {
                let byte = u8(qs + 32 * (i / 64) + i % 32)
                q[i] = i % 64 < 32 ? byte & 15 : byte >> 4
                if format == .q5_K { q[i] |= ((u8(16 + i % 32) >> UInt8(i / 32)) & 1) << 4 }
            }
        case .q6_K:
            header[0] = u16(208)
            for s in 0..<16 { scales[s] = u8(192 + s) }
            for i in 0..<256 {
                let h = i / 128, t = (i % 128) / 32, l = i % 32
                let low = u8(64 * h + 32 * (t % 2) + l)
                q[i] = (t < 2 ? low & 15 : low >> 4) | ((u8(128 + 32 * h + l) >> UInt8(2 * t)) & 3) << 4
            }
        default:
            preconditionFailure("\(format) is not a bit-plane format")
        }
    }

    /// Row j of panel `base`, decoded with the reference's float operations.
    func decodePlanarRow(_ base: UnsafeRawPointer, row j: Int, into dst: UnsafeMutablePointer<Float>) {
        let layout = PlanarLayout(format)
        let half = { (p: UnsafeRawPointer, k: Int) in Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: k, as: UInt16.self))) }
        let offset: Float = switch format {
        case .q4_0: 8
        case .q5_0: 16
        case .q3_K: 4
        case .q6_K: 32
        default: 0
        }
        let hasMin = format == .q5_1 || format == .q2_K || format == .q4_K || format == .q5_K
        for b in 0..<cols / 32 {
            let head = base + layout.header(b), blk = base + layout.block(b)
            let d = half(head, 2 * j)
            let second = layout.headerFields > 1 ? half(head, 128 + 2 * j) : 0
            for sb in 0..<2 {
                // A and B of this 16-column half: value = A · (q − offset) (+ B).
                let a: Float, bTerm: Float
                switch format {
                case .q4_K, .q5_K:
                    a = d * Float(blk.load(fromByteOffset: j, as: UInt8.self))
                    bTerm = -(second * Float(blk.load(fromByteOffset: 64 + j, as: UInt8.self)))
                case .q2_K:
                    let packed = blk.load(fromByteOffset: 64 * sb + j, as: UInt8.self)
                    a = d * Float(packed & 15); bTerm = -(second * Float(packed >> 4))
                case .q3_K, .q6_K:
                    a = d * Float(blk.load(fromByteOffset: 64 * sb + j, as: Int8.self)); bTerm = 0
                default:  // Q4_0, Q5_0, Q5_1
                    a = d; bTerm = second
                }
                for e in 16 * sb..<16 * sb + 16 {
                    var at = blk + 64 * layout.scaleBytes
                    var q: UInt8 = 0, shift: UInt8 = 0
                    let lane = PlanarLayout.lane(j)
                    if layout.nibbles {
                        let byte = at.load(fromByteOffset: 64 * (e / 2) + lane, as: UInt8.self)
                        q = e % 2 == 0 ? byte & 15 : byte >> 4
                        shift = 4; at += 1024
                    }
                    if layout.twoBits {
                        let byte = at.load(fromByteOffset: 64 * (e / 4) + lane, as: UInt8.self)
                        q |= ((byte >> UInt8(2 * (e % 4))) & 3) << shift
                        shift += 2; at += 512
                    }
                    if layout.oneBit {
                        let byte = at.load(fromByteOffset: 64 * (e / 8) + lane, as: UInt8.self)
                        q |= ((byte >> UInt8(e % 8)) & 1) << shift
                    }
                    let scaled = a * (Float(q) - offset)
                    dst[b * 32 + e] = hasMin ? scaled + bTerm : scaled
                }
            }
        }
    }
}
