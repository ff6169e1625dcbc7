/// Byte-level BPE over token ids: merge ranks are looked up by id pair, so the hot loop
/// never builds strings.
struct BytePairEncoder {
    /// `left << 32 | right` -> `rank << 32 | merged id`.
    private var merges: [UInt64: UInt64] = [:]
    /// Token id of each raw byte, or -1 when the vocabulary cannot spell it.
    let byteTokens: [Int32]
    /// Id emitted for a byte the vocabulary cannot spell, if any.
    let fallbackID: Int32?

    /// Builds the merge table; `idOf` resolves a token spelling (UTF-8 bytes) to its id.
    init(merges mergeStrings: [String], byteTokens: [Int32], fallbackID: Int32?,
         idOf: ([UInt8]) -> Int?) throws {
        self.byteTokens = byteTokens
        self.fallbackID = fallbackID
        merges.reserveCapacity(mergeStrings.count)
        for (rank, text) in mergeStrings.enumerated() {
            let bytes = Array(text.utf8)
            guard let space = bytes.firstIndex(of: 0x20), space > 0, space < bytes.count - 1,
                  bytes.lastIndex(of: 0x20) == space else {
                throw TokenizerError.badMerge(index: rank, text: text)
            }
            let leftBytes = Array(bytes[..<space])
            let rightBytes = Array(bytes[(space + 1)...])
            func lookup(_ part: [UInt8]) throws -> Int {
                guard let id = idOf(part) else {
                    throw TokenizerError.mergeTokenNotInVocabulary(
                        index: rank, text: text, token: String(decoding: part, as: UTF8.self))
                }
                return id
            }
            let left = try lookup(leftBytes)
            let right = try lookup(rightBytes)
            let merged = try lookup(leftBytes + rightBytes)
            let key = Self.key(Int32(left), Int32(right))
            // A repeated pair keeps its first (best) rank.
            if merges[key] == nil {
                merges[key] = UInt64(rank) << 32 | UInt64(merged)
            }
        }
    }

    @inline(__always)
    private static func key(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    /// Encodes one pre-tokenized piece (raw UTF-8 bytes), appending token ids to `out`.
    func encode<Bytes: Collection<UInt8>>(_ bytes: Bytes, into out: inout [Int32]) {
        let count = bytes.count
        if count == 0 { return }
        var symbols = bytes.map { byteTokens[Int($0)] }
        if count > 1 { mergeAll(&symbols) }
        for id in symbols where id != Self.removed {
            if id >= 0 {
                out.append(id)
            } else if let fallbackID {
                out.append(fallbackID)
            }
        }
    }

    /// Merges `symbols` (token ids; negative ids take part in no merge) and appends the
    /// surviving ids, in order, to `out`.
    func merge(_ symbols: [Int32], into out: inout [Int32]) {
        var symbols = symbols
        if symbols.count > 1 { mergeAll(&symbols) }
        for id in symbols where id != Self.removed { out.append(id) }
    }

    /// Marks a symbol absorbed into its left neighbour.
    static let removed: Int32 = .min

    /// Repeatedly merges the adjacent pair with the lowest rank (leftmost first on ties).
    ///
    /// Candidate pairs sit in a min-heap keyed by `rank << 32 | position`; entries made
    /// stale by an earlier merge are detected on pop by re-checking the current pair.
    private func mergeAll(_ symbols: inout [Int32]) {
        let count = symbols.count
        var next = Array(1...count)          // `count` means no successor
        var previous = Array(-1..<(count - 1))
        var heap = MinHeap()
        for position in 0..<(count - 1) {
            if let entry = merges[Self.key(symbols[position], symbols[position + 1])] {
                heap.push(entry & 0xFFFF_FFFF_0000_0000 | UInt64(position))
            }
        }
        while let top = heap.pop() {
            let rank = top >> 32
            let position = Int(top & 0xFFFF_FFFF)
            let left = symbols[position]
            if left == Self.removed { continue }
            let successor = next[position]
            if successor >= count { continue }
            guard let entry = merges[Self.key(left, symbols[successor])], entry >> 32 == rank else {
                continue
            }
            symbols[position] = Int32(truncatingIfNeeded: entry & 0xFFFF_FFFF)
            symbols[successor] = Self.removed
            let after = next[successor]
            next[position] = after
            if after < count { previous[after] = position }
            let before = previous[position]
            if before >= 0, let pair = merges[Self.key(symbols[before], symbols[position])] {
                heap.push(pair & 0xFFFF_FFFF_0000_0000 | UInt64(before))
            }
            if after < count, let pair = merges[Self.key(symbols[position], symbols[after])] {
                heap.push(pair & 0xFFFF_FFFF_0000_0000 | UInt64(position))
            }
        }
    }
}

/// A binary min-heap of packed `UInt64` keys.
private struct MinHeap {
    private var items: [UInt64] = []

    mutating func push(_ value: UInt64) {
        items.append(value)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if items[parent] <= value { break }
            items[child] = items[parent]
            child = parent
        }
        items[child] = value
    }

    mutating func pop() -> UInt64? {
        guard let last = items.popLast() else { return nil }
        guard !items.isEmpty else { return last }
        let top = items[0]
        var parent = 0
        let count = items.count
        while true {
            var child = 2 * parent + 1
            if child >= count { break }
            if child + 1 < count && items[child + 1] < items[child] { child += 1 }
            if items[child] >= last { break }
            items[parent] = items[child]
            parent = child
        }
        items[parent] = last
        return top
    }
}
