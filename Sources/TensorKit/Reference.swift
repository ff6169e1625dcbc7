#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Plain, obviously-correct versions of the kernels, for tests to compare against.
public enum Reference {
    /// C[m x n] = A[m x k] · B[k x n] (or A · Bᵀ with B [n x k] when `transposeB`), in Double.
    public static func matmul(m: Int, n: Int, k: Int, a: [Float], b: [Float], transposeB: Bool) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k { s += Double(a[i * k + p]) * Double(transposeB ? b[j * k + p] : b[p * n + j]) }
                c[i * n + j] = Float(s)
            }
        }
        return c
    }

    /// out = x · Wᵀ with W given row by row.
    public static func project(x: [Float], rows m: Int, weight: PanelMatrix) -> [Float] {
        var w = [Float](repeating: 0, count: weight.cols)
        var out = [Float](repeating: 0, count: m * weight.rows)
        for r in 0..<weight.rows {
            w.withUnsafeMutableBufferPointer { weight.decodeRow(r, into: $0.baseAddress!) }
            for i in 0..<m {
                var s = 0.0
                for k in 0..<weight.cols { s += Double(x[i * weight.cols + k]) * Double(w[k]) }
                out[i * weight.rows + r] = Float(s)
            }
        }
        return out
    }

    public static func softmax(_ x: [Float]) -> [Float] {
        let m = x.max() ?? 0
        let e = x.map { exp(Double($0 - m)) }
        let s = e.reduce(0, +)
        return e.map { Float($0 / s) }
    }

    public static func attention(q: [Float], keys: [Float], values: [Float], rows T: Int, positions S: Int,
                                 shape: Attention.Shape) -> [Float] {
        let hd = shape.headDim, H = shape.heads, G = shape.kvHeads
        var out = [Float](repeating: 0, count: T * H * hd)
        for t in 0..<T {
            let visible = S - T + t + 1
            for h in 0..<H {
                let g = h / (H / G)
                var scores = [Float](repeating: 0, count: visible)
                for s in 0..<visible {
                    var d = 0.0
                    for i in 0..<hd { d += Double(q[t * H * hd + h * hd + i]) * Double(keys[s * G * hd + g * hd + i]) }
                    scores[s] = Float(d) / Float(hd).squareRoot()
                }
                let p = softmax(scores)
                for i in 0..<hd {
                    var acc = 0.0
                    for s in 0..<visible { acc += Double(p[s]) * Double(values[s * G * hd + g * hd + i]) }
                    out[t * H * hd + h * hd + i] = Float(acc)
                }
            }
        }
        return out
    }

    public static func rmsNorm(_ x: [Float], weight: [Float], rows: Int, eps: Float) -> [Float] {
        let dim = weight.count
        var out = x
        for t in 0..<rows {
            var ss = 0.0
            for i in 0..<dim { ss += Double(x[t * dim + i]) * Double(x[t * dim + i]) }
            let rstd = 1 / (ss / Double(dim) + Double(eps)).squareRoot()
            for i in 0..<dim { out[t * dim + i] = Float(Double(x[t * dim + i]) * rstd * Double(weight[i])) }
        }
        return out
    }

    /// Adjacent-pair rotary embedding in Double.
    public static func rope(_ x: [Float], rows: Int, heads: Int, headDim: Int, base: Double, startPosition: Int) -> [Float] {
        var out = x
        for t in 0..<rows {
            for h in 0..<heads {
                for i in 0..<headDim / 2 {
                    let angle = Double(startPosition + t) * pow(base, -Double(2 * i) / Double(headDim))
                    let o = t * heads * headDim + h * headDim + 2 * i
                    let x0 = Double(x[o]), x1 = Double(x[o + 1])
                    out[o] = Float(x0 * cos(angle) - x1 * sin(angle))
                    out[o + 1] = Float(x0 * sin(angle) + x1 * cos(angle))
                }
            }
        }
        return out
    }

    public static func swiglu(gate: [Float], up: [Float]) -> [Float] {
        zip(gate, up).map { g, u in Float(Double(g) / (1 + exp(-Double(g))) * Double(u)) }
    }
}

