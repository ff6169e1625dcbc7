import GGUF
import Testing

@Suite("GGUF writer and reader round trip")
struct RoundTripTests {
    /// One entry per value type, in an order that is neither sorted nor grouped by type.
    static let entries: [(String, GGUFValue)] = [
        ("z.uint8", .uint8(250)),
        ("a.int8", .int8(-120)),
        ("m.uint16", .uint16(65_000)),
        ("b.int16", .int16(-32_000)),
        ("y.uint32", .uint32(4_000_000_000)),
        ("c.int32", .int32(-2_000_000_000)),
        ("x.float32", .float32(-3.25e-3)),
        ("x.float32.inf", .float32(-.infinity)),
        ("d.bool.true", .bool(true)),
        ("d.bool.false", .bool(false)),
        ("w.string", .string("llama")),
        ("w.string.empty", .string("")),
        ("w.string.unicode", .string("héllo, 世界 🦙\n\t\"")),
        ("e.uint64", .uint64(.max)),
        ("f.int64", .int64(.min)),
        ("g.float64", .float64(-1.5e300)),
        ("h.array.uint8", .array(elementType: 0, [.uint8(0), .uint8(255)])),
        ("h.array.int8", .array(elementType: 1, [.int8(-128), .int8(127)])),
        ("h.array.uint16", .array(elementType: 2, [.uint16(1), .uint16(65_535)])),
        ("h.array.int16", .array(elementType: 3, [.int16(-1), .int16(.min)])),
        ("h.array.uint32", .array(elementType: 4, [.uint32(7)])),
        ("h.array.int32", .array(elementType: 5, [.int32(-7), .int32(.max), .int32(0)])),
        ("h.array.float32", .array(elementType: 6, [.float32(0.5), .float32(-0.0), .float32(.leastNormalMagnitude / 4)])),
        ("h.array.bool", .array(elementType: 7, [.bool(true), .bool(false), .bool(true)])),
        ("h.array.string", .array(elementType: 8, [.string("a"), .string(""), .string("ß∂ƒ"), .string("🦙🦙")])),
        ("h.array.uint64", .array(elementType: 10, [.uint64(1 << 63)])),
        ("h.array.int64", .array(elementType: 11, [.int64(-1), .int64(.max)])),
        ("h.array.float64", .array(elementType: 12, [.float64(.pi), .float64(-.infinity)])),
        ("h.array.empty", .array(elementType: 4, [])),
        ("h.array.nested", .array(elementType: 9, [
            .array(elementType: 5, [.int32(1), .int32(-2)]),
            .array(elementType: 5, []),
            .array(elementType: 5, [.int32(3)]),
        ])),
        ("h.array.strings.nested", .array(elementType: 9, [.array(elementType: 8, [.string("x"), .string("yz")])])),
    ]

    static let tensorTypes: [GGMLType] = [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1]

    static func build(alignment: Int = 32) -> (bytes: [UInt8], data: [String: [UInt8]]) {
        var w = GGUFWriter()
        w.alignment = alignment
        if alignment != 32 { w.set("general.alignment", .uint32(UInt32(alignment))) }
        for (k, v) in entries { w.set(k, v) }
        var rng = SeededRandom(seed: 1)
        var data: [String: [UInt8]] = [:]
        for (i, type) in tensorTypes.enumerated() {
            // Odd element counts for the unblocked types so that offsets need padding.
            let dims = type.blockSize == 1 ? [3 + i, 5] : [64, 3]
            let encoded = Quantize.encode(rng.floats(dims.reduce(1, *)), as: type)
            let name = "blk.\(i).\(type.name.lowercased()).weight"
            w.addTensor(name, dimensions: dims, type: type, data: encoded)
            data[name] = encoded
        }
        return (w.serialize(), data)
    }

    @Test("every metadata value type reads back equal, with keys in file order")
    func metadataRoundTrip() throws {
        let file = try GGUFFile(data: Self.build().bytes)
        #expect(file.version == 3)
        #expect(file.metadataKeys == Self.entries.map(\.0))
        #expect(file.metadata.count == Self.entries.count)
        for (key, value) in Self.entries {
            #expect(file.metadata[key] == value, "\(key)")
            #expect(file.metadata[key]?.typeID == value.typeID, "\(key)")
        }
    }

    @Test("tensor infos read back with names, dimensions, types and aligned offsets, and data(of:) gives the bytes written")
    func tensorRoundTrip() throws {
        for alignment in [32, 64, 128] {
            let (bytes, data) = Self.build(alignment: alignment)
            let file = try GGUFFile(data: bytes)
            #expect(file.alignment == alignment)
            #expect(file.dataOffset % alignment == 0)
            #expect(file.tensors.map(\.type) == Self.tensorTypes)
            for (i, info) in file.tensors.enumerated() {
                let type = Self.tensorTypes[i]
                #expect(info.name == "blk.\(i).\(type.name.lowercased()).weight")
                #expect(info.dimensions == (type.blockSize == 1 ? [3 + i, 5] : [64, 3]))
                #expect(info.relativeOffset % alignment == 0, "\(info.name)")
                #expect(info.byteCount == type.byteCount(elements: info.elementCount))
                #expect(info.rowLength == info.dimensions[0])
                #expect(info.rowCount == info.dimensions[1])
                #expect(Array(file.data(of: info)) == data[info.name], "\(info.name) at alignment \(alignment)")
                #expect(file.tensor(named: info.name) == info)
            }
            #expect(file.tensor(named: "absent") == nil)
            #expect(throws: GGUFError.missingTensor("absent")) { try file.requireTensor("absent") }
        }
    }

    @Test("a writer with a non-default alignment produces a file the reader finds the data of")
    func writerAlignmentIsRecorded() throws {
        // The reader only knows the alignment from general.alignment; a writer that pads to 64
        // without recording it must still yield a readable file. Key lengths vary so that the
        // header ends at every offset modulo 64.
        for extra in 0..<64 {
            var w = GGUFWriter()
            w.alignment = 64
            w.set("pad", .string(String(repeating: "p", count: extra)))
            let values: [Float] = (0..<8).map { Float($0) + 0.5 }
            w.addTensor("t", dimensions: [8], type: .f32, values: values)
            let file = try GGUFFile(data: w.serialize())
            let info = try file.requireTensor("t")
            #expect(try Dequantize.tensor(info, in: file) == values, "header padding \(extra)")
        }
    }

    @Test("typed accessors read integers, numbers, strings and arrays and reject the wrong type")
    func accessors() throws {
        let file = try GGUFFile(data: Self.build().bytes)
        #expect(file.int("z.uint8") == 250)
        #expect(file.int("c.int32") == -2_000_000_000)
        #expect(file.int("e.uint64") == nil)  // UInt64.max does not fit in Int
        #expect(file.int("f.int64") == Int(Int64.min))
        #expect(file.double("x.float32") == Double(Float(-3.25e-3)))
        #expect(file.double("g.float64") == -1.5e300)
        #expect(file.string("w.string.unicode") == "héllo, 世界 🦙\n\t\"")
        #expect(file.bool("d.bool.true") == true)
        #expect(try file.stringArray("h.array.string") == ["a", "", "ß∂ƒ", "🦙🦙"])
        #expect(try file.intArray("h.array.int32") == [-7, Int(Int32.max), 0])
        #expect(try file.intArray("h.array.empty") == [])
        #expect(try file.requireInt("y.uint32") == 4_000_000_000)
        #expect(try file.requireString("w.string") == "llama")
        #expect(throws: GGUFError.missingKey("nope")) { try file.requireInt("nope") }
        #expect(throws: GGUFError.wrongValueType(key: "w.string", expected: "an integer")) { try file.requireInt("w.string") }
        #expect(throws: GGUFError.wrongValueType(key: "c.int32", expected: "a string")) { try file.requireString("c.int32") }
        #expect(throws: GGUFError.wrongValueType(key: "h.array.int32", expected: "an array of strings")) {
            try file.stringArray("h.array.int32")
        }
    }

    @Test("a version 2 file is read like version 3")
    func versionTwo() throws {
        var raw = RawGGUF(version: 2, tensorCount: 1, metadataCount: 1)
        raw.entry("k", type: 4, value: Sample.le(UInt32(9)))
        raw.tensorInfo("t", dims: [2], type: 0, offset: 0)
        raw.data(count: 0)
        raw.bytes += Sample.le(Float(1.5).bitPattern) + Sample.le(Float(-2).bitPattern)
        let file = try GGUFFile(data: raw.bytes)
        #expect(file.version == 2)
        #expect(file.int("k") == 9)
        #expect(try Dequantize.tensor(file.requireTensor("t"), in: file) == [1.5, -2])
    }

    @Test("a file with no metadata and no tensors parses")
    func emptyFile() throws {
        let file = try GGUFFile(data: GGUFWriter().serialize())
        #expect(file.metadataKeys.isEmpty)
        #expect(file.tensors.isEmpty)
        #expect(file.alignment == 32)
    }
}
