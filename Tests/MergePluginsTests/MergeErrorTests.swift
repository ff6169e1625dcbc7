import CatMerge
import DareMerge
import LinearMerge
import LlamaModel
import SVDMerge
import Testing
import TiesMerge

@Suite("merge validation and metadata")
struct MergeErrorTests {
    static let all: [any MergeMethod] = [LinearMerge(), CatMerge(), SVDMerge(), TiesMerge(), DareLinearMerge(), DareTiesMerge()]
    static let sameRank: [any MergeMethod] = [LinearMerge(), TiesMerge(), DareLinearMerge(), DareTiesMerge()]

    static func isIncompatible(_ error: MergeError) -> Bool {
        if case .incompatible = error { return true } else { return false }
    }

    static func isBadOption(_ error: MergeError) -> Bool {
        if case .badOption = error { return true } else { return false }
    }

    /// Expects `body` to throw a `MergeError` that satisfies `check`.
    static func expectError(_ body: () throws -> LoRAAdapter, sourceLocation: SourceLocation = #_sourceLocation,
                            _ check: (MergeError) -> Bool) {
        let error = #expect(throws: MergeError.self, sourceLocation: sourceLocation) { _ = try body() }
        if let error { #expect(check(error), "unexpected \(error)", sourceLocation: sourceLocation) }
    }

    @Test("the methods have PEFT's combination names")
    func names() {
        #expect(Self.all.map(\.name) == ["linear", "cat", "svd", "ties", "dare_linear", "dare_ties"])
        #expect(Self.all.allSatisfy { !$0.summary.isEmpty })
    }

    @Test("no inputs is an error for every method")
    func noInputs() {
        for method in Self.all {
            #expect(throws: MergeError.noInputs) { try method.merge([], options: MergeOptions()) }
        }
    }

    @Test("a density outside (0, 1] is rejected", arguments: [Float(0), -0.2, 1.5, .nan])
    func badDensity(density: Float) {
        let inputs = [WeightedAdapter(Fixture.adapter(seed: 50, rank: 2, alpha: 2), weight: 1)]
        for method in Self.all {
            Self.expectError({ try method.merge(inputs, options: MergeOptions(density: density)) }, Self.isBadOption)
        }
    }

    @Test("a rank that is not positive is rejected", arguments: [0, -3])
    func badRank(rank: Int) {
        let inputs = [WeightedAdapter(Fixture.adapter(seed: 51, rank: 2, alpha: 2), weight: 1)]
        Self.expectError({ try SVDMerge().merge(inputs, options: MergeOptions(rank: rank)) }, Self.isBadOption)
    }

    @Test("linear, ties and dare need one rank; cat and svd take mixed ranks")
    func rankMismatch() throws {
        let inputs = [WeightedAdapter(Fixture.adapter(seed: 52, rank: 2, alpha: 2), weight: 1),
                      WeightedAdapter(Fixture.adapter(seed: 53, rank: 3, alpha: 2), weight: 1)]
        for method in Self.sameRank {
            Self.expectError({ try method.merge(inputs, options: MergeOptions()) }, Self.isIncompatible)
        }
        _ = try CatMerge().merge(inputs, options: MergeOptions())
        _ = try SVDMerge().merge(inputs, options: MergeOptions())
    }

    @Test("one target's pairs of different ranks are rejected even when the nominal ranks agree")
    func pairRankMismatch() {
        let t = LoRATarget(layer: 0, projection: .query)
        var odd = Fixture.adapter(seed: 54, rank: 2, alpha: 2)
        odd.pairs[t] = LoRAPair(rank: 3, inFeatures: 16, outFeatures: 16, a: .init(repeating: 0.1, count: 48),
                                b: .init(repeating: 0.1, count: 48))
        let inputs = [WeightedAdapter(Fixture.adapter(seed: 55, rank: 2, alpha: 2), weight: 1), WeightedAdapter(odd, weight: 1)]
        for method in Self.sameRank {
            Self.expectError({ try method.merge(inputs, options: MergeOptions()) }, Self.isIncompatible)
        }
    }

    @Test("adapters for different base shapes are rejected by every method")
    func shapeMismatch() {
        let inputs = [WeightedAdapter(Fixture.adapter(seed: 56, rank: 2, alpha: 2, name: "small"), weight: 1),
                      WeightedAdapter(Fixture.adapter(seed: 57, rank: 2, alpha: 2, name: "wide", inScale: 2), weight: 1)]
        for method in Self.all {
            Self.expectError({ try method.merge(inputs, options: MergeOptions()) }) { error in
                guard case .incompatible(let text) = error else { return false }
                return text.contains("'small'") && text.contains("'wide'")
            }
        }
    }

    @Test("negative weights are refused where PEFT takes sqrt(weight · scale), accepted by cat and svd")
    func negativeWeight() throws {
        let inputs = [WeightedAdapter(Fixture.adapter(seed: 58, rank: 2, alpha: 2), weight: 1),
                      WeightedAdapter(Fixture.adapter(seed: 59, rank: 2, alpha: 2), weight: -0.5)]
        for method in Self.sameRank {
            Self.expectError({ try method.merge(inputs, options: MergeOptions()) }, Self.isBadOption)
        }
        _ = try CatMerge().merge(inputs, options: MergeOptions())
        _ = try SVDMerge().merge(inputs, options: MergeOptions())
    }

    @Test("non-finite weights are rejected")
    func nonFiniteWeight() {
        let inputs = [WeightedAdapter(Fixture.adapter(seed: 60, rank: 2, alpha: 2), weight: .infinity)]
        for method in Self.all {
            Self.expectError({ try method.merge(inputs, options: MergeOptions()) }, Self.isBadOption)
        }
    }

    @Test("results record the method and the inputs by name, else by index, with scale 1 and no rsLoRA")
    func metadata() throws {
        let inputs = [WeightedAdapter(Fixture.adapter(seed: 61, rank: 2, alpha: 4, rsLoRA: true, name: "math"), weight: 1),
                      WeightedAdapter(Fixture.adapter(seed: 62, rank: 2, alpha: 2), weight: 0.5)]
        for method in Self.all {
            let merged = try method.merge(inputs, options: MergeOptions())
            #expect(merged.metadata["merge_method"] == method.name)
            #expect(merged.metadata["merge_inputs"] == "math,1")
            #expect(merged.metadata["merge_weights"] == "1.0,0.5")
            #expect(merged.metadata["name"] == nil)
            #expect(!merged.useRSLoRA && merged.scale == 1 && merged.alpha == Float(merged.rank))
        }
    }
}
