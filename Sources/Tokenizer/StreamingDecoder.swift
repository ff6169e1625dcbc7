/// Incremental detokenizer for generated tokens.
///
/// A token may end in the middle of a multi-byte UTF-8 character; such trailing bytes are
/// held back until the character completes. Bytes that can no longer form a valid
/// character are released as U+FFFD. Concatenating every `append` result and `finish()`
/// gives the same text as `Tokenizer.decode` on all the ids, except that a SentencePiece
/// tokenizer's `decode` drops the first token's leading space and the stream does not: the
/// stream continues a prompt, so its first token's space is real.
public struct StreamingDecoder {
    private let tokenizer: Tokenizer
    private var pending: [UInt8] = []

    /// Creates a decoder with nothing buffered.
    public init(tokenizer: Tokenizer) {
        self.tokenizer = tokenizer
    }

    /// Adds one token and returns the text that is now complete (possibly empty).
    public mutating func append(_ id: Int) -> String {
        pending.append(contentsOf: tokenizer.tokenBytes(id))
        let ready = Self.completePrefixLength(pending)
        if ready == 0 { return "" }
        let text = String(decoding: pending[..<ready], as: UTF8.self)
        pending.removeFirst(ready)
        return text
    }

    /// Returns whatever is still buffered (an unfinished character becomes U+FFFD) and resets.
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// Length of the prefix of `bytes` that can be decoded now: everything except a trailing,
    /// still-completable prefix of a multi-byte sequence.
    static func completePrefixLength(_ bytes: [UInt8]) -> Int {
        let count = bytes.count
        // The last non-continuation byte within reach of a 4-byte sequence.
        var start = count - 1
        while start >= 0 && start >= count - 4 && bytes[start] & 0xC0 == 0x80 { start -= 1 }
        guard start >= 0 && start >= count - 4 else { return count }
        let lead = bytes[start]
        let needed: Int
        switch lead {
        case 0xC2...0xDF: needed = 2
        case 0xE0...0xEF: needed = 3
        case 0xF0...0xF4: needed = 4
        default: return count      // ASCII or a byte that can never lead
        }
        let have = count - start
        if have >= needed { return count }
        if have >= 2 {
            // The second byte is restricted for some leads (no overlongs, surrogates, > U+10FFFF).
            let second = bytes[start + 1]
            let valid: ClosedRange<UInt8>
            switch lead {
            case 0xE0: valid = 0xA0...0xBF
            case 0xED: valid = 0x80...0x9F
            case 0xF0: valid = 0x90...0xBF
            case 0xF4: valid = 0x80...0x8F
            default: valid = 0x80...0xBF
            }
            if !valid.contains(second) { return count }
        }
        return start
    }
}
