import TestSupport
import GGUF
import LlamaModel
import Testing


@Suite("LoRA in the forward pass")
struct LoRATests {
    static let tokens = [1, 40, 77, 200, 5, 99, 130, 7, 250, 2, 17]

    @Test("an adapter whose B is zero leaves the logits exactly unchanged")
    func zeroB() throws {
        let model = try TinyModel.model()
        let adapter = try PreparedAdapter(randomAdapter(model.config, zeroB: true), config: model.config)
        let base = try model.forward(Self.tokens, cache: model.makeCache(), logits: .all)
        let with = try model.forward(Self.tokens, cache: model.makeCache(), logits: .all, adapters: AdapterMix(adapter))
        #expect(base == with)
    }

    @Test("unmerged LoRA (exact Float32 factors) equals the folded model and a plain reference over the folded file")
    func unmergedEqualsFolded() throws {
        let bytes = TinyModel.gguf()
        let model = try LlamaModel(gguf: GGUFFile(data: bytes))
        let adapter = randomAdapter(model.config)
        let unmerged = try model.forward(Self.tokens, cache: model.makeCache(), logits: .all,
                                         adapters: AdapterMix(PreparedAdapter(adapter, config: model.config, precision: .float32)))
        let base = try model.forward(Self.tokens, cache: model.makeCache(), logits: .all)
        #expect(maxAbsDifference(unmerged, base) > 0.05, "the adapter must visibly change the logits")
        let folded = try model.folding(adapter).forward(Self.tokens, cache: model.makeCache(), logits: .all)
        #expect(maxAbsDifference(unmerged, folded) < 1e-4)
        let file = try LlamaModel.foldedGGUF(source: GGUFFile(data: bytes), adapter: adapter)
        let reference = try ReferenceLlama.logits(gguf: GGUFFile(data: file), tokens: Self.tokens)
        #expect(maxAbsDifference(unmerged, reference) < 1e-4)
        let reloaded = try LlamaModel(gguf: GGUFFile(data: file))
        #expect(maxAbsDifference(unmerged, try reloaded.forward(Self.tokens, cache: reloaded.makeCache(), logits: .all)) < 1e-4)
    }

    @Test("rows of one batch with different adapters equal running each sequence alone")
    func perRowAdapters() throws {
        let model = try TinyModel.model()
        let a = try PreparedAdapter(randomAdapter(model.config, seed: 1), config: model.config)
        let b = try PreparedAdapter(randomAdapter(model.config, rank: 2, seed: 2, projections: [.query, .down]), config: model.config)
        let mixes: [AdapterMix] = [.none, AdapterMix(a), AdapterMix(b), AdapterMix([(a, 0.7), (b, 0.3)]), AdapterMix(a)]
        let prompts = [[1, 2, 3], [7, 8, 9, 10, 11, 12, 13, 14, 15, 16], [40], [5, 6], [99, 98, 97, 96]]
        // Prefill everything as one batch, then one batched decode step.
        let caches = prompts.map { _ in model.makeCache() }
        let batched = try model.forward(zip(prompts, zip(caches, mixes)).map {
            LlamaModel.Segment(tokens: $0.0, cache: $0.1.0, adapters: $0.1.1, logits: .all)
        })
        let step = try model.forward(caches.indices.map { LlamaModel.Segment(tokens: [42], cache: caches[$0], adapters: mixes[$0]) })
        for i in prompts.indices {
            let cache = model.makeCache()
            let alone = try model.forward(prompts[i], cache: cache, logits: .all, adapters: mixes[i])
            #expect(maxAbsDifference(batched[i], alone) < 1e-4, "sequence \(i) prefill")
            let next = try model.forward([42], cache: cache, adapters: mixes[i])
            #expect(maxAbsDifference(step[i], next) < 1e-4, "sequence \(i) decode step")
        }
    }

    @Test("a mix of one adapter with weights 0.5 and 0.5 equals the adapter; weights scale the update")
    func mixes() throws {
        let model = try TinyModel.model()
        let raw = randomAdapter(model.config)
        let a = try PreparedAdapter(raw, config: model.config)
        let plain = try model.forward(Self.tokens, cache: model.makeCache(), logits: .all, adapters: AdapterMix(a))
        let halves = try model.forward(Self.tokens, cache: model.makeCache(), logits: .all, adapters: AdapterMix([(a, 0.5), (a, 0.5)]))
        #expect(maxAbsDifference(plain, halves) < 1e-4)
        var doubledAlpha = raw
        doubledAlpha.alpha *= 2
        let twice = try model.forward(Self.tokens, cache: model.makeCache(), logits: .all, adapters: AdapterMix([(a, 2)]))
        let viaAlpha = try model.forward(Self.tokens, cache: model.makeCache(), logits: .all,
                                         adapters: AdapterMix(PreparedAdapter(doubledAlpha, config: model.config)))
        #expect(maxAbsDifference(twice, viaAlpha) < 1e-4)
    }

    @Test("scale is alpha/r, or alpha/sqrt(r) with rsLoRA")
    func scaling() {
        var a = LoRAAdapter(rank: 16, alpha: 32, pairs: [:])
        #expect(a.scale == 2)
        a.useRSLoRA = true
        #expect(a.scale == 8)
    }

    @Test("an adapter for another base model is rejected with the target and a hint")
    func wrongBase() throws {
        let model = try TinyModel.model()
        let other = try TinyModel.model(TinyModel.Spec(dim: 96, heads: 6, kvHeads: 3))
        let adapter = randomAdapter(other.config, projections: [.up])
        #expect {
            try PreparedAdapter(adapter, config: model.config)
        } throws: { error in
            guard case AdapterError.shapeMismatch(let target, let detail) = error else { return false }
            return target == "layers.0.up_proj" && detail.contains("maybe the wrong base model?")
        }
        var deep = randomAdapter(model.config, projections: [.query])
        deep.pairs[LoRATarget(layer: 7, projection: .query)] = deep.pairs[LoRATarget(layer: 0, projection: .query)]
        #expect(throws: AdapterError.self) { try PreparedAdapter(deep, config: model.config) }
    }

    @Test("a prepared adapter keeps only its factors: the adapter's own arrays are not retained")
    func preparedKeepsNoSource() throws {
        let model = try TinyModel.model()
        let c = model.config
        let target = LoRATarget(layer: 0, projection: .query)
        let (out, inF) = c.shape(of: .query)
        var a = (0..<4 * inF).map { Float($0 % 7) * 0.01 }
        let b = (0..<out * 4).map { Float($0 % 5) * 0.02 }
        func prepare(_ a: [Float]) throws -> PreparedAdapter {
            try PreparedAdapter(LoRAAdapter(rank: 4, alpha: 8, pairs: [target: LoRAPair(rank: 4, inFeatures: inF, outFeatures: out,
                                                                                            a: a, b: b)]), config: c)
        }
        let prepared = try prepare(a)
        // If anything still shared `a`'s storage, writing to it would copy it to a new address.
        let before = a.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
        a[0] += 1
        let after = a.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
        #expect(before == after)
        #expect(prepared.byteCount == 4 * (inF + out) * 2)
        // The factors themselves: equal to a fresh preparation of the same values, not of others.
        a[0] -= 1
        #expect(prepared.hasSameFactors(as: try prepare(a)))
        a[1] += 0.5
        #expect(!prepared.hasSameFactors(as: try prepare(a)))
        let exact = try PreparedAdapter(LoRAAdapter(rank: 4, alpha: 8, pairs: [target: LoRAPair(
            rank: 4, inFeatures: inF, outFeatures: out, a: a, b: b)]), config: c, precision: .float32)
        let half = try prepare(a)
        #expect(!half.hasSameFactors(as: exact))
    }

    @Test("HF to GGUF row order interleaves each head's halves, and back")
    func permutation() {
        // Two heads of dimension 4, width 1: HF rows [h0: a b c d, h1: e f g h].
        let hf: [Float] = [0, 1, 2, 3, 10, 11, 12, 13]
        let gguf = LoRAPair.permuteRowsFromHF(hf, rows: 8, width: 1, headDim: 4)
        #expect(gguf == [0, 2, 1, 3, 10, 12, 11, 13])
        #expect(LoRAPair.permuteRowsToHF(gguf, rows: 8, width: 1, headDim: 4) == hf)
        let wide = (0..<24).map(Float.init)
        #expect(LoRAPair.permuteRowsToHF(LoRAPair.permuteRowsFromHF(wide, rows: 8, width: 3, headDim: 4),
                                         rows: 8, width: 3, headDim: 4) == wide)
    }
}
