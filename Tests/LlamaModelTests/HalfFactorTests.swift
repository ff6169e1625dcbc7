import GGUF
import LlamaModel
import TensorKit
import TestSupport
import Testing

/// Served adapters hold their factors as IEEE halves (`PreparedAdapter.Precision.float16`).
@Suite("LoRA factors held as 16-bit halves")
struct HalfFactorTests {
    static let tokens = [1, 40, 77, 200, 5, 99, 130, 7, 250, 2, 17]

    /// The adapter whose exact products are what the half path computes: A rounded to halves,
    /// scale · B rounded to halves, scale 1.
    static func rounded(_ adapter: LoRAAdapter) -> LoRAAdapter {
        let scale = adapter.scale
        var out = LoRAAdapter(rank: adapter.rank, alpha: Float(adapter.rank), pairs: [:])
        for (t, p) in adapter.pairs {
            out.pairs[t] = LoRAPair(rank: p.rank, inFeatures: p.inFeatures, outFeatures: p.outFeatures,
                                    a: p.a.map { Float(Float16($0)) }, b: p.b.map { Float(Float16(scale * $0)) })
        }
        return out
    }

    /// Prefill logits (all rows) and one decode step's logits.
    static func run(_ model: LlamaModel, _ mix: AdapterMix) throws -> (prefill: [Float], step: [Float]) {
        let cache = model.makeCache()
        let prefill = try model.forward(Self.tokens, cache: cache, logits: .all, adapters: mix)
        let step = try model.forward([42], cache: cache, adapters: mix)
        return (prefill, step)
    }

    @Test("half factors give a plain reference's logits over the half-rounded factors, prefill and decode")
    func matchesRoundedReference() throws {
        let bytes = TinyModel.gguf()
        let model = try LlamaModel(gguf: GGUFFile(data: bytes))
        let adapter = randomAdapter(model.config, rank: 4, alpha: 8)
        let half = try PreparedAdapter(adapter, config: model.config)
        #expect(half.precision == .float16)
        #expect(half.precision(of: LoRATarget(layer: 0, projection: .down), config: model.config) == .float16)
        let exact = try PreparedAdapter(adapter, config: model.config, precision: .float32)
        #expect(half.byteCount * 2 == exact.byteCount)

        let got = try Self.run(model, AdapterMix(half))
        let roundedAdapter = Self.rounded(adapter)
        let file = try LlamaModel.foldedGGUF(source: GGUFFile(data: bytes), adapter: roundedAdapter)
        let reference = try ReferenceLlama.logits(gguf: GGUFFile(data: file), tokens: Self.tokens + [42])
        let split = Self.tokens.count * model.config.vocabularySize
        #expect(maxAbsDifference(got.prefill, [Float](reference.prefix(split))) < 1e-4)
        #expect(maxAbsDifference(got.step, [Float](reference.dropFirst(split))) < 1e-4)
        // The same products through the Float32 kernels: only summation order may differ.
        let viaF32 = try Self.run(model, AdapterMix(PreparedAdapter(roundedAdapter, config: model.config, precision: .float32)))
        #expect(maxAbsDifference(got.prefill, viaF32.prefill) < 1e-5)
        #expect(maxAbsDifference(got.step, viaF32.step) < 1e-5)
    }

    @Test("half factors differ from the exact Float32 ones by about the rounding of the adapter's update")
    func errorAgainstExact() throws {
        let model = try TinyModel.model()
        let adapter = randomAdapter(model.config, rank: 16, alpha: 32, seed: 9)
        let base = try Self.run(model, .none)
        let exact = try Self.run(model, AdapterMix(PreparedAdapter(adapter, config: model.config, precision: .float32)))
        let half = try Self.run(model, AdapterMix(PreparedAdapter(adapter, config: model.config)))
        for (name, b, e, h) in [("prefill", base.prefill, exact.prefill, half.prefill), ("decode", base.step, exact.step, half.step)] {
            let update = maxAbsDifference(e, b), err = maxAbsDifference(h, e)
            let logitScale = e.map(abs).max()!
            print("half factors, \(name): max |half - exact| \(err), relative to the adapter's change \(err / update), to the largest logit \(err / logitScale)")
            #expect(update > 0.05, "the adapter must visibly change the logits")
            #expect(err > 0, "rounding to halves must show")
            // Each factor is within 2^-11 relative of its value, so each product term within
            // about 2 · 2^-11; allow a factor of two for accumulation through the layers.
            #expect(err <= 4 * 0x1p-11 * update)
        }
    }

    @Test("a value beyond the half range keeps its target in Float32; the others stay halves")
    func overflowKeepsFloat32() throws {
        let model = try TinyModel.model()
        var adapter = Self.rounded(randomAdapter(model.config, rank: 4, alpha: 8, projections: [.query, .down]))
        let big = LoRATarget(layer: 0, projection: .down), bigA = LoRATarget(layer: 1, projection: .query)
        adapter.pairs[big]!.b[3] = 70_000  // a bf16 value; as a half it would be infinite
        adapter.pairs[bigA]!.a[5] = -1e6
        let edge = LoRATarget(layer: 0, projection: .query)
        adapter.pairs[edge]!.b[0] = 65_504  // the largest half: kept exactly
        let half = try PreparedAdapter(adapter, config: model.config)
        #expect(half.precision(of: big, config: model.config) == .float32)
        #expect(half.precision(of: bigA, config: model.config) == .float32)
        #expect(half.precision(of: edge, config: model.config) == .float16)
        #expect(half.precision(of: LoRATarget(layer: 1, projection: .down), config: model.config) == .float16)
        #expect(half.precision(of: LoRATarget(layer: 0, projection: .up), config: model.config) == nil)
        // Every value is a half or kept in Float32, so the products equal the exact ones.
        let got = try Self.run(model, AdapterMix(half))
        let exact = try Self.run(model, AdapterMix(PreparedAdapter(adapter, config: model.config, precision: .float32)))
        #expect(got.prefill.allSatisfy(\.isFinite) && got.step.allSatisfy(\.isFinite))
        #expect(maxAbsDifference(got.prefill, exact.prefill) <= 1e-5 * exact.prefill.map(abs).max()!)
        #expect(maxAbsDifference(got.step, exact.step) <= 1e-5 * exact.step.map(abs).max()!)
    }

    @Test("narrowing to halves rounds to nearest and reports values beyond the range")
    func narrowing() {
        func narrow(_ v: [Float]) -> (Bool, [UInt16]) {
            var out = [UInt16](repeating: 0, count: v.count)
            let ok = Kernels.narrow(v, into: &out, count: v.count)
            return (ok, out)
        }
        let (ok, h) = narrow([0.1, -65_504, 65_519, 1e-8, 3])
        #expect(ok)
        #expect(h.map { Float(Float16(bitPattern: $0)) } == [Float(Float16(0.1)), -65_504, 65_504, 0, 3])
        #expect(!narrow([1, 65_520]).0)
        #expect(!narrow([-1e6]).0)
        #expect(!narrow([.nan]).0)
        var wide = [Float](repeating: 0, count: 37)
        let halves = (0..<37).map { Float16(Float($0) * 0.37 - 5).bitPattern }
        Kernels.widen(halves: halves, into: &wide, count: 37)
        #expect(wide == halves.map { Float(Float16(bitPattern: $0)) })
        let x = (0..<37).map { Float($0) * 0.01 }
        let d = Kernels.dot(x, halves: halves, 37)
        #expect(abs(d - zip(x, wide).map(*).reduce(0, +)) < 1e-4)
    }
}
