import Foundation
import LlamaModel
import Testing
@testable import AdapterFormat

@Suite(".graft file round trips")
struct GraftFileTests {
    @Test("an F32 file decodes to exactly the adapter that was encoded, compressed or not", arguments: [true, false])
    func exactF32(compress: Bool) throws {
        var adapter = syntheticAdapter(config: tinyConfig)
        adapter.metadata = ["training_config": #"{"lr": 0.0002, "steps": 100}"#]
        let bytes = try GraftFile.encode(adapter, info: sampleInfo, dtype: .f32, compress: compress, minimumSaving: 0)
        let (decoded, info) = try GraftFile.decode(bytes)
        #expect(decoded == adapter)
        #expect(info.baseModel == sampleInfo.baseModel && info.tenant == "acme" && info.name == "support-bot")
        #expect(info.extra == adapter.metadata)
        let entries = try layout(bytes).header.entries
        #expect(entries.allSatisfy { $0.compressed == compress && $0.shuffled == compress && $0.crc32 != nil })
    }

    @Test("by default a tensor is kept deflated only where that saves a fifth: random Float32 stays raw, bf16-exact values shrink")
    func compressionPays() throws {
        let adapter = syntheticAdapter(config: tinyConfig)
        let f32 = try layout(GraftFile.encode(adapter, info: sampleInfo, dtype: .f32)).header.entries
        #expect(f32.allSatisfy { !$0.compressed && $0.crc32 != nil })
        var rounded = adapter
        for (t, p) in adapter.pairs {
            rounded.pairs[t]!.a = StorageType.bf16.decode(StorageType.bf16.encode(p.a)![...])
            rounded.pairs[t]!.b = StorageType.bf16.decode(StorageType.bf16.encode(p.b)![...])
        }
        let bytes = try GraftFile.encode(rounded, info: sampleInfo, dtype: .f32)
        #expect(try layout(bytes).header.entries.allSatisfy(\.compressed))
        #expect(try GraftFile.decode(bytes).0 == rounded)
    }

    @Test("F16 and BF16 files hold each value rounded once to that type", arguments: [StorageType.f16, .bf16])
    func halfPrecision(dtype: StorageType) throws {
        let adapter = syntheticAdapter(config: tinyConfig, rank: 3, seed: 7)
        for compress in [true, false] {
            let (decoded, _) = try GraftFile.decode(GraftFile.encode(adapter, info: sampleInfo, dtype: dtype, compress: compress, minimumSaving: 0))
            #expect(decoded.pairs.keys == adapter.pairs.keys)
            let bound: Float = dtype == .f16 ? 0x1p-11 : 0x1p-8   // half an ulp, relative
            for (target, pair) in adapter.pairs {
                let got = decoded.pairs[target]!
                #expect(got.a == dtype.decode(dtype.encode(pair.a)![...]))
                #expect(got.b == dtype.decode(dtype.encode(pair.b)![...]))
                // F16 loses relative precision below 2^-14 (subnormals); there the bound is absolute.
                for (x, y) in zip(pair.a + pair.b, got.a + got.b) where abs(x) > 0x1p-14 {
                    #expect(abs(x - y) <= bound * abs(x))
                }
            }
        }
    }

    @Test("pairs whose rank differs from the nominal rank keep their own rank")
    func perTargetRanks() throws {
        let ranks = [LoRATarget(layer: 0, projection: .query): 8, LoRATarget(layer: 1, projection: .down): 2]
        let adapter = syntheticAdapter(config: tinyConfig, rank: 4, ranks: ranks)
        let (decoded, _) = try GraftFile.decode(GraftFile.encode(adapter, info: sampleInfo))
        #expect(decoded == adapter)
        #expect(decoded.pairs[LoRATarget(layer: 0, projection: .query)]?.rank == 8)
        #expect(decoded.pairs[LoRATarget(layer: 1, projection: .down)]?.rank == 2)
        #expect(decoded.rank == 4)
    }

    @Test("rank, alpha, rsLoRA, identity and free-form metadata survive, and readInfo needs only the header")
    func metadata() throws {
        var adapter = syntheticAdapter(config: tinyConfig, alpha: 12.5, projections: [.value, .query])
        adapter.useRSLoRA = true
        adapter.metadata = ["metrics": #"{"loss": 1.25}"#]
        let info = AdapterInfo(baseModel: "m", baseModelSHA256: "00ff", tenant: "t", name: "n",
                               created: Date(timeIntervalSince1970: 1_700_000_123.75), extra: ["note": "ünïcode"])
        let bytes = try GraftFile.encode(adapter, info: info)
        let (decoded, readBack) = try GraftFile.decode(bytes)
        #expect(decoded.alpha == 12.5 && decoded.useRSLoRA && decoded.rank == adapter.rank)
        // Free-form pairs from both sides form one set, seen from both sides after decoding.
        var merged = info
        merged.extra["metrics"] = adapter.metadata["metrics"]
        #expect(readBack == merged)
        #expect(decoded.metadata == merged.extra)
        #expect(readBack.created == Date(timeIntervalSince1970: 1_700_000_123))
        let header = try layout(bytes).header.metadata
        #expect(header["format"] == "graft-adapter" && header["format_version"] == "1")
        #expect(header["target_modules"] == "q_proj,v_proj")
        #expect(header["created"] == "2023-11-14T22:15:23Z")
        let prefix = Array(bytes[..<(try GraftFile.headerByteCount(Array(bytes[..<8])))])
        #expect(try GraftFile.readInfo(prefix) == merged)
    }

    @Test("the summary reports settings and the stored size against Float32 size")
    func summary() throws {
        let adapter = syntheticAdapter(config: tinyConfig, rank: 4, alpha: 8, projections: [.query, .down])
        let bytes = try GraftFile.encode(adapter, info: sampleInfo, dtype: .bf16, minimumSaving: 0)
        let s = try GraftFile.summary(bytes)
        #expect(s.info == sampleInfo)
        #expect(s.rank == 4 && s.alpha == 8 && !s.useRSLoRA)
        #expect(s.targetModules == ["q_proj", "down_proj"])
        #expect(s.pairCount == 4 && s.parameterCount == adapter.parameterCount)
        #expect(s.dtypes == [.bf16] && s.compressed)
        #expect(s.storedBytes == bytes.count)
        #expect(s.rawFloat32Bytes == adapter.parameterCount * 4)
        let headerOnly = Array(bytes[..<(try GraftFile.headerByteCount(bytes))])
        #expect(try GraftFile.summary(headerOnly) == s)
    }

    @Test("encoding is deterministic and stores B rows in Graft's order, unpermuted")
    func deterministicAndUnpermuted() throws {
        let adapter = syntheticAdapter(config: tinyConfig, projections: [.query, .key])
        let bytes = try GraftFile.encode(adapter, info: sampleInfo, compress: false)
        #expect(try GraftFile.encode(adapter, info: sampleInfo, compress: false) == bytes)
        let (header, entries) = try layout(bytes)
        let target = LoRATarget(layer: 1, projection: .query)
        let e = try #require(entries[PEFTName.tensor(target, .b)])
        let stored = StorageType.f32.decode(bytes[(header.dataStart + e.begin)..<(header.dataStart + e.end)])
        #expect(stored == adapter.pairs[target]!.b)
    }

    @Test("reserved or contradictory metadata keys are refused")
    func reservedKeys() {
        var adapter = syntheticAdapter(config: tinyConfig, projections: [.query])
        var info = sampleInfo
        info.extra = ["final_loss": "0.42"]
        adapter.metadata = ["rank": "99"]
        #expect(thrownError { _ = try GraftFile.encode(adapter, info: info) } == .reservedMetadataKey("rank"))
        adapter.metadata = ["final_loss": "0.5"]
        #expect(thrownError { _ = try GraftFile.encode(adapter, info: info) } == .conflictingMetadata(key: "final_loss"))
        adapter.metadata = ["final_loss": "0.42"]
        #expect(thrownError { _ = try GraftFile.encode(adapter, info: info) } == nil)
        info.extra = ["tenant": "other"]
        #expect(thrownError { _ = try GraftFile.encode(adapter, info: info) } == .reservedMetadataKey("tenant"))
    }

    @Test("non-finite values and F16 overflow are refused by the encoder, naming the tensor")
    func encoderRefusesBadValues() {
        var adapter = syntheticAdapter(config: tinyConfig, projections: [.query])
        let target = LoRATarget(layer: 0, projection: .query)
        adapter.pairs[target]!.a[3] = .nan
        #expect(thrownError { _ = try GraftFile.encode(adapter, info: sampleInfo) }
                == .nonFiniteValue(tensor: PEFTName.tensor(target, .a)))
        adapter.pairs[target]!.a[3] = 1e5
        #expect(thrownError { _ = try GraftFile.encode(adapter, info: sampleInfo, dtype: .f16) }
                == .valueOutOfRange(tensor: PEFTName.tensor(target, .a), dtype: "F16"))
        #expect(thrownError { _ = try GraftFile.encode(adapter, info: sampleInfo, dtype: .bf16) } == nil)
    }

    @Test("an adapter of the fixture's values stored as F32 compresses to about its BF16 size")
    func shuffleFindsZeroBytes() throws {
        let adapter = try PEFTAdapter.read(directory: Fixture.adapterDirectory, config: smolConfig)
        let f32 = try GraftFile.encode(adapter, info: sampleInfo, dtype: .f32)
        let bf16 = try GraftFile.encode(adapter, info: sampleInfo, dtype: .bf16)
        // bf16-exact values have two zero low bytes per float, which the shuffle groups.
        #expect(Double(f32.count) < 1.1 * Double(bf16.count))
        #expect(try GraftFile.decode(f32).0 == adapter)
    }
}
