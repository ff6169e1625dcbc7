import Foundation
import TensorKit
import Testing

@Suite("Row operations match their references")
struct OpsTests {
    @Test("RMSNorm matches the reference in place and out of place, for widths off the vector size",
          arguments: [1, 15, 16, 17, 64, 100])
    func rmsNorm(dim: Int) {
        var rng = SeededRandom(seed: 500 + UInt64(dim))
        let rows = 3
        let x = rng.floats(rows * dim, in: -4...4), weight = rng.floats(dim, in: 0.5...1.5)
        let expected = Reference.rmsNorm(x, weight: weight, rows: rows, eps: 1e-5)
        var out = [Float](repeating: .nan, count: rows * dim)
        out.withUnsafeMutableBufferPointer { o in
            RMSNorm.forward(out: o.baseAddress!, input: x, weight: weight, rows: rows, dim: dim, eps: 1e-5)
        }
        let tol = 2e-6 * maxAbs(expected)
        expectClose(out, expected, tolerance: tol, "dim \(dim)")
        var inPlace = x
        inPlace.withUnsafeMutableBufferPointer { p in
            RMSNorm.forward(out: p.baseAddress!, input: p.baseAddress!, weight: weight, rows: rows, dim: dim, eps: 1e-5)
        }
        expectClose(inPlace, expected, tolerance: tol, "dim \(dim) in place")
    }

    @Test("RoPE matches the reference at positions 0 and 1000, leaving row padding alone",
          arguments: [(16, 0), (16, 1000), (64, 0), (64, 1000)])
    func rope(headDim: Int, start: Int) {
        var rng = SeededRandom(seed: 510 + UInt64(headDim + start))
        let rows = 5, heads = 3, width = heads * headDim
        let x = rng.floats(rows * width)
        let expected = Reference.rope(x, rows: rows, heads: heads, headDim: headDim, base: 10_000, startPosition: start)
        var buf = StridedBuffer(x, rows: rows, width: width, stride: width + 6)
        let table = RoPETable(headDim: headDim, base: 10_000, positions: start + rows)
        buf.storage.withUnsafeMutableBufferPointer { p in
            table.apply(p.baseAddress!, rows: rows, ld: width + 6, heads: heads, startPosition: start)
        }
        // Angles are Float: p·θ carries a relative error of about 2^-23, ~1e-4 rad at p = 1000.
        let tol = (5e-7 + Float(start + rows) * 1.2e-7) * maxAbs(x)
        expectClose(buf.compact(), expected, tolerance: tol, "hd \(headDim) start \(start)")
        #expect(buf.paddingUntouched)
    }

    @Test("RoPE at position 0 is the identity, and a position's rotation does not depend on the table's length")
    func ropeTableLength() {
        var rng = SeededRandom(seed: 520)
        let x = rng.floats(64)
        var at0 = x
        let table = RoPETable(headDim: 64, base: 10_000, positions: 1000)
        at0.withUnsafeMutableBufferPointer { table.apply($0.baseAddress!, rows: 1, ld: 64, heads: 1, startPosition: 0) }
        #expect(at0 == x)
        var short = x, long = x
        table.apply(&short, rows: 1, ld: 64, heads: 1, startPosition: 900)
        RoPETable(headDim: 64, base: 10_000, positions: 4000).apply(&long, rows: 1, ld: 64, heads: 1, startPosition: 900)
        #expect(short == long)
    }

    @Test("SwiGLU matches the reference for counts that are not multiples of 16", arguments: [1, 15, 16, 17, 33, 100])
    func swiglu(count: Int) {
        var rng = SeededRandom(seed: 530 + UInt64(count))
        var gate = rng.floats(count, in: -10...10)
        if count > 3 { gate[0] = -100; gate[1] = 100; gate[2] = 0 }
        let up = rng.floats(count, in: -3...3)
        let expected = Reference.swiglu(gate: gate, up: up)
        gate.withUnsafeMutableBufferPointer { Activation.swiglu(gate: $0.baseAddress!, up: up, count: count) }
        for i in 0..<count {
            #expect(!gate[i].isNaN && abs(gate[i] - expected[i]) <= 1e-6 * max(1, abs(expected[i])),
                    "[\(i)] = \(gate[i]), expected \(expected[i])")
        }
    }

    @Test("softmax matches the reference, sums to one, and survives large inputs", arguments: [1, 15, 16, 17, 100])
    func softmax(count: Int) {
        var rng = SeededRandom(seed: 540 + UInt64(count))
        for range: ClosedRange<Float> in [-5...5, 990...1000, -1000 ... -990] {
            var x = rng.floats(count, in: range)
            let expected = Reference.softmax(x)
            x.withUnsafeMutableBufferPointer { Softmax.inPlace($0.baseAddress!, count) }
            for i in 0..<count {
                #expect(!x[i].isNaN && abs(x[i] - expected[i]) <= 1e-6 * max(expected[i], 1e-3), "n=\(count) \(range) [\(i)]")
            }
            #expect(abs(x.reduce(0, +) - 1) <= 1e-5)
        }
    }

    @Test("Kernels.dot matches a Double dot product for lengths around the vector widths",
          arguments: [0, 1, 15, 16, 17, 31, 32, 33, 47, 48, 100])
    func dot(count: Int) {
        var rng = SeededRandom(seed: 550 + UInt64(count))
        let a = rng.floats(count), b = rng.floats(count)
        let exact = zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        let got = Kernels.dot(a, b, count)
        #expect(!got.isNaN && abs(Double(got) - exact) <= 1e-6 * Double(max(count, 1)).squareRoot(), "n=\(count): \(got) vs \(exact)")
    }

    static func fastExp(_ xs: [Float]) -> [Float] {
        var out: [Float] = []
        out.reserveCapacity(xs.count)
        var i = 0
        while i < xs.count {
            var v = SIMD16<Float>(repeating: 0)
            for l in 0..<16 where i + l < xs.count { v[l] = xs[i + l] }
            let e = FastMath.exp(v)
            for l in 0..<16 where i + l < xs.count { out.append(e[l]) }
            i += 16
        }
        return out
    }

    @Test("FastMath.exp has relative error below 2e-7 over [-87, 88]")
    func expAccuracy() {
        let xs = stride(from: Float(-87), through: 88, by: 0.00137).map { $0 }
        let ys = Self.fastExp(xs)
        var worst = 0.0, worstAt: Float = 0
        for (x, y) in zip(xs, ys) {
            let exact = Foundation.exp(Double(x))
            let rel = abs(Double(y) - exact) / exact
            if !(rel <= worst) { worst = rel; worstAt = x }
        }
        #expect(worst < 2e-7, "relative error \(worst) at x = \(worstAt)")
        #expect(Self.fastExp([0])[0] == 1)
    }

    @Test("FastMath.exp never decreases, including across the boundaries of its range reduction")
    func expMonotone() {
        var xs = stride(from: Float(-87), through: 88, by: 0.0371).map { $0 }
        // Around every x = (n + 1/2)·ln 2 the reduction switches n; walk 64 consecutive floats there.
        for n in -125...126 {
            var x = (Float(n) + 0.5) * 0.693_147_18
            for _ in 0..<32 { x = x.nextDown }
            for _ in 0..<64 { xs.append(x); x = x.nextUp }
        }
        xs.sort()
        let ys = Self.fastExp(xs)
        var drops = 0
        for i in 1..<ys.count where ys[i] < ys[i - 1] {
            drops += 1
            if drops <= 3 { Issue.record("exp(\(xs[i])) = \(ys[i]) < exp(\(xs[i - 1])) = \(ys[i - 1])") }
        }
        #expect(drops == 0)
    }

    @Test("FastMath.exp saturates instead of overflowing to infinity or NaN")
    func expExtremes() {
        let ys = Self.fastExp([-1000, -88, 89, 1000, -.infinity, .infinity])
        for y in ys { #expect(y.isFinite && y >= 0) }
        #expect(ys[0] < 1e-37 && ys[3] > 1e38)
    }
}
