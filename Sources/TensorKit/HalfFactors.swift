/// Kernels over low-rank factors held as IEEE half floats (`Float16` bit patterns): served
/// LoRA factors are stored in 16 bits to halve the memory each decode step reads. Every value
/// is widened to Float32 exactly (vcvtph2ps) and all arithmetic is Float32.
extension Kernels {
    /// Σ a[i] · Float(b[i]), with b IEEE halves. Same summation order as `dot`.
    @inline(__always)
    public static func dot(_ a: UnsafePointer<Float>, halves b: UnsafePointer<UInt16>, _ n: Int) -> Float {
        var acc0 = SIMD16<Float>(), acc1 = SIMD16<Float>()
        let bb = UnsafeRawPointer(b)
        var i = 0
        while i + 32 <= n {
            acc0 = acc0.addingProduct(load16(a + i), loadHalf16(bb + 2 * i))
            acc1 = acc1.addingProduct(load16(a + i + 16), loadHalf16(bb + 2 * i + 32))
            i += 32
        }
        while i + 16 <= n {
            acc0 = acc0.addingProduct(load16(a + i), loadHalf16(bb + 2 * i))
            i += 16
        }
        var s = (acc0 + acc1).sum()
        while i < n { s += a[i] * Float(Float16(bitPattern: b[i])); i += 1 }
        return s
    }

    /// out[0..<n] = the halves src[0..<n] as floats (exact).
    public static func widen(halves src: UnsafePointer<UInt16>, into out: UnsafeMutablePointer<Float>, count n: Int) {
        let s = UnsafeRawPointer(src)
        var i = 0
        while i + 16 <= n { store16(loadHalf16(s + 2 * i), out + i); i += 16 }
        while i < n { out[i] = Float(Float16(bitPattern: src[i])); i += 1 }
    }

    /// The nearest half to each of src[0..<n] (round to nearest even), or nil when one of them
    /// is beyond the half range (it would become infinite) or not finite.
    public static func narrow(_ src: UnsafePointer<Float>, into out: UnsafeMutablePointer<UInt16>, count n: Int) -> Bool {
        var ok = true
        for i in 0..<n {
            let h = Float16(src[i])
            ok = ok && h.isFinite
            out[i] = h.bitPattern
        }
        return ok
    }
}

extension Linear {
    /// `addLowRank` with bt as IEEE halves: y[0..<cols] += Σ_j u[j] · bt[j * ldb ..< j * ldb + cols].
    @inline(__always)
    static func addLowRank(_ y: UnsafeMutablePointer<Float>, u: UnsafePointer<Float>, rank: Int,
                           halves bt: UnsafePointer<UInt16>, ldb: Int, cols: Int) {
        guard cols == 64 else {
            for j in 0..<rank {
                let row = bt + j * ldb, uj = u[j]
                for c in 0..<cols { y[c] += uj * Float(Float16(bitPattern: row[c])) }
            }
            return
        }
        let yr = UnsafeMutableRawPointer(y)
        var a0 = load16(yr), a1 = load16(yr + 64), a2 = load16(yr + 128), a3 = load16(yr + 192)
        var b = UnsafeRawPointer(bt)
        for j in 0..<rank {
            let uj = SIMD16<Float>(repeating: u[j])
            a0 = a0.addingProduct(uj, loadHalf16(b)); a1 = a1.addingProduct(uj, loadHalf16(b + 32))
            a2 = a2.addingProduct(uj, loadHalf16(b + 64)); a3 = a3.addingProduct(uj, loadHalf16(b + 96))
            b += ldb * 2
        }
        store16(a0, yr); store16(a1, yr + 64); store16(a2, yr + 128); store16(a3, yr + 192)
    }
}
