/// Thin singular value decomposition M = U · diag(S) · Vᵀ by one-sided (Hestenes) Jacobi
/// rotations (Demmel & Veselić, "Jacobi's method is more accurate than QR", SIAM J. Matrix
/// Anal. Appl. 13(4), 1992), in Double: accurate for small matrices, such as the
/// Σrank x Σrank core of a merge.
public struct JacobiSVD: Sendable {
    /// Shape of the decomposed matrix.
    public let rows: Int, cols: Int
    /// min(rows, cols): the number of singular triplets.
    public let count: Int
    /// Left singular vectors, column-major [rows x count]; a zero singular value's column is zero.
    public let u: [Double]
    /// Singular values, descending.
    public let s: [Double]
    /// Right singular vectors, column-major [cols x count].
    public let v: [Double]

    /// Rotation stops when every pair of columns has |cos angle| below this (but not below
    /// the rounding noise of a dot product over `rows` values).
    static func tolerance(rows: Int) -> Double { max(1e-14, Double(rows) * Double.ulpOfOne) }
    static let maxSweeps = 60

    /// Decomposes the column-major [rows x cols] matrix `m`.
    public init(columnMajor m: [Double], rows: Int, cols: Int) {
        precondition(rows > 0 && cols > 0 && m.count == rows * cols, "SVD shape mismatch")
        self.rows = rows; self.cols = cols; count = min(rows, cols)
        if rows >= cols {
            (u, s, v) = Self.tall(m, rows: rows, cols: cols)
        } else {
            // Mᵀ = U' S V'ᵀ  ⇒  M = V' S U'ᵀ.
            var t = [Double](repeating: 0, count: m.count)
            for j in 0..<cols {
                for i in 0..<rows { t[i * cols + j] = m[j * rows + i] }
            }
            (v, s, u) = Self.tall(t, rows: cols, cols: rows)
        }
    }

    /// rows >= cols: orthogonalizes the columns of M · V by rotations accumulated into V;
    /// then S = the column norms, U = the columns normalized.
    private static func tall(_ m: [Double], rows: Int, cols: Int) -> (u: [Double], s: [Double], v: [Double]) {
        var w = m
        var v = [Double](repeating: 0, count: cols * cols)
        for j in 0..<cols { v[j * cols + j] = 1 }
        w.withUnsafeMutableBufferPointer { w in
            v.withUnsafeMutableBufferPointer { v in
                let w = w.baseAddress!, v = v.baseAddress!
                let tolerance = tolerance(rows: rows)
                for _ in 0..<maxSweeps {
                    var rotated = false
                    for p in 0..<max(cols - 1, 0) {
                        for q in (p + 1)..<cols {
                            let cp = w + p * rows, cq = w + q * rows
                            let alpha = Dense.dot(cp, cp, rows), beta = Dense.dot(cq, cq, rows)
                            let gamma = Dense.dot(cp, cq, rows)
                            guard abs(gamma) > tolerance * (alpha * beta).squareRoot() && gamma != 0 else { continue }
                            rotated = true
                            // tan of the angle that zeroes the pair's inner product, the smaller root.
                            let zeta = (beta - alpha) / (2 * gamma)
                            let t = (zeta >= 0 ? 1 : -1) / (abs(zeta) + (1 + zeta * zeta).squareRoot())
                            let c = 1 / (1 + t * t).squareRoot(), s = c * t
                            Dense.rotate(cp, cq, rows, c: c, s: s)
                            Dense.rotate(v + p * cols, v + q * cols, cols, c: c, s: s)
                        }
                    }
                    if !rotated { break }
                }
            }
        }
        var norms = [Double](repeating: 0, count: cols)
        w.withUnsafeBufferPointer { w in
            for j in 0..<cols { norms[j] = Dense.dot(w.baseAddress! + j * rows, w.baseAddress! + j * rows, rows).squareRoot() }
        }
        let order = (0..<cols).sorted { norms[$0] > norms[$1] || (norms[$0] == norms[$1] && $0 < $1) }
        var u = [Double](repeating: 0, count: rows * cols), vs = [Double](repeating: 0, count: cols * cols)
        var s = [Double](repeating: 0, count: cols)
        for (k, j) in order.enumerated() {
            s[k] = norms[j]
            if norms[j] > 0 {
                for i in 0..<rows { u[k * rows + i] = w[j * rows + i] / norms[j] }
            }
            for i in 0..<cols { vs[k * cols + i] = v[j * cols + i] }
        }
        return (u, s, vs)
    }
}
