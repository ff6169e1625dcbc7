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
    func encode(_ text: [UInt8], idOf: ([UInt8]) -> Int?, into out: inout [Int32]) {
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
            guard size <= maxTokenBytes else { return }
            let bytes = Array(text[start[left]..<start[left] + size])
            guard let id = idOf(bytes), id < scores.count else { return }
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
            let bytes = Array(text[start[index]..<start[index] + length[index]])
            if let id = idOf(bytes) {
                out.append(Int32(id))
            } else {
                for byte in bytes {
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

