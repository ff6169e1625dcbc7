/// Gemma 4's tokenizer (GGUF tokenizer model `gemma4`): BPE over raw UTF-8 rather than the
/// GPT-2 byte alphabet. Spaces are written `▁`, the text is cut into runs of newlines and runs
/// of everything else, and each run is merged by rank starting from its UTF-8 characters.
/// A run made only of newlines that is itself a token is emitted whole. A character that
/// ends up in no token falls back to its `<0xNN>` byte tokens.
struct Gemma4Encoder {
    let encoder: BytePairEncoder
    /// `<0xNN>` token of each byte, or -1.
    let byteTokens: [Int32]

    /// Encodes one fragment of text (between special tokens), appending ids to `out`.
    func encode(_ text: Slice<UnsafeBufferPointer<UInt8>>, idOf: ([UInt8]) -> Int?, into out: inout [Int32]) {
        var escaped: [UInt8] = []
        escaped.reserveCapacity(text.count + 8)
        for byte in text {
            if byte == 0x20 { escaped.append(contentsOf: [0xE2, 0x96, 0x81]) } else { escaped.append(byte) }
        }
        var start = 0
        while start < escaped.count {
            let newlines = escaped[start] == 0x0A
            var end = start + 1
            while end < escaped.count && (escaped[end] == 0x0A) == newlines { end += 1 }
            encodeRun(Array(escaped[start..<end]), newlines: newlines, idOf: idOf, into: &out)
            start = end
        }
    }

    private func encodeRun(_ run: [UInt8], newlines: Bool, idOf: ([UInt8]) -> Int?, into out: inout [Int32]) {
        if newlines, let whole = idOf(run) {
            out.append(Int32(whole))
            return
        }
        // One symbol per UTF-8 character: its token id, or a negative marker for byte fallback.
        var symbols: [Int32] = []
        var starts: [Int] = []
        var offset = 0
        while offset < run.count {
            let length = min(SentencePieceEncoder.utf8Length(run[offset]), run.count - offset)
            starts.append(offset)
            if let id = idOf(Array(run[offset..<offset + length])) {
                symbols.append(Int32(id))
            } else {
                symbols.append(-2 - Int32(starts.count - 1))
            }
            offset += length
        }
        starts.append(run.count)
        var merged: [Int32] = []
        encoder.merge(symbols, into: &merged)
        for id in merged {
            if id >= 0 {
                out.append(id)
                continue
            }
            let index = Int(-2 - id)
            for byte in run[starts[index]..<starts[index + 1]] where byteTokens[Int(byte)] >= 0 {
                out.append(byteTokens[Int(byte)])
            }
        }
    }
}
