import Foundation
import TensorKit
import Testing

/// Each backward kernel against finite differences of a Float64 version of its forward, with a
/// random upstream gradient g: the directional check is ∂/∂x (g · f(x)).
@Suite("Backward kernels against Float64 finite differences")
struct BackwardTests {
    /// Central differences of `loss` at `x`, one coordinate at a time.
    static func numericGradient(_ x: [Double], _ loss: ([Double]) -> Double, h: Double = 1e-6) -> [Double] {
        x.indices.map { i in
            var p = x, m = x
            p[i] += h; m[i] -= h
            return (loss(p) - loss(m)) / (2 * h)
        }
    }

    static func relativeError(_ a: [Float], _ b: [Double]) -> Double {
        var e = 0.0, n = 0.0
        for (x, y) in zip(a, b) { e += (Double(x) - y) * (Double(x) - y); n += y * y }
        return (e / max(n, 1e-300)).squareRoot()
    }

    @Test("RMSNorm backward", arguments: [false, true])
    func rmsNorm(accumulate: Bool) {
        var rng = SeededRandom(seed: 1)
        let rows = 3, dim = 40, eps: Float = 1e-5
        let x = rng.floats(rows * dim), w = rng.floats(dim, in: 0.5...1.5), g = rng.floats(rows * dim)
        var dx = [Float](repeating: accumulate ? 0.25 : .nan, count: rows * dim)
        RMSNorm.backward(dx: &dx, dy: g, input: x, weight: w, rows: rows, dim: dim, eps: eps, accumulate: accumulate)
        let numeric = Self.numericGradient(x.map(Double.init)) { v in
            var s = 0.0
            for t in 0..<rows {
                let r = 1 / ((0..<dim).reduce(0.0) { $0 + v[t * dim + $1] * v[t * dim + $1] } / Double(dim) + Double(eps)).squareRoot()
                for i in 0..<dim { s += Double(g[t * dim + i]) * v[t * dim + i] * r * Double(w[i]) }
            }
            return s
        }
        let got = accumulate ? dx.map { $0 - 0.25 } : dx
        #expect(Self.relativeError(got, numeric) < 1e-5)
    }

    @Test("SwiGLU backward (vector body and scalar tail)")
    func swiglu() {
        var rng = SeededRandom(seed: 2)
        let n = 37
        let gate = rng.floats(n, in: -4...4), up = rng.floats(n), dh = rng.floats(n)
        var dGate = [Float](repeating: .nan, count: n), dUp = dGate
        Activation.swigluBackward(dGate: &dGate, dUp: &dUp, dh: dh, gate: gate, up: up, count: n)
        func f(_ g: Double, _ u: Double) -> Double { g / (1 + exp(-g)) * u }
        let h = 1e-6
        for i in 0..<n {
            let (g, u, d) = (Double(gate[i]), Double(up[i]), Double(dh[i]))
            #expect(abs(Double(dGate[i]) - d * (f(g + h, u) - f(g - h, u)) / (2 * h)) < 1e-5)
            #expect(abs(Double(dUp[i]) - d * (f(g, u + h) - f(g, u - h)) / (2 * h)) < 1e-5)
        }
        var out = [Float](repeating: .nan, count: n)
        Activation.swiglu(out: &out, gate: gate, up: up, count: n)
        for i in 0..<n { #expect(abs(Double(out[i]) - f(Double(gate[i]), Double(up[i]))) < 1e-5) }
    }

    @Test("RoPE inverse undoes the rotation and is its transpose")
    func ropeInverse() {
        var rng = SeededRandom(seed: 3)
        let rows = 5, heads = 2, hd = 8
        let table = RoPETable(headDim: hd, base: 10000, positions: 16)
        let x = rng.floats(rows * heads * hd), g = rng.floats(rows * heads * hd)
        var y = x
        table.apply(&y, rows: rows, ld: heads * hd, heads: heads, startPosition: 3)
        var back = y
        table.applyInverse(&back, rows: rows, ld: heads * hd, heads: heads, startPosition: 3)
        expectClose(back, x, tolerance: 1e-5, "inverse(apply(x))")
        // <g, R x> == <Rᵀ g, x>
        var rg = g
        table.applyInverse(&rg, rows: rows, ld: heads * hd, heads: heads, startPosition: 3)
        let lhs = zip(g, y).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        let rhs = zip(rg, x).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        #expect(abs(lhs - rhs) < 1e-4)
    }

    @Test("causal GQA attention backward over two sequences")
    func attention() {
        var rng = SeededRandom(seed: 4)
        let shape = Attention.Shape(heads: 4, kvHeads: 2, headDim: 8)
        let lengths = [5, 3], T = 8, qw = 32, kw = 16
        let q = rng.floats(T * qw), k = rng.floats(T * kw), v = rng.floats(T * kw), g = rng.floats(T * qw)
        let segments = [0..<5, 5..<8]
        var out = [Float](repeating: .nan, count: T * qw)
        for s in segments {
            out.withUnsafeMutableBufferPointer { o in
                Attention.forward(out: o.baseAddress! + s.lowerBound * qw, ldo: qw, q: q.withUnsafeBufferPointer { $0.baseAddress! } + s.lowerBound * qw,
                                  ldq: qw, keys: k.withUnsafeBufferPointer { $0.baseAddress! } + s.lowerBound * kw,
                                  values: v.withUnsafeBufferPointer { $0.baseAddress! } + s.lowerBound * kw, ldkv: kw,
                                  rows: s.count, positions: s.count, shape: shape)
            }
        }
        let ldd = qw + 2 * kw
        var d = [Float](repeating: .nan, count: T * ldd)
        d.withUnsafeMutableBufferPointer { d in
            Attention.backward(dq: d.baseAddress!, dk: d.baseAddress! + qw, dv: d.baseAddress! + qw + kw, ldd: ldd,
                               dOut: g, out: out, ldo: qw, q: q, ldq: qw, keys: k, values: v, ldkv: kw,
                               segments: segments, shape: shape)
        }
        // Float64 forward: Σ g · attention(q, k, v), parameters packed as [q | k | v].
        func loss(_ p: [Double]) -> Double {
            var total = 0.0
            for s in segments {
                for t in s { for h in 0..<4 {
                    let gh = h / 2
                    var scores: [Double] = []
                    for j in s.lowerBound...t {
                        var dot = 0.0
                        for i in 0..<8 { dot += p[t * qw + h * 8 + i] * p[T * qw + j * kw + gh * 8 + i] }
                        scores.append(dot / 8.0.squareRoot())
                    }
                    let m = scores.max()!, e = scores.map { exp($0 - m) }, z = e.reduce(0, +)
                    for i in 0..<8 {
                        var o = 0.0
                        for (n, j) in (s.lowerBound...t).enumerated() { o += e[n] / z * p[T * qw + T * kw + j * kw + gh * 8 + i] }
                        total += Double(g[t * qw + h * 8 + i]) * o
                    }
                } }
            }
            _ = lengths
            return total
        }
        let numeric = Self.numericGradient((q + k + v).map(Double.init), loss)
        var got: [Float] = []
        for t in 0..<T { got += d[t * ldd..<t * ldd + qw] }
        for t in 0..<T { got += d[t * ldd + qw..<t * ldd + qw + kw] }
        for t in 0..<T { got += d[t * ldd + qw + kw..<t * ldd + ldd] }
        #expect(Self.relativeError(got, numeric) < 1e-4, "relative error \(Self.relativeError(got, numeric))")
    }

    @Test("input gradient through stacked quantized weights equals the plain product", arguments: WeightFormat.narrowBlocks)
    func linearBackward(format: WeightFormat) throws {
        var rng = SeededRandom(seed: 5)
        let a = TestWeight.random(rows: 96, cols: 64, format: format, rng: &rng)
        let b = TestWeight.random(rows: 40, cols: 64, format: format, rng: &rng)
        let m = 13, k = 96 + 40
        let dy = rng.floats(m * k)
        var dx = [Float](repeating: .nan, count: m * 64)
        Linear.backward(dy, rows: m, ldy: k, weights: [.init(a.panels), .init(b.panels)], into: &dx, ldx: 64, accumulate: false)
        var w: [Float] = []
        for r in 0..<96 { w += a.panelRow(r) }
        for r in 0..<40 { w += b.panelRow(r) }
        let expected = Reference.matmul(m: m, n: 64, k: k, a: dy, b: w, transposeB: false)
        expectClose(dx, expected, tolerance: 1e-4, "dX")
        // A row block of one weight (as the output head uses), accumulated.
        var acc = expected
        Linear.backward(Array(dy.prefix(m * k)), rows: m, ldy: k, weights: [.init(a.panels, rows: 64..<96)], into: &acc, ldx: 64,
                        accumulate: true)
        var part = [Float](repeating: 0, count: m * 32)
        for i in 0..<m { for j in 0..<32 { part[i * 32 + j] = dy[i * k + j] } }
        let block = Reference.matmul(m: m, n: 64, k: 32, a: part, b: Array(w[64 * 64..<96 * 64]), transposeB: false)
        expectClose(acc, zip(expected, block).map(+), tolerance: 1e-4, "accumulated row block")
    }

    @Test("thin products (rank 16 in registers, other ranks by rows) equal the plain product", arguments: [16, 5])
    func thinProduct(rank: Int) {
        var rng = SeededRandom(seed: 6)
        let rows = 11, width = 40, ldx = 48
        let x = rng.floats(rows * ldx), m = rng.floats(width * rank)
        var out = [Float](repeating: .nan, count: rows * rank)
        ThinProduct.multiply(x, ldx: ldx, rows: 0..<rows, width: width, matrix: m, rank: rank, scale: 0.5, into: &out, ldo: rank)
        var compact: [Float] = []
        for r in 0..<rows { compact += x[r * ldx..<r * ldx + width] }
        let expected = Reference.matmul(m: rows, n: rank, k: width, a: compact, b: m, transposeB: false).map { $0 * 0.5 }
        expectClose(out, expected, tolerance: 1e-5, "rank \(rank)")
    }
}
