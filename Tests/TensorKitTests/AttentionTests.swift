import TensorKit
import Testing

/// Serialized: the cases share one pool, and a pool runs one loop at a time.
@Suite("Attention.forward matches Reference.attention", .serialized)
struct AttentionTests {
    static let pool = ThreadPool(threadCount: 2)

    struct Case: CustomTestStringConvertible, Sendable {
        var headDim: Int, rows: Int, positions: Int
        var testDescription: String { "hd=\(headDim) T=\(rows) S=\(positions)" }
    }

    static let cases: [Case] = [16, 64].flatMap { hd in
        [1, 3, 5, 40].flatMap { t in [Case(headDim: hd, rows: t, positions: t), Case(headDim: hd, rows: t, positions: t + 17)] }
    }

    static func run(_ c: Case, q: [Float], keys: [Float], values: [Float], shape: Attention.Shape,
                    pool: ThreadPool) -> StridedBuffer {
        let qw = shape.heads * c.headDim, kvw = shape.kvHeads * c.headDim
        let qs = StridedBuffer(q, rows: c.rows, width: qw, stride: qw + 8)
        let ks = StridedBuffer(keys, rows: c.positions, width: kvw, stride: kvw + 4)
        // Values share the key stride; their padding differs so a mix-up shows.
        var vs = StridedBuffer(values, rows: c.positions, width: kvw, stride: kvw + 4)
        for r in 0..<c.positions { for j in kvw..<kvw + 4 { vs.storage[r * vs.stride + j] = 1e30 } }
        var out = StridedBuffer(rows: c.rows, width: qw, stride: qw + 3)
        qs.storage.withUnsafeBufferPointer { qp in
            ks.storage.withUnsafeBufferPointer { kp in
                vs.storage.withUnsafeBufferPointer { vp in
                    out.storage.withUnsafeMutableBufferPointer { op in
                        Attention.forward(out: op.baseAddress!, ldo: out.stride, q: qp.baseAddress!, ldq: qs.stride,
                                          keys: kp.baseAddress!, values: vp.baseAddress!, ldkv: ks.stride,
                                          rows: c.rows, positions: c.positions, shape: shape, pool: pool)
                    }
                }
            }
        }
        return out
    }

    @Test("grouped-query causal attention, fresh and after a cached prefix, with wide row strides", arguments: cases)
    func matchesReference(c: Case) {
        var rng = SeededRandom(seed: 400 + UInt64(c.headDim * 1000 + c.rows * 10 + c.positions))
        let shape = Attention.Shape(heads: 4, kvHeads: 2, headDim: c.headDim)
        let q = rng.floats(c.rows * 4 * c.headDim, in: -2...2)
        let keys = rng.floats(c.positions * 2 * c.headDim, in: -2...2)
        let values = rng.floats(c.positions * 2 * c.headDim)
        let expected = Reference.attention(q: q, keys: keys, values: values, rows: c.rows, positions: c.positions, shape: shape)
        let out = Self.run(c, q: q, keys: keys, values: values, shape: shape, pool: Self.pool)
        expectClose(out.compact(), expected, tolerance: 2e-5 * maxAbs(values), c.testDescription)
        #expect(out.paddingUntouched, "\(c.testDescription): wrote past the heads")
    }

    @Test("the first query row of a fresh sequence sees only the first value")
    func firstRowCopiesValue() {
        var rng = SeededRandom(seed: 410)
        let c = Case(headDim: 16, rows: 5, positions: 5)
        let shape = Attention.Shape(heads: 4, kvHeads: 2, headDim: 16)
        let values = rng.floats(5 * 32)
        let out = Self.run(c, q: rng.floats(5 * 64), keys: rng.floats(5 * 32), values: values, shape: shape, pool: Self.pool)
        for h in 0..<4 {
            let g = h / 2
            for i in 0..<16 { #expect(abs(out.storage[h * 16 + i] - values[g * 16 + i]) <= 1e-6) }
        }
    }

    @Test("decoding one row at a time against a growing cache equals attending to all rows at once")
    func incrementalEqualsFull() {
        var rng = SeededRandom(seed: 420)
        let shape = Attention.Shape(heads: 4, kvHeads: 2, headDim: 16)
        let total = 9
        let q = rng.floats(total * 64), keys = rng.floats(total * 32), values = rng.floats(total * 32)
        let full = Self.run(Case(headDim: 16, rows: total, positions: total), q: q, keys: keys, values: values,
                            shape: shape, pool: Self.pool).compact()
        for t in 0..<total {
            let step = Self.run(Case(headDim: 16, rows: 1, positions: t + 1), q: Array(q[t * 64..<(t + 1) * 64]),
                                keys: Array(keys[0..<(t + 1) * 32]), values: Array(values[0..<(t + 1) * 32]),
                                shape: shape, pool: Self.pool).compact()
            expectClose(step, Array(full[t * 64..<(t + 1) * 64]), tolerance: 1e-5, "row \(t)")
        }
    }

    @Test("a batch of short sequences equals each sequence alone, bit for bit", arguments: [(16, 3), (64, 3), (24, 2), (64, 1)])
    func batchedEqualsSingle(headDim hd: Int, group: Int) {
        var rng = SeededRandom(seed: 430 + UInt64(hd * 10 + group))
        let shape = Attention.Shape(heads: 2 * group, kvHeads: 2, headDim: hd)
        let qw = shape.heads * hd, kvw = 2 * hd
        let sequences = [(rows: 1, positions: 1), (rows: 1, positions: 37), (rows: 4, positions: 9), (rows: 2, positions: 70)]
        let q = sequences.map { rng.floats($0.rows * qw, in: -2...2) }
        let keys = sequences.map { rng.floats($0.positions * kvw, in: -2...2) }
        let values = sequences.map { rng.floats($0.positions * kvw) }
        let alone = sequences.indices.map { i in
            Self.run(Case(headDim: hd, rows: sequences[i].rows, positions: sequences[i].positions),
                     q: q[i], keys: keys[i], values: values[i], shape: shape, pool: Self.pool).compact()
        }
        // All sequences' rows in one matrix with a wide stride; a sentinel in the padding.
        let rows = sequences.map(\.rows).reduce(0, +), ld = qw + 5
        var out = [Float](repeating: .nan, count: rows * ld)
        let qAll = sequences.indices.flatMap { i in
            (0..<sequences[i].rows).flatMap { t in q[i][t * qw..<(t + 1) * qw] + [Float](repeating: 9, count: 5) }
        }
        for r in 0..<rows { for j in qw..<ld { out[r * ld + j] = -7 } }
        let kv = zip(keys, values).map { (UnsafeMutableBufferPointer<Float>.allocate(capacity: $0.count),
                                          UnsafeMutableBufferPointer<Float>.allocate(capacity: $1.count)) }
        defer { for (k, v) in kv { k.deallocate(); v.deallocate() } }
        for (i, (k, v)) in kv.enumerated() { _ = k.initialize(from: keys[i]); _ = v.initialize(from: values[i]) }
        qAll.withUnsafeBufferPointer { qp in
            out.withUnsafeMutableBufferPointer { op in
                var row = 0
                let batch = sequences.indices.map { i -> Attention.Sequence in
                    defer { row += sequences[i].rows }
                    return .init(q: qp.baseAddress! + row * ld, out: op.baseAddress! + row * ld,
                                 keys: UnsafePointer(kv[i].0.baseAddress!), values: UnsafePointer(kv[i].1.baseAddress!),
                                 rows: sequences[i].rows, positions: sequences[i].positions)
                }
                Attention.forward(batch, ldo: ld, ldq: ld, ldkv: kvw, shape: shape, pool: Self.pool)
            }
        }
        var row = 0
        for (i, expected) in alone.enumerated() {
            for t in 0..<sequences[i].rows {
                #expect(Array(out[(row + t) * ld..<(row + t) * ld + qw]) == Array(expected[t * qw..<(t + 1) * qw]),
                        "sequence \(i), row \(t)")
                #expect(out[(row + t) * ld + qw..<(row + t + 1) * ld].allSatisfy { $0 == -7 }, "padding of sequence \(i)")
            }
            row += sequences[i].rows
        }
    }
}
