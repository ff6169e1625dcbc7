/// Thin QR of a [rows x cols] matrix by Householder reflections (Golub & Van Loan,
/// "Matrix Computations", 4th ed., algorithm 5.2.1), in Double.
///
/// Matrices are column-major (column j at offset j · rows). With steps = min(rows, cols),
/// A = Q · R where Q [rows x steps] has orthonormal columns and R is [steps x cols] upper
/// trapezoidal. Q is kept as its reflectors, applied on demand. A zero column (a rank-deficient
/// input, such as a freshly initialized B) gets no reflector and a zero in R's diagonal.
public struct HouseholderQR: Sendable {
    /// Shape of the factored matrix.
    public let rows: Int, cols: Int
    /// min(rows, cols): Q's columns and R's rows.
    public var steps: Int { min(rows, cols) }
    /// R, row-major [steps x cols], zero below the diagonal.
    public let r: [Double]
    /// Reflector k's vector v in column k (entries k..<rows), column-major [rows x steps].
    private let reflectors: [Double]
    /// 2 / (vᵀv) per reflector; 0 means the identity.
    private let betas: [Double]

    /// Factors the column-major [rows x cols] matrix `a`.
    public init(columnMajor a: [Double], rows: Int, cols: Int) {
        precondition(rows > 0 && cols > 0 && a.count == rows * cols, "QR shape mismatch")
        let steps = min(rows, cols)
        var work = a
        var reflectors = [Double](repeating: 0, count: rows * steps)
        var betas = [Double](repeating: 0, count: steps)
        work.withUnsafeMutableBufferPointer { w in
            reflectors.withUnsafeMutableBufferPointer { refl in
                let w = w.baseAddress!, refl = refl.baseAddress!
                for k in 0..<steps {
                    let x = w + k * rows + k, n = rows - k
                    let norm = Dense.dot(x, x, n).squareRoot()
                    if norm == 0 { continue }
                    // H x = alpha e1 with alpha of the sign opposite to x[0], so v[0] = x[0] - alpha does not cancel.
                    let alpha = x[0] >= 0 ? -norm : norm
                    let v = refl + k * rows + k
                    v.update(from: x, count: n)
                    v[0] -= alpha
                    let beta = 2 / Dense.dot(v, v, n)
                    betas[k] = beta
                    for j in (k + 1)..<cols {
                        let c = w + j * rows + k
                        Dense.axpy(-beta * Dense.dot(v, c, n), v, c, n)
                    }
                    x[0] = alpha
                    (x + 1).update(repeating: 0, count: n - 1)
                }
            }
        }
        var r = [Double](repeating: 0, count: steps * cols)
        for i in 0..<steps {
            for j in i..<cols { r[i * cols + j] = work[j * rows + i] }
        }
        self.rows = rows; self.cols = cols
        self.r = r; self.reflectors = reflectors; self.betas = betas
    }

    /// Q · Y for Y [steps x count] column-major: the result is [rows x count] column-major.
    public func applyQ(_ y: [Double], count: Int) -> [Double] {
        precondition(y.count == steps * count, "Q · Y shape mismatch")
        var out = [Double](repeating: 0, count: rows * count)
        for j in 0..<count {
            for i in 0..<steps { out[j * rows + i] = y[j * steps + i] }
        }
        out.withUnsafeMutableBufferPointer { o in
            reflectors.withUnsafeBufferPointer { refl in
                let o = o.baseAddress!, refl = refl.baseAddress!
                // Q = H_0 H_1 ... H_(steps-1): the last reflector acts first.
                for k in stride(from: steps - 1, through: 0, by: -1) where betas[k] != 0 {
                    let v = refl + k * rows + k, n = rows - k
                    for j in 0..<count {
                        let c = o + j * rows + k
                        Dense.axpy(-betas[k] * Dense.dot(v, c, n), v, c, n)
                    }
                }
            }
        }
        return out
    }
}
