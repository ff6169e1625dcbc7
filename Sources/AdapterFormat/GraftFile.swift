import Dispatch
import LlamaModel

/// The `.graft` adapter file: safetensors-like, with optional per-tensor zlib compression.
///
/// Layout as in `TensorHeader`: u64 header length, JSON header, data. Tensor names follow PEFT
/// (`base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight`), but rows of lora_B are
/// kept in Graft's own (GGUF) order, exactly as `LoRAAdapter` holds them. Every entry carries
/// `crc32` of its raw bytes; a compressed entry also has `"compression": "zlib"`,
/// `"shuffle": "byte"` and `raw_size`, and its `data_offsets` delimit the deflated blob.
/// `__metadata__` holds the keys of `GraftMetadata` plus free-form strings.
public enum GraftFile {
    /// The storage dtype used unless the caller picks one. F32 keeps the served adapter
    /// bit-identical to the trained one; with shuffle+zlib a trained SmolLM2 r=8 adapter takes
    /// 89% of its raw size (BF16: 39%, at 0.24% relative error in B·A), and bf16-exact values
    /// cost no more than BF16. Measurements: docs/ARCHITECTURE.md.
    public static let defaultStorage: StorageType = .f32

    /// Serializes `adapter` with its identity `info`.
    /// - Parameters:
    ///   - dtype: element type on disk; F16 and BF16 round, F32 is exact.
    ///   - compress: byte-shuffle and deflate tensors.
    ///   - minimumSaving: keep a tensor deflated only if that saves at least this fraction of its
    ///     size (0 deflates every tensor).
    /// - Throws: `AdapterFormatError` for reserved or conflicting metadata keys, a pair whose
    ///   arrays do not match its shape, non-finite values, or values that overflow `dtype`.
    public static func encode(_ adapter: LoRAAdapter, info: AdapterInfo, dtype: StorageType = defaultStorage,
                              compress: Bool = true, minimumSaving: Double = 0.2) throws -> [UInt8] {
        let metadata = try GraftMetadata.encode(adapter, info: info)
        var tensors: [(name: String, shape: [Int], values: [Float])] = []
        for (target, pair) in adapter.pairs {
            guard pair.rank > 0, pair.a.count == pair.rank * pair.inFeatures,
                  pair.b.count == pair.outFeatures * pair.rank else {
                throw AdapterFormatError.inconsistentShapes(target: target.description, a: [pair.rank, pair.inFeatures],
                                                            b: [pair.outFeatures, pair.rank])
            }
            tensors.append((PEFTName.tensor(target, .a), [pair.rank, pair.inFeatures], pair.a))
            tensors.append((PEFTName.tensor(target, .b), [pair.outFeatures, pair.rank], pair.b))
        }
        tensors.sort { Array($0.name.utf8).lexicographicallyPrecedes($1.name.utf8) }

        var entries: [(name: String, dtype: StorageType, shape: [Int], begin: Int, end: Int,
                       fields: [(key: String, value: JSONValue)])] = []
        var blobs: [[UInt8]] = []
        var offset = 0
        for t in tensors {
            guard t.values.allSatisfy(\.isFinite) else { throw AdapterFormatError.nonFiniteValue(tensor: t.name) }
            guard let raw = dtype.encode(t.values) else {
                throw AdapterFormatError.valueOutOfRange(tensor: t.name, dtype: dtype.rawValue)
            }
            var fields: [(key: String, value: JSONValue)] = []
            let blob: [UInt8]
            // Deflate only where it pays: trained Float32 values shrink by about a tenth, and
            // inflating them would dominate the adapter's load time (docs/ARCHITECTURE.md).
            let deflated = compress ? Compression.deflate(Compression.shuffle(raw, width: dtype.byteSize)) : []
            if compress && (minimumSaving <= 0 || Double(deflated.count) <= Double(raw.count) * (1 - minimumSaving)) {
                blob = deflated
                fields = [("compression", .string("zlib")), ("shuffle", .string("byte")), ("raw_size", .int(raw.count))]
            } else {
                blob = raw
            }
            fields.append(("crc32", .int(Int(Compression.crc32(raw[...])))))
            entries.append((t.name, dtype, t.shape, offset, offset + blob.count, fields))
            blobs.append(blob)
            offset += blob.count
        }
        var out = TensorHeader.serialize(entries: entries, metadata: metadata)
        out.reserveCapacity(out.count + offset)
        for b in blobs { out += b }
        return out
    }

    /// Parses and fully checks a `.graft` file: layout, checksums, metadata, and that every
    /// target has both factors with shapes [r, in] and [out, r].
    /// - Throws: `AdapterFormatError`; never traps or allocates beyond what the file can hold.
    public static func decode(_ bytes: [UInt8]) throws -> (LoRAAdapter, AdapterInfo) {
        let header = try TensorHeader.parse(bytes, graft: true)
        try header.checkLayout(dataSize: bytes.count - header.dataStart)
        let meta = try GraftMetadata.decode(header.metadata)
        let factors = try pairEntries(header.entries)

        // Checksums and decoding dominate the load time; targets are independent, so they run
        // in parallel, and the first failure in target order is the one reported.
        let targets = factors.keys.sorted()
        var decoded = [Result<LoRAPair, Error>?](repeating: nil, count: targets.count)
        decoded.withUnsafeMutableBufferPointer { out in
            DispatchQueue.concurrentPerform(iterations: targets.count) { i in
                let ab = factors[targets[i]]!
                out[i] = Result {
                    LoRAPair(rank: ab.a.shape[0], inFeatures: ab.a.shape[1], outFeatures: ab.b.shape[0],
                             a: try values(of: ab.a, in: bytes, dataStart: header.dataStart),
                             b: try values(of: ab.b, in: bytes, dataStart: header.dataStart))
                }
            }
        }
        var pairs: [LoRATarget: LoRAPair] = [:]
        for (target, result) in zip(targets, decoded) { pairs[target] = try result!.get() }
        let modules = Projection.allCases.filter { p in pairs.keys.contains { $0.projection == p } }.map(\.rawValue)
        guard Set(modules) == Set(meta.targetModules) else {
            throw AdapterFormatError.invalidMetadata(key: GraftMetadata.Key.targetModules,
                reason: "lists \(meta.targetModules.joined(separator: ",")) but the tensors target \(modules.joined(separator: ","))")
        }
        let adapter = LoRAAdapter(rank: meta.rank, alpha: meta.alpha, useRSLoRA: meta.useRSLoRA, pairs: pairs,
                                  metadata: meta.info.extra)
        return (adapter, meta.info)
    }

    /// The identity fields of a `.graft` file, from its header alone. `bytes` may be the whole
    /// file or just its first `headerByteCount` bytes.
    public static func readInfo(_ bytes: [UInt8]) throws -> AdapterInfo {
        try GraftMetadata.decode(TensorHeader.parse(bytes, graft: true).metadata).info
    }

    /// Bytes from the start of the file to the end of the header, given at least its first 8.
    public static func headerByteCount(_ prefix: [UInt8]) throws -> Int {
        guard prefix.count >= 8 else {
            throw AdapterFormatError.truncated(context: "the header length field", needed: 8, available: prefix.count)
        }
        var n: UInt64 = 0
        for k in (0..<8).reversed() { n = n << 8 | UInt64(prefix[k]) }
        guard n <= UInt64(SafeTensors.maxHeaderBytes) else {
            throw AdapterFormatError.headerTooLarge(claimed: n, limit: SafeTensors.maxHeaderBytes)
        }
        return 8 + Int(n)
    }

    /// Sizes, shapes and settings of a `.graft` file for display, from the header alone
    /// (`bytes` as for `readInfo`).
    public static func summary(_ bytes: [UInt8]) throws -> GraftSummary {
        let header = try TensorHeader.parse(bytes, graft: true)
        let meta = try GraftMetadata.decode(header.metadata)
        let factors = try pairEntries(header.entries)
        let dtypes = StorageType.allCases.filter { t in header.entries.contains { $0.dtype == t } }
        return GraftSummary(info: meta.info, rank: meta.rank, alpha: meta.alpha, useRSLoRA: meta.useRSLoRA,
                            targetModules: meta.targetModules, pairCount: factors.count,
                            parameterCount: header.entries.reduce(0) { $0 + $1.elementCount },
                            dtypes: dtypes, compressed: header.entries.contains(where: \.compressed),
                            storedBytes: header.dataStart + (header.entries.map(\.end).max() ?? 0))
    }

    /// Groups entries into (A, B) per target, checking names, duplicates, partners and shapes.
    static func pairEntries(_ entries: [TensorEntry]) throws -> [LoRATarget: (a: TensorEntry, b: TensorEntry)] {
        var a: [LoRATarget: TensorEntry] = [:], b: [LoRATarget: TensorEntry] = [:]
        for e in entries {
            guard let (target, factor) = PEFTName.parseTensor(e.name) else { throw AdapterFormatError.unknownTensor(e.name) }
            let previous = factor == .a ? a.updateValue(e, forKey: target) : b.updateValue(e, forKey: target)
            if previous != nil { throw AdapterFormatError.duplicateTensor(PEFTName.tensor(target, factor)) }
        }
        var out: [LoRATarget: (a: TensorEntry, b: TensorEntry)] = [:]
        for target in Set(a.keys).union(b.keys).sorted() {
            guard let ea = a[target] else {
                throw AdapterFormatError.missingPartner(tensor: b[target]!.name, partner: PEFTName.tensor(target, .a))
            }
            guard let eb = b[target] else {
                throw AdapterFormatError.missingPartner(tensor: ea.name, partner: PEFTName.tensor(target, .b))
            }
            guard ea.shape.count == 2, eb.shape.count == 2, ea.shape[0] == eb.shape[1],
                  ea.shape.allSatisfy({ $0 > 0 }), eb.shape.allSatisfy({ $0 > 0 }) else {
                throw AdapterFormatError.inconsistentShapes(target: target.description, a: ea.shape, b: eb.shape)
            }
            out[target] = (ea, eb)
        }
        return out
    }

    /// The Float32 values of one entry: inflated (bounded by raw_size), unshuffled, checked
    /// against its CRC-32 and for non-finite values.
    private static func values(of e: TensorEntry, in bytes: [UInt8], dataStart: Int) throws -> [Float] {
        guard let expected = e.crc32 else { throw AdapterFormatError.invalidEntry(tensor: e.name, reason: "missing crc32") }
        let stored = bytes[(dataStart + e.begin)..<(dataStart + e.end)]
        // Stored tensors are checked and decoded in place; only deflated ones need a buffer.
        var raw = stored
        if e.compressed {
            var inflated = try Compression.inflate(stored, rawSize: e.rawSize, tensor: e.name)
            if e.shuffled { inflated = Compression.unshuffle(inflated, width: e.dtype.byteSize) }
            raw = inflated[...]
        }
        let actual = Compression.crc32(raw)
        guard actual == expected else {
            throw AdapterFormatError.checksumMismatch(tensor: e.name, expected: expected, actual: actual)
        }
        let v = e.dtype.decode(raw)
        guard v.allSatisfy(\.isFinite) else { throw AdapterFormatError.nonFiniteValue(tensor: e.name) }
        return v
    }
}
