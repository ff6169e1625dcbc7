/// SentencePiece BPE (GGUF tokenizer model `llama`): merges driven by token scores.
///
/// The symbols start as the UTF-8 characters of the text (spaces already written `▁`).
/// Every adjacent pair whose concatenation is a vocabulary token is a candidate; the
/// candidate whose token has the highest score merges first (ties: the leftmost pair),
/// until none is left. A final symbol that is not a token falls back to byte tokens
/// (`<0xNN>`, else the one-byte token), else the unknown token.
struct SentencePieceEncoder {
    /// Score of each token id.
    let scores: [Float]
    /// Token id of each byte value, or -1.
    let byteTokens: [Int32]
    /// Emitted for a byte with no token, if any.
    let unknownID: Int32?
    /// Longest token spelling in bytes; longer concatenations are never looked up.
    let maxTokenBytes: Int
    /// Token id by `spellingHash` of its UTF-8 spelling (-1 when two spellings share a hash),
    /// so lookups of byte ranges need no allocation.
    let idByHash: [UInt64: Int32]
    /// UTF-8 spelling of each token, to confirm a hash hit.
    let spellings: [[UInt8]]

    init(scores: [Float], byteTokens: [Int32], unknownID: Int32?, tokens: [String]) {
        self.scores = scores
        self.byteTokens = byteTokens
        self.unknownID = unknownID
        var byHash = [UInt64: Int32](minimumCapacity: tokens.count)
        let spellings = tokens.map { Array($0.utf8) }
        for (id, bytes) in spellings.enumerated() {
            let hash = bytes.withUnsafeBufferPointer { Self.spellingHash($0[...]) }
            if let other = byHash[hash] {
                // The same spelling twice keeps the first id; a true collision disables the fast path.
                if other >= 0 && spellings[Int(other)] != bytes { byHash[hash] = -1 }
            } else {
                byHash[hash] = Int32(id)
            }
        }
        self.maxTokenBytes = spellings.map(\.count).max() ?? 0
        self.idByHash = byHash
        self.spellings = spellings
    }

    /// The token spelled exactly `text[range]`, if any.
    @inline(__always)
    private func lookup(_ text: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, idOf: ([UInt8]) -> Int?) -> Int? {
        guard range.count <= maxTokenBytes, let id = idByHash[Self.spellingHash(text[range])] else { return nil }
        if id < 0 { return idOf(Array(text[range])) }
        let spelling = spellings[Int(id)]
        guard spelling.count == range.count else { return nil }
        for (offset, byte) in spelling.enumerated() where text[range.lowerBound + offset] != byte { return nil }
        return Int(id)
    }

    /// FNV-1a over a byte range.
    @inline(__always)
    static func spellingHash(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        return hash
    }

    private struct Candidate {
        let score: Float
        let left: Int32
        let right: Int32
        let size: Int32

        /// Heap order: higher score first, then the smaller left index.
        static func before(_ a: Candidate, _ b: Candidate) -> Bool {
            a.score > b.score || (a.score == b.score && a.left < b.left)
        }
    }

    /// Encodes `text` (UTF-8, spaces already escaped), appending ids to `out`.
    func encode(_ bytes: [UInt8], idOf: ([UInt8]) -> Int?, into out: inout [Int32]) {
        bytes.withUnsafeBufferPointer { encode($0, idOf: idOf, into: &out) }
    }

    private func encode(_ text: UnsafeBufferPointer<UInt8>, idOf: ([UInt8]) -> Int?, into out: inout [Int32]) {
        if text.isEmpty { return }
        // Symbols as byte ranges with a doubly linked list over them.
        var start: [Int] = []
        var length: [Int] = []
        var offset = 0
        while offset < text.count {
            let n = min(Self.utf8Length(text[offset]), text.count - offset)
            start.append(offset)
            length.append(n)
            offset += n
        }
        let count = start.count
        var next = Array(1...count)
        var previous = Array(-1..<(count - 1))
        var heap: [Candidate] = []

        func push(_ left: Int, _ right: Int) {
            guard left >= 0, right < count else { return }
            let size = length[left] + length[right]
            guard let id = lookup(text, start[left]..<start[left] + size, idOf: idOf), id < scores.count else { return }
            Self.heapPush(&heap, Candidate(score: scores[id], left: Int32(left), right: Int32(right), size: Int32(size)))
        }
        for index in 0..<(count - 1) { push(index, index + 1) }
        while let top = Self.heapPop(&heap) {
            let left = Int(top.left), right = Int(top.right)
            // Stale if either side was merged away or grew since the candidate was made.
            if length[left] == 0 || length[right] == 0 || length[left] + length[right] != Int(top.size) { continue }
            length[left] += length[right]
            length[right] = 0
            next[left] = next[right]
            if next[right] < count { previous[next[right]] = left }
            push(previous[left], left)
            push(left, next[left])
        }
        // Every merged symbol is a token; only unmerged characters can need byte fallback.
        var index = 0
        while index < count {
            let range = start[index]..<start[index] + length[index]
            if let id = lookup(text, range, idOf: idOf) {
                out.append(Int32(id))
            } else {
                for byte in text[range] {
                    let id = byteTokens[Int(byte)]
                    if id >= 0 { out.append(id) } else if let unknownID { out.append(unknownID) }
                }
            }
            index = next[index]
        }
    }

    @inline(__always)
    static func utf8Length(_ lead: UInt8) -> Int {
        switch lead {
        case 0..<0x80: 1
        case 0xC0..<0xE0: 2
        case 0xE0..<0xF0: 3
        case 0xF0...: 4
        default: 1     // a stray continuation byte stands alone
        }
    }

    private static func heapPush(_ heap: inout [Candidate], _ value: Candidate) {
        heap.append(value)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if !Candidate.before(value, heap[parent]) { break }
            heap[child] = heap[parent]
            child = parent
        }
        heap[child] = value
    }

    private static func heapPop(_ heap: inout [Candidate]) -> Candidate? {
        guard let last = heap.popLast() else { return nil }
        guard !heap.isEmpty else { return last }
        let top = heap[0]
        var parent = 0
        let count = heap.count
        while true {
            var child = 2 * parent + 1
            if child >= count { break }
            if child + 1 < count && Candidate.before(heap[child + 1], heap[child]) { child += 1 }
            if !Candidate.before(heap[child], last) { break }
            heap[parent] = heap[child]
            parent = child
        }
        heap[parent] = last
        return top
    }
}

