/// Level-1 kernels in Double over contiguous vectors, for the factorizations.
enum Dense {
    /// Σ x[i] · y[i], with four independent SIMD accumulators (a plain loop would not be
    /// vectorized: reassociating a floating-point sum changes its rounding).
    @inline(__always)
    static func dot(_ x: UnsafePointer<Double>, _ y: UnsafePointer<Double>, _ n: Int) -> Double {
        let rx = UnsafeRawPointer(x), ry = UnsafeRawPointer(y)
        var s0 = SIMD4<Double>(), s1 = SIMD4<Double>(), s2 = SIMD4<Double>(), s3 = SIMD4<Double>()
        let stride = MemoryLayout<SIMD4<Double>>.stride
        var i = 0
        while i + 16 <= n {
            let o = i * 8
            s0 += rx.loadUnaligned(fromByteOffset: o, as: SIMD4<Double>.self) * ry.loadUnaligned(fromByteOffset: o, as: SIMD4<Double>.self)
            s1 += rx.loadUnaligned(fromByteOffset: o + stride, as: SIMD4<Double>.self)
                * ry.loadUnaligned(fromByteOffset: o + stride, as: SIMD4<Double>.self)
            s2 += rx.loadUnaligned(fromByteOffset: o + 2 * stride, as: SIMD4<Double>.self)
                * ry.loadUnaligned(fromByteOffset: o + 2 * stride, as: SIMD4<Double>.self)
            s3 += rx.loadUnaligned(fromByteOffset: o + 3 * stride, as: SIMD4<Double>.self)
                * ry.loadUnaligned(fromByteOffset: o + 3 * stride, as: SIMD4<Double>.self)
            i += 16
        }
        while i + 4 <= n {
            s0 += rx.loadUnaligned(fromByteOffset: i * 8, as: SIMD4<Double>.self) * ry.loadUnaligned(fromByteOffset: i * 8, as: SIMD4<Double>.self)
            i += 4
        }
        var sum = ((s0 + s1) + (s2 + s3)).sum()
        while i < n { sum += x[i] * y[i]; i += 1 }
        return sum
    }

    /// y += alpha · x.
    @inline(__always)
    static func axpy(_ alpha: Double, _ x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>, _ n: Int) {
        for i in 0..<n { y[i] += alpha * x[i] }
    }

    /// (x, y) ← (c·x − s·y, s·x + c·y): a plane rotation of two vectors.
    @inline(__always)
    static func rotate(_ x: UnsafeMutablePointer<Double>, _ y: UnsafeMutablePointer<Double>, _ n: Int, c: Double, s: Double) {
        for i in 0..<n {
            let a = x[i], b = y[i]
            x[i] = c * a - s * b
            y[i] = s * a + c * b
        }
    }
}
