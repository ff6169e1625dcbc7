import LlamaModel
import MergeSupport
import Testing

@Suite("thin QR and Jacobi SVD")
struct FactorizationTests {
    static func randomColumnMajor(rows: Int, cols: Int, seed: UInt64, zeroColumn: Int? = nil) -> [Double] {
        var rng = SeededGenerator(seed: seed)
        var m = (0..<rows * cols).map { _ in Fixture.uniform(&rng) - 0.5 }
        if let z = zeroColumn { for i in 0..<rows { m[z * rows + i] = 0 } }
        return m
    }

    /// Column-major x [m x k] · y [k x n] -> column-major [m x n].
    static func product(_ x: [Double], _ y: [Double], _ m: Int, _ k: Int, _ n: Int) -> [Double] {
        var out = [Double](repeating: 0, count: m * n)
        for j in 0..<n { for l in 0..<k { for i in 0..<m { out[j * m + i] += x[l * m + i] * y[j * k + l] } } }
        return out
    }

    static func expectOrthonormalColumns(_ q: [Double], rows: Int, cols: Int, skipZero: Bool = false,
                                         sourceLocation: SourceLocation = #_sourceLocation) {
        for i in 0..<cols {
            for j in 0..<cols {
                let dot = (0..<rows).reduce(0.0) { $0 + q[i * rows + $1] * q[j * rows + $1] }
                let ni = (0..<rows).reduce(0.0) { $0 + q[i * rows + $1] * q[i * rows + $1] }
                if skipZero && ni < 1e-20 { continue }
                #expect(abs(dot - (i == j ? 1 : 0)) < 1e-12, "columns \(i), \(j): \(dot)", sourceLocation: sourceLocation)
            }
        }
    }

    @Test("Q · R rebuilds the matrix and Q is orthonormal, on tall, wide, square and rank-deficient shapes",
          arguments: [(9, 4, nil), (4, 9, nil), (7, 7, nil), (12, 5, 2), (1, 3, nil), (5, 1, 0)] as [(Int, Int, Int?)])
    func qr(rows: Int, cols: Int, zeroColumn: Int?) {
        let a = Self.randomColumnMajor(rows: rows, cols: cols, seed: UInt64(rows * 31 + cols), zeroColumn: zeroColumn)
        let qr = HouseholderQR(columnMajor: a, rows: rows, cols: cols)
        let k = qr.steps
        var identity = [Double](repeating: 0, count: k * k)
        for i in 0..<k { identity[i * k + i] = 1 }
        let q = qr.applyQ(identity, count: k)
        Self.expectOrthonormalColumns(q, rows: rows, cols: k)
        // R row-major [k x cols] to column-major.
        let r = (0..<k * cols).map { qr.r[($0 % k) * cols + $0 / k] }
        for i in 0..<k { for j in 0..<min(i, cols) { #expect(qr.r[i * cols + j] == 0) } }
        let rebuilt = Self.product(q, r, rows, k, cols)
        #expect(Fixture.maxAbsDifference(rebuilt, a) < 1e-12)
    }

    @Test("U · S · Vᵀ rebuilds the matrix with orthonormal U, V and descending S",
          arguments: [(8, 5, nil), (5, 8, nil), (6, 6, nil), (7, 4, 1), (1, 4, nil), (3, 1, nil)] as [(Int, Int, Int?)])
    func svd(rows: Int, cols: Int, zeroColumn: Int?) {
        let m = Self.randomColumnMajor(rows: rows, cols: cols, seed: UInt64(rows * 17 + cols), zeroColumn: zeroColumn)
        let svd = JacobiSVD(columnMajor: m, rows: rows, cols: cols)
        #expect(svd.count == min(rows, cols))
        #expect(zip(svd.s, svd.s.dropFirst()).allSatisfy { $0 >= $1 })
        Self.expectOrthonormalColumns(svd.u, rows: rows, cols: svd.count, skipZero: true)
        Self.expectOrthonormalColumns(svd.v, rows: cols, cols: svd.count)
        let us = (0..<rows * svd.count).map { svd.u[$0] * svd.s[$0 / rows] }
        let vt = (0..<svd.count * cols).map { svd.v[($0 / svd.count) + ($0 % svd.count) * cols] }
        #expect(Fixture.maxAbsDifference(Self.product(us, vt, rows, svd.count, cols), m) < 1e-12)
    }

    @Test("a matrix with known singular values gets them back")
    func knownValues() {
        // Q1 · diag(3, 2, 0.5) · Q2ᵀ with Q1, Q2 from QR of random matrices.
        let s = [3.0, 2.0, 0.5]
        let q1 = HouseholderQR(columnMajor: Self.randomColumnMajor(rows: 6, cols: 3, seed: 1), rows: 6, cols: 3)
        let q2 = HouseholderQR(columnMajor: Self.randomColumnMajor(rows: 4, cols: 3, seed: 2), rows: 4, cols: 3)
        let order = [2, 0, 1]  // scrambled, so sorting is exercised
        var d = [Double](repeating: 0, count: 9)
        for (i, o) in order.enumerated() { d[i * 3 + i] = s[o] }
        let left = q1.applyQ(d, count: 3)  // [6 x 3]
        var identity = [Double](repeating: 0, count: 9)
        for i in 0..<3 { identity[i * 3 + i] = 1 }
        let right = q2.applyQ(identity, count: 3)  // [4 x 3]
        let rt = (0..<12).map { right[($0 / 3) + ($0 % 3) * 4] }  // [3 x 4]
        let svd = JacobiSVD(columnMajor: Self.product(left, rt, 6, 3, 4), rows: 6, cols: 4)
        #expect(zip(svd.s, [3, 2, 0.5, 0]).allSatisfy { abs($0 - $1) < 1e-12 }, "\(svd.s)")
    }
}
