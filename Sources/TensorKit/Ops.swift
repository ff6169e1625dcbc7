#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Row-wise operations. Glossary: T = rows (tokens), dim = row length. All row-major.

public enum RMSNorm {
    /// out[t] = input[t] / sqrt(mean(input[t]²) + eps) * weight, for T rows of `dim`.
    /// `out` may alias `input`.
    public static func forward(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                               weight: UnsafePointer<Float>, rows: Int, dim: Int, eps: Float) {
        for t in 0..<rows {
            let x = input + t * dim, y = out + t * dim
            let ss = sumOfSquares(x, dim)
            let rstd = 1 / (ss / Float(dim) + eps).squareRoot()
            for i in 0..<dim { y[i] = (x[i] * rstd) * weight[i] }
        }
    }

    static func sumOfSquares(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = SIMD16<Float>()
        var i = 0
        while i + 16 <= n {
            let v = load16(x + i)
            acc = acc.addingProduct(v, v)
            i += 16
        }
        var s = acc.sum()
        while i < n { s += x[i] * x[i]; i += 1 }
        return s
    }
}

/// Rotary position embedding. `.adjacent` rotates pairs (x[2i], x[2i+1]), the layout the GGUF
/// converter gives Llama query/key weights; `.neox` rotates (x[i], x[i + d/2]) (Qwen, Phi-3,
/// Gemma). The angle of pair i at position p is p · base^(−2i/d) · frequencyScale / factor[i];
/// cos and sin are multiplied by `magnitude` (Phi-3's long-RoPE attention factor). Angles are
/// computed in Float like the reference implementation.
public final class RoPETable: Sendable {
    public enum Style: String, Sendable { case adjacent, neox }

    public let headDim: Int
    public let base: Float
    public let style: Style
    /// Positions tabulated: `0..<positions`. The table is built once and never changes, so a
    /// model shared between threads can use it without locking.
    public let positions: Int
    private let cosTable: [Float]
    private let sinTable: [Float]

    public init(headDim: Int, base: Float, positions: Int, style: Style = .adjacent, frequencyScale: Float = 1,
                frequencyFactors: [Float]? = nil, magnitude: Float = 1) {
        precondition(frequencyFactors == nil || frequencyFactors!.count == headDim / 2)
        self.headDim = headDim
        self.base = base
        self.style = style
        self.positions = positions
        let half = headDim / 2
        let invFreq = (0..<half).map { i in
            1 / powf(base, Float(2 * i) / Float(headDim)) * frequencyScale / (frequencyFactors?[i] ?? 1)
        }
        var cosTable = [Float](), sinTable = [Float]()
        cosTable.reserveCapacity(positions * half)
        sinTable.reserveCapacity(positions * half)
        for p in 0..<positions {
            for i in 0..<half {
                let angle = Float(p) * invFreq[i]
                cosTable.append(Float(cos(Double(angle))) * magnitude)
                sinTable.append(Float(sin(Double(angle))) * magnitude)
            }
        }
        self.cosTable = cosTable
        self.sinTable = sinTable
    }

    /// Rotates `heads` heads of `headDim` in each of T rows (row stride `ld`); row t is at
    /// position `startPosition + t`.
    public func apply(_ x: UnsafeMutablePointer<Float>, rows: Int, ld: Int, heads: Int, startPosition: Int) {
        rotate(x, rows: rows, ld: ld, heads: heads, startPosition: startPosition, sign: 1)
    }

    private func rotate(_ x: UnsafeMutablePointer<Float>, rows: Int, ld: Int, heads: Int, startPosition: Int,
                        sign: Float) {
        precondition(startPosition >= 0 && startPosition + rows <= positions,
                     "RoPE position \(startPosition + rows - 1) is past the table's \(positions)")
        let half = headDim / 2
        // Element i of a pair sits at `stride * i` and its partner `offset` further on.
        let (stride, offset) = style == .adjacent ? (2, 1) : (1, half)
        cosTable.withUnsafeBufferPointer { cosT in
            sinTable.withUnsafeBufferPointer { sinT in
                for t in 0..<rows {
                    let c = cosT.baseAddress! + (startPosition + t) * half
                    let s = sinT.baseAddress! + (startPosition + t) * half
                    for h in 0..<heads {
                        let v = x + t * ld + h * headDim
                        for i in 0..<half {
                            let a = stride * i, b = a + offset
                            let x0 = v[a], x1 = v[b]
                            let si = sign * s[i]
                            v[a] = x0 * c[i] - x1 * si
                            v[b] = x0 * si + x1 * c[i]
                        }
                    }
                }
            }
        }
    }
}

public enum Activation {
    /// gate[i] = silu(gate[i]) * up[i] (SwiGLU), for `count` elements.
    public static func swiglu(gate: UnsafeMutablePointer<Float>, up: UnsafePointer<Float>, count: Int) {
        var i = 0
        while FastMath.vectorExp && i + 16 <= count {
            let g = load16(gate + i)
            let silu = g / (1 + FastMath.exp(-g))
            store16(silu * load16(up + i), gate + i)
            i += 16
        }
        while i < count {
            let g = gate[i]
            gate[i] = g / (1 + expf(-g)) * up[i]
            i += 1
        }
    }
}

public enum Softmax {
    /// In-place softmax of `n` values; returns nothing, leaves probabilities.
    public static func inPlace(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        var m = -Float.infinity
        for i in 0..<n { m = max(m, x[i]) }
        var sum: Float = 0
        var i = 0
        let mv = SIMD16<Float>(repeating: m)
        var acc = SIMD16<Float>()
        while FastMath.vectorExp && i + 16 <= n {
            let e = FastMath.exp(load16(x + i) - mv)
            store16(e, x + i)
            acc += e
            i += 16
        }
        sum = acc.sum()
        while i < n { x[i] = expf(x[i] - m); sum += x[i]; i += 1 }
        let inv = 1 / sum
        for j in 0..<n { x[j] *= inv }
    }
}

public enum FastMath {
    /// Whether `exp` below pays off: on CPUs without 512-bit registers the compiler splits
    /// its 16-lane arithmetic into lane loops, and libm's scalar expf is several times faster.
    public static let vectorExp = Gemm.wideRegisters

    /// e^x for 16 lanes: range reduction x = n·ln2 + r, |r| <= ln2/2, a degree-7 Taylor
    /// polynomial for e^r (relative error < 1e-7 on the interval), then scaling by 2^n.
    @inline(__always)
    public static func exp(_ x: SIMD16<Float>) -> SIMD16<Float> {
        let clamped = x.clamped(lowerBound: SIMD16(repeating: -87.3), upperBound: SIMD16(repeating: 88.3))
        let magic = SIMD16<Float>(repeating: 12582912)  // 1.5 * 2^23: adding it rounds to an integer
        let t = clamped * SIMD16(repeating: 1.44269504088896341) + magic
        let n = t - magic
        var r = clamped - n * SIMD16(repeating: 0.693145751953125)
        r = r - n * SIMD16(repeating: 1.428606765330187045e-06)
        var p = SIMD16<Float>(repeating: 1.0 / 5040)
        p = p * r + SIMD16(repeating: 1.0 / 720)
        p = p * r + SIMD16(repeating: 1.0 / 120)
        p = p * r + SIMD16(repeating: 1.0 / 24)
        p = p * r + SIMD16(repeating: 1.0 / 6)
        p = p * r + SIMD16(repeating: 0.5)
        p = p * r + SIMD16(repeating: 1)
        p = p * r + SIMD16(repeating: 1)
        let ti = unsafeBitCast(t, to: SIMD16<Int32>.self) &- unsafeBitCast(magic, to: SIMD16<Int32>.self)
        let scale = unsafeBitCast((ti &+ 127) &<< 23, to: SIMD16<Float>.self)
        return p * scale
    }
}

/// Small vector helpers.
public enum Kernels {
    /// Σ a[i] · b[i].
    @inline(__always)
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc0 = SIMD16<Float>(), acc1 = SIMD16<Float>()
        var i = 0
        while i + 32 <= n {
            acc0 = acc0.addingProduct(load16(a + i), load16(b + i))
            acc1 = acc1.addingProduct(load16(a + i + 16), load16(b + i + 16))
            i += 32
        }
        while i + 16 <= n {
            acc0 = acc0.addingProduct(load16(a + i), load16(b + i))
            i += 16
        }
        var s = (acc0 + acc1).sum()
        while i < n { s += a[i] * b[i]; i += 1 }
        return s
    }

    /// y += alpha · x.
    @inline(__always)
    public static func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        let av = SIMD16<Float>(repeating: alpha)
        var i = 0
        while i + 16 <= n {
            store16(load16(y + i).addingProduct(av, load16(x + i)), y + i)
            i += 16
        }
        while i < n { y[i] += alpha * x[i]; i += 1 }
    }
}

// MARK: - Backward passes (frozen weights: gradients with respect to the inputs only)

extension RMSNorm {
    /// dx (+)= ∂L/∂input given dy = ∂L/∂out, for out = input · r · weight with
    /// r = 1/sqrt(mean(input²) + eps): dx = r · (w∘dy) − input · r³/dim · Σ(w∘dy∘input).
    public static func backward(dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, input: UnsafePointer<Float>,
                                weight: UnsafePointer<Float>, rows: Int, dim: Int, eps: Float, accumulate: Bool) {
        for t in 0..<rows {
            let x = input + t * dim, g = dy + t * dim, d = dx + t * dim
            let r = 1 / (sumOfSquares(x, dim) / Float(dim) + eps).squareRoot()
            var dot: Float = 0
            for i in 0..<dim { dot += weight[i] * g[i] * x[i] }
            let c = dot * r * r * r / Float(dim)
            if accumulate {
                for i in 0..<dim { d[i] += r * weight[i] * g[i] - x[i] * c }
            } else {
                for i in 0..<dim { d[i] = r * weight[i] * g[i] - x[i] * c }
            }
        }
    }
}

extension RoPETable {
    /// The backward of `apply`: rotation is orthogonal, so the gradient rotates by the
    /// opposite angle.
    public func applyInverse(_ x: UnsafeMutablePointer<Float>, rows: Int, ld: Int, heads: Int, startPosition: Int) {
        rotate(x, rows: rows, ld: ld, heads: heads, startPosition: startPosition, sign: -1)
    }
}

extension Activation {
    /// out[i] = silu(gate[i]) · up[i], leaving `gate` as it is.
    public static func swiglu(out: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
                              count: Int) {
        var i = 0
        while FastMath.vectorExp && i + 16 <= count {
            let g = load16(gate + i)
            store16(g / (1 + FastMath.exp(-g)) * load16(up + i), out + i)
            i += 16
        }
        while i < count {
            let g = gate[i]
            out[i] = g / (1 + expf(-g)) * up[i]
            i += 1
        }
    }

    /// Gradients of h = silu(g) · u: du = dh · silu(g), dg = dh · u · σ(g)(1 + g(1 − σ(g))).
    public static func swigluBackward(dGate: UnsafeMutablePointer<Float>, dUp: UnsafeMutablePointer<Float>,
                                      dh: UnsafePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
                                      count: Int) {
        var i = 0
        let one = SIMD16<Float>(repeating: 1)
        while FastMath.vectorExp && i + 16 <= count {
            let g = load16(gate + i), d = load16(dh + i)
            let s = one / (one + FastMath.exp(-g))
            store16(d * g * s, dUp + i)
            store16(d * load16(up + i) * s * (one + g * (one - s)), dGate + i)
            i += 16
        }
        while i < count {
            let g = gate[i], s = 1 / (1 + expf(-g))
            dUp[i] = dh[i] * g * s
            dGate[i] = dh[i] * up[i] * s * (1 + g * (1 - s))
            i += 1
        }
    }
}

extension Activation {
    /// The gate's nonlinearity in a gated feed-forward block: h = act(gate) · up.
    public enum Kind: String, Sendable {
        /// SiLU (SwiGLU): Llama, Qwen, Phi-3.
        case silu
        /// GELU, tanh approximation (GeGLU): Gemma.
        case geluTanh
    }

    /// out[i] = act(gate[i]) · up[i]; `out` may alias `gate`.
    public static func gated(_ kind: Kind, out: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>,
                             up: UnsafePointer<Float>, count: Int) {
        switch kind {
        case .silu: swiglu(out: out, gate: gate, up: up, count: count)
        case .geluTanh: for i in 0..<count { out[i] = geluTanh(gate[i]) * up[i] }
        }
    }

    /// Gradients of h = act(g) · u: du = dh · act(g), dg = dh · u · act'(g).
    public static func gatedBackward(_ kind: Kind, dGate: UnsafeMutablePointer<Float>, dUp: UnsafeMutablePointer<Float>,
                                     dh: UnsafePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
                                     count: Int) {
        switch kind {
        case .silu:
            swigluBackward(dGate: dGate, dUp: dUp, dh: dh, gate: gate, up: up, count: count)
        case .geluTanh:
            for i in 0..<count {
                let (value, slope) = geluTanhWithSlope(gate[i])
                dUp[i] = dh[i] * value
                dGate[i] = dh[i] * up[i] * slope
            }
        }
    }

    /// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
    @inline(__always)
    public static func geluTanh(_ x: Float) -> Float {
        0.5 * x * (1 + tanhf(0.797_884_56 * (x + 0.044715 * x * x * x)))
    }

    @inline(__always)
    static func geluTanhWithSlope(_ x: Float) -> (Float, Float) {
        let k: Float = 0.797_884_56
        let t = tanhf(k * (x + 0.044715 * x * x * x))
        let slope = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x)
        return (0.5 * x * (1 + t), slope)
    }
}

/// s → cap · tanh(s / cap), Gemma 2's bound on attention scores and final logits.
public enum SoftCap {
    public static func apply(_ x: UnsafeMutablePointer<Float>, count: Int, cap: Float) {
        let inv = 1 / cap
        for i in 0..<count { x[i] = cap * tanhf(x[i] * inv) }
    }

    /// dx = dy · (1 − (y/cap)²), given the capped values y (in place over dy).
    public static func backward(_ dy: UnsafeMutablePointer<Float>, capped y: UnsafePointer<Float>, count: Int, cap: Float) {
        let inv = 1 / cap
        for i in 0..<count { let t = y[i] * inv; dy[i] *= 1 - t * t }
    }
}
