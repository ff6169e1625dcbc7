import Foundation

extension Gemm {
    /// Whether the CPU has 32 vector registers of 512 bits (AVX-512). The 6x64 kernel keeps
    /// 24 SIMD16 accumulators in registers; with only 16 256-bit registers (AVX2) they spill
    /// and it runs several times slower, so such CPUs take `kernel6x64Narrow`.
    public static let wideRegisters: Bool = {
        #if arch(x86_64) && os(Linux)
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return true }
        return info.contains(" avx512f")
        #else
        return true
        #endif
    }()

    /// The same product as `kernel6x64`, one 16-column quarter of the panel at a time: 6 x 16
    /// accumulators (12 AVX2 registers), so nothing spills on a 16-register machine.
    @inline(never)
    static func kernel6x64Narrow(_ kc: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                                 _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ accumulate: Bool) {
        for quarter in 0..<4 {
            var c0 = SIMD16<Float>(), c1 = SIMD16<Float>(), c2 = SIMD16<Float>()
            var c3 = SIMD16<Float>(), c4 = SIMD16<Float>(), c5 = SIMD16<Float>()
            var pa = a
            var pb = UnsafeRawPointer(b + 16 * quarter)
            for _ in 0..<kc {
                let bv = pb.loadUnaligned(as: SIMD16<Float>.self)
                c0 = c0.addingProduct(SIMD16(repeating: pa[0]), bv)
                c1 = c1.addingProduct(SIMD16(repeating: pa[1]), bv)
                c2 = c2.addingProduct(SIMD16(repeating: pa[2]), bv)
                c3 = c3.addingProduct(SIMD16(repeating: pa[3]), bv)
                c4 = c4.addingProduct(SIMD16(repeating: pa[4]), bv)
                c5 = c5.addingProduct(SIMD16(repeating: pa[5]), bv)
                pa += 6; pb += 256
            }
            let out = c + 16 * quarter
            for (r, v) in [c0, c1, c2, c3, c4, c5].enumerated() {
                let p = UnsafeMutableRawPointer(out + r * ldc)
                p.storeBytes(of: accumulate ? p.loadUnaligned(as: SIMD16<Float>.self) + v : v, as: SIMD16<Float>.self)
            }
        }
    }

    /// The first three rows of a sliver only (the rest are padding when m leaves a short last
    /// sliver), written to a 64-wide tile: half the work of `kernel6x64Narrow` for such slivers.
    @inline(never)
    static func kernel3x64Narrow(_ kc: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                                 _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        for quarter in 0..<4 {
            var c0 = SIMD16<Float>(), c1 = SIMD16<Float>(), c2 = SIMD16<Float>()
            var pa = a
            var pb = UnsafeRawPointer(b + 16 * quarter)
            for _ in 0..<kc {
                let bv = pb.loadUnaligned(as: SIMD16<Float>.self)
                c0 = c0.addingProduct(SIMD16(repeating: pa[0]), bv)
                c1 = c1.addingProduct(SIMD16(repeating: pa[1]), bv)
                c2 = c2.addingProduct(SIMD16(repeating: pa[2]), bv)
                pa += 6; pb += 256
            }
            let out = c + 16 * quarter
            for (r, v) in [c0, c1, c2].enumerated() {
                UnsafeMutableRawPointer(out + r * ldc).storeBytes(of: v, as: SIMD16<Float>.self)
            }
        }
    }
}
