/// Cuts special-token spellings out of UTF-8 text before BPE or SentencePiece sees it.
///
/// Tokens are taken longest spelling first (equal lengths: lower id first); each token cuts
/// its non-overlapping occurrences, leftmost first, out of the text no longer spoken for by a
/// longer token. This is llama.cpp's partition order; it differs from a leftmost-longest scan
/// when a short token overlaps the start of a longer one.
struct SpecialTokenMatcher {
    private struct Entry {
        let bytes: [UInt8]
        let id: Int32
        /// Position in the longest-first order.
        let rank: Int32
        /// Control and unknown tokens are only matched when special parsing is requested;
        /// user-defined tokens are always matched.
        let needsParseSpecial: Bool
    }

    /// Candidates indexed by first byte.
    private var byFirstByte: [[Entry]] = Array(repeating: [], count: 256)
    private(set) var isEmpty = true

    /// - Parameter forcedControl: ids whose type is overridden to control (e.g. end-of-generation
    ///   tokens a converter left as normal).
    init(tokens: [String], types: [TokenType], forcedControl: Set<Int> = []) {
        var entries: [(bytes: [UInt8], id: Int, needsParse: Bool)] = []
        for (id, type) in types.enumerated() {
            let needsParse: Bool
            if forcedControl.contains(id) {
                needsParse = true
            } else {
                switch type {
                case .control, .unknown: needsParse = true
                case .userDefined: needsParse = false
                case .normal, .unused, .byte: continue
                }
            }
            let bytes = Array(tokens[id].utf8)
            if bytes.isEmpty { continue }
            entries.append((bytes, id, needsParse))
        }
        entries.sort { ($0.bytes.count, -$0.id) > ($1.bytes.count, -$1.id) }
        for (rank, entry) in entries.enumerated() {
            byFirstByte[Int(entry.bytes[0])].append(
                Entry(bytes: entry.bytes, id: Int32(entry.id), rank: Int32(rank), needsParseSpecial: entry.needsParse))
        }
        isEmpty = entries.isEmpty
    }

    /// The special tokens cut out of `text`, as (byte offset, length, id), in text order.
    func partition(_ text: UnsafeBufferPointer<UInt8>, parseSpecial: Bool) -> [(Int, Int, Int32)] {
        // Every occurrence of every candidate, then accepted in rank order if still free.
        var found: [(rank: Int32, position: Int, length: Int, id: Int32)] = []
        let count = text.count
        for position in 0..<count {
            let candidates = byFirstByte[Int(text[position])]
            if candidates.isEmpty { continue }
            let remaining = count - position
            for entry in candidates where entry.bytes.count <= remaining {
                if entry.needsParseSpecial && !parseSpecial { continue }
                var equal = true
                for offset in 1..<entry.bytes.count where text[position + offset] != entry.bytes[offset] {
                    equal = false
                    break
                }
                if equal { found.append((entry.rank, position, entry.bytes.count, entry.id)) }
            }
        }
        if found.isEmpty { return [] }
        found.sort { ($0.rank, $0.position) < ($1.rank, $1.position) }
        var taken = [Bool](repeating: false, count: count)
        var accepted: [(Int, Int, Int32)] = []
        for match in found {
            let span = match.position..<match.position + match.length
            if span.contains(where: { taken[$0] }) { continue }
            for index in span { taken[index] = true }
            accepted.append((match.position, match.length, match.id))
        }
        accepted.sort { $0.0 < $1.0 }
        return accepted
    }
}
