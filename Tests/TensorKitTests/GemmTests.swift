import TensorKit
import Testing

@Suite("Gemm.multiply matches Reference.matmul")
struct GemmTests {
    static let ms = [1, 5, 6, 7, 13]
    static let ns = [1, 63, 64, 65, 130]
    static let ks = [1, 7, 64, 100]

    /// C (+)= A · op(B) with every operand in a buffer whose row stride exceeds its width.
    static func multiply(m: Int, n: Int, k: Int, a: [Float], b: [Float], transposeB: Bool,
                         c: inout StridedBuffer, accumulate: Bool) {
        let aBuf = StridedBuffer(a, rows: m, width: k, stride: k + 3)
        let bRows = transposeB ? n : k, bCols = transposeB ? k : n
        let bBuf = StridedBuffer(b, rows: bRows, width: bCols, stride: bCols + 5)
        var scratch = [Float](repeating: .nan, count: Gemm.multiplyScratchSize(m: m, k: k))
        let ldc = c.stride
        aBuf.storage.withUnsafeBufferPointer { ap in
            bBuf.storage.withUnsafeBufferPointer { bp in
                c.storage.withUnsafeMutableBufferPointer { cp in
                    scratch.withUnsafeMutableBufferPointer { sp in
                        Gemm.multiply(m: m, n: n, k: k, a: ap.baseAddress!, lda: aBuf.stride, b: bp.baseAddress!, ldb: bBuf.stride,
                                      transposeB: transposeB, c: cp.baseAddress!, ldc: ldc, accumulate: accumulate,
                                      scratch: sp.baseAddress!)
                    }
                }
            }
        }
    }

    @Test("odd shapes, B plain or transposed, C overwritten or accumulated into", arguments: [false, true])
    func oddShapes(transposeB: Bool) {
        var rng = SeededRandom(seed: transposeB ? 301 : 300)
        for m in Self.ms {
            for n in Self.ns {
                for k in Self.ks {
                    let a = rng.floats(m * k), b = rng.floats(k * n)
                    let product = Reference.matmul(m: m, n: n, k: k, a: a, b: b, transposeB: transposeB)
                    let tol = 3e-6 * Float(k).squareRoot() + 1e-6
                    let label = "m=\(m) n=\(n) k=\(k) transposeB=\(transposeB)"

                    var fresh = StridedBuffer(rows: m, width: n, stride: n + 2)
                    Self.multiply(m: m, n: n, k: k, a: a, b: b, transposeB: transposeB, c: &fresh, accumulate: false)
                    expectClose(fresh.compact(), product, tolerance: tol, label)
                    #expect(fresh.paddingUntouched, "\(label): wrote past n")

                    let initial = rng.floats(m * n, in: -3...3)
                    var summed = StridedBuffer(initial, rows: m, width: n, stride: n + 2)
                    Self.multiply(m: m, n: n, k: k, a: a, b: b, transposeB: transposeB, c: &summed, accumulate: true)
                    expectClose(summed.compact(), zip(initial, product).map { $0 + $1 }, tolerance: tol + 1e-6, "\(label) accumulate")
                    #expect(summed.paddingUntouched, "\(label) accumulate: wrote past n")
                }
            }
        }
    }

    @Test("a full 6 x 64 tile accumulates through the direct store path too")
    func fullTileAccumulate() {
        var rng = SeededRandom(seed: 302)
        let m = 12, n = 128, k = 33
        let a = rng.floats(m * k), b = rng.floats(n * k)
        let product = Reference.matmul(m: m, n: n, k: k, a: a, b: b, transposeB: true)
        var c = StridedBuffer([Float](repeating: 1, count: m * n), rows: m, width: n, stride: n)
        Self.multiply(m: m, n: n, k: k, a: a, b: b, transposeB: true, c: &c, accumulate: true)
        Self.multiply(m: m, n: n, k: k, a: a, b: b, transposeB: true, c: &c, accumulate: true)
        expectClose(c.compact(), product.map { 1 + 2 * $0 }, tolerance: 1e-4, "twice accumulated")
    }

    @Test("packA lays out slivers of 6 rows k-major and zero-pads the last")
    func packA() {
        let m = 7, k = 3, lda = 5
        let a = (0..<m * lda).map(Float.init)
        var packed = [Float](repeating: .nan, count: Gemm.packedASize(m: m, k: k))
        #expect(packed.count == 2 * 6 * k)
        a.withUnsafeBufferPointer { ap in
            packed.withUnsafeMutableBufferPointer { Gemm.packA(ap.baseAddress!, lda: lda, m: m, k: k, into: $0.baseAddress!) }
        }
        for s in 0..<2 {
            for kk in 0..<k {
                for r in 0..<6 {
                    let row = s * 6 + r
                    #expect(packed[s * 6 * k + kk * 6 + r] == (row < m ? Float(row * lda + kk) : 0))
                }
            }
        }
    }
}
