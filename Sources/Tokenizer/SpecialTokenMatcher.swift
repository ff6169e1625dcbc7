/// Finds special-token spellings in UTF-8 text, leftmost first and longest first at a
/// position (the behaviour of Hugging Face added tokens).
struct SpecialTokenMatcher {
    private struct Entry {
        let bytes: [UInt8]
        let id: Int32
        /// Control and unknown tokens are only matched when special parsing is requested;
        /// user-defined tokens are always matched.
        let needsParseSpecial: Bool
    }

    /// Candidates indexed by first byte, longest spelling first.
    private var byFirstByte: [[Entry]] = Array(repeating: [], count: 256)

    init(tokens: [String], types: [TokenType]) {
        for (id, type) in types.enumerated() {
            let needsParseSpecial: Bool
            switch type {
            case .control, .unknown: needsParseSpecial = true
            case .userDefined: needsParseSpecial = false
            case .normal, .unused, .byte: continue
            }
            let bytes = Array(tokens[id].utf8)
            guard let first = bytes.first else { continue }
            byFirstByte[Int(first)].append(Entry(bytes: bytes, id: Int32(id), needsParseSpecial: needsParseSpecial))
        }
        for index in byFirstByte.indices {
            // Stable order: equal lengths keep the lower id first.
            byFirstByte[index] = byFirstByte[index].enumerated()
                .sorted { ($0.element.bytes.count, -$0.offset) > ($1.element.bytes.count, -$1.offset) }
                .map(\.element)
        }
    }

    /// Whether any special token exists at all (lets encode skip the scan).
    var isEmpty: Bool { byFirstByte.allSatisfy(\.isEmpty) }

    /// The special token starting at `position`, as (length in bytes, id).
    @inline(__always)
    func match(_ text: UnsafeBufferPointer<UInt8>, at position: Int, parseSpecial: Bool) -> (Int, Int32)? {
        let candidates = byFirstByte[Int(text[position])]
        if candidates.isEmpty { return nil }
        let remaining = text.count - position
        for entry in candidates where entry.bytes.count <= remaining {
            if entry.needsParseSpecial && !parseSpecial { continue }
            var equal = true
            for offset in 1..<entry.bytes.count where text[position + offset] != entry.bytes[offset] {
                equal = false
                break
            }
            if equal { return (entry.bytes.count, entry.id) }
        }
        return nil
    }
}
