/// The pattern scanners behind `PreTokenizer`. Each appends the pieces of one range of
/// scalar indices, matches and gaps alike, so concatenating them gives back the range.
struct Scanner {
    let s: [Unicode.Scalar]
    let cls: [CharClass]

    /// Splits each range into maximal runs of scalars satisfying `body` (at most `maxRun`
    /// long, leftmost first), each optionally led by one scalar satisfying `optionalLead`;
    /// the text between runs stays as pieces too. This is `lead?body+` (or `body{1,n}`).
    func isolate(_ ranges: [Range<Int>], where body: (Int) -> Bool, maxRun: Int = .max,
                 optionalLead: ((Int) -> Bool)? = nil) -> [Range<Int>] {
        var out: [Range<Int>] = []
        out.reserveCapacity(ranges.count)
        for range in ranges {
            var gapStart = range.lowerBound
            var i = range.lowerBound
            while i < range.upperBound {
                var start = i
                if !body(i) {
                    guard let optionalLead, optionalLead(i), i + 1 < range.upperBound, body(i + 1) else {
                        i += 1
                        continue
                    }
                    start = i
                    i += 1
                }
                var end = i + 1
                while end < range.upperBound && end - i < maxRun && body(end) { end += 1 }
                if gapStart < start { out.append(gapStart..<start) }
                out.append(start..<end)
                i = end
                gapStart = end
            }
            if gapStart < range.upperBound { out.append(gapStart..<range.upperBound) }
        }
        return out
    }

    /// `[0-9][0-9][0-9]`: runs of ASCII digits give triples from the left; the rest is gap.
    func asciiDigitTriples(_ ranges: [Range<Int>]) -> [Range<Int>] {
        var out: [Range<Int>] = []
        out.reserveCapacity(ranges.count)
        func isDigit(_ i: Int) -> Bool { (0x30...0x39).contains(s[i].value) }
        for range in ranges {
            var gapStart = range.lowerBound
            var i = range.lowerBound
            while i + 3 <= range.upperBound {
                if isDigit(i) && isDigit(i + 1) && isDigit(i + 2) {
                    if gapStart < i { out.append(gapStart..<i) }
                    out.append(i..<i + 3)
                    i += 3
                    gapStart = i
                } else {
                    i += 1
                }
            }
            if gapStart < range.upperBound { out.append(gapStart..<range.upperBound) }
        }
        return out
    }

    /// Whether `i` starts a contraction (`'s 't 'm 'd 're 've 'll`); returns its length.
    @inline(__always)
    private func contraction(at i: Int, end: Int, caseInsensitive: Bool) -> Int {
        guard s[i].value == 0x27, i + 1 < end else { return 0 }
        func lower(_ v: UInt32) -> UInt32 { caseInsensitive && (0x41...0x5A).contains(v) ? v + 0x20 : v }
        let n1 = lower(s[i + 1].value)
        if n1 == 0x73 || n1 == 0x74 || n1 == 0x6D || n1 == 0x64 { return 2 }
        guard i + 2 < end else { return 0 }
        let n2 = lower(s[i + 2].value)
        if (n1 == 0x72 && n2 == 0x65) || (n1 == 0x76 && n2 == 0x65) || (n1 == 0x6C && n2 == 0x6C) { return 3 }
        return 0
    }

    /// `\s+(?!\S)|\s+` from `i`: a run of whitespace gives back its last scalar when a
    /// non-space follows, so that scalar can lead the next piece.
    @inline(__always)
    private func whitespaceRun(_ i: Int, _ hi: Int) -> Int {
        var end = i + 1
        while end < hi && cls[end] == .space { end += 1 }
        if end < hi && end - i > 1 { end -= 1 }
        return end
    }

    /// The GPT-2 pattern over `range`.
    func gpt2(_ range: Range<Int>, into out: inout [Range<Int>]) {
        let hi = range.upperBound
        var i = range.lowerBound
        while i < hi {
            let length = contraction(at: i, end: hi, caseInsensitive: false)
            if length > 0 {
                out.append(i..<i + length)
                i += length
                continue
            }
            // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: only a plain space may lead.
            var start = i
            if s[i].value == 0x20, i + 1 < hi, cls[i + 1] != .space { start = i + 1 }
            let kind = Self.gpt2Class(cls[start])
            if kind != .space {
                var end = start + 1
                while end < hi && Self.gpt2Class(cls[end]) == kind { end += 1 }
                out.append(i..<end)
                i = end
                continue
            }
            let end = whitespaceRun(i, hi)
            out.append(i..<end)
            i = end
        }
    }

    /// GPT-2 and Llama 3 see combining marks as "other".
    @inline(__always)
    private static func gpt2Class(_ c: CharClass) -> CharClass { c == .mark ? .other : c }

    /// The Llama 3 family over `range`: digits in runs of at most `maxDigits`; with
    /// `marksAreLetters`, `\p{M}` joins `\p{L}` (Qwen 3.5).
    func llama3(_ range: Range<Int>, maxDigits: Int, marksAreLetters: Bool, into out: inout [Range<Int>]) {
        let hi = range.upperBound
        func isLetter(_ j: Int) -> Bool {
            j < hi && (cls[j] == .letter || (marksAreLetters && cls[j] == .mark))
        }
        func isOther(_ j: Int) -> Bool {
            j < hi && (cls[j] == .other || (!marksAreLetters && cls[j] == .mark))
        }
        func isLineBreak(_ j: Int) -> Bool { j < hi && (s[j].value == 0x0A || s[j].value == 0x0D) }
        var i = range.lowerBound
        while i < hi {
            let length = contraction(at: i, end: hi, caseInsensitive: true)
            if length > 0 {
                out.append(i..<i + length)
                i += length
                continue
            }
            // `[^\r\n\p{L}\p{N}]?\p{L}+`
            if !isLineBreak(i) && cls[i] != .number && (isLetter(i) || isLetter(i + 1)) {
                var end = i + 1
                while isLetter(end) { end += 1 }
                out.append(i..<end)
                i = end
                continue
            }
            // `\p{N}{1,maxDigits}`
            if cls[i] == .number {
                var end = i + 1
                while end < hi && end - i < maxDigits && cls[end] == .number { end += 1 }
                out.append(i..<end)
                i = end
                continue
            }
            // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
            let first = s[i].value == 0x20 ? i + 1 : i
            if isOther(first) {
                var end = first + 1
                while isOther(end) { end += 1 }
                while isLineBreak(end) { end += 1 }
                out.append(i..<end)
                i = end
                continue
            }
            // `\s*[\r\n]+`, then `\s+(?!\S)`, then `\s+`.
            var runEnd = i
            var lastBreakEnd = -1
            while runEnd < hi && cls[runEnd] == .space {
                if isLineBreak(runEnd) { lastBreakEnd = runEnd + 1 }
                runEnd += 1
            }
            if lastBreakEnd > 0 {
                out.append(i..<lastBreakEnd)
                i = lastBreakEnd
            } else if runEnd > i {
                let end = runEnd < hi && runEnd - i > 1 ? runEnd - 1 : runEnd
                out.append(i..<end)
                i = end
            } else {
                out.append(i..<i + 1)
                i += 1
            }
        }
    }

    /// Mistral's Tekken pattern over `range`:
    /// `P?X*Y+|P?X+Y*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`, where
    /// P is one scalar that is not a line break, letter or number, X a letter other than a-z
    /// and Y a letter other than A-Z (so `HelloWorld` splits as `Hello`, `World`).
    func tekken(_ range: Range<Int>, into out: inout [Range<Int>]) {
        let hi = range.upperBound
        func isX(_ j: Int) -> Bool { j < hi && cls[j] == .letter && !(0x61...0x7A).contains(s[j].value) }
        func isY(_ j: Int) -> Bool { j < hi && cls[j] == .letter && !(0x41...0x5A).contains(s[j].value) }
        func run(_ j: Int, _ test: (Int) -> Bool) -> Int {
            var end = j
            while test(end) { end += 1 }
            return end
        }
        /// `X*Y+` from `q`: greedy X, backing off until a Y follows.
        func upperThenLower(_ q: Int) -> Int? {
            var k = run(q, isX)
            while k >= q {
                if isY(k) { return run(k, isY) }
                k -= 1
            }
            return nil
        }
        /// `X+Y*` from `q`.
        func upperRun(_ q: Int) -> Int? {
            isX(q) ? run(run(q, isX), isY) : nil
        }
        func isLineBreak(_ j: Int) -> Bool { j < hi && (s[j].value == 0x0A || s[j].value == 0x0D) }
        var i = range.lowerBound
        while i < hi {
            let prefixed = !isLineBreak(i) && cls[i] != .letter && cls[i] != .number && i + 1 < hi
            var end: Int? = nil
            if prefixed { end = upperThenLower(i + 1) }
            if end == nil { end = upperThenLower(i) }
            if end == nil, prefixed { end = upperRun(i + 1) }
            if end == nil { end = upperRun(i) }
            if let end {
                out.append(i..<end)
                i = end
                continue
            }
            if cls[i] == .number {
                out.append(i..<i + 1)
                i += 1
                continue
            }
            // ` ?[^\s\p{L}\p{N}]+[\r\n/]*`
            let first = s[i].value == 0x20 ? i + 1 : i
            if first < hi && (cls[first] == .other || cls[first] == .mark) {
                var end = first + 1
                while end < hi && (cls[end] == .other || cls[end] == .mark) { end += 1 }
                while isLineBreak(end) || (end < hi && s[end].value == 0x2F) { end += 1 }
                out.append(i..<end)
                i = end
                continue
            }
            var runEnd = i
            var lastBreakEnd = -1
            while runEnd < hi && cls[runEnd] == .space {
                if isLineBreak(runEnd) { lastBreakEnd = runEnd + 1 }
                runEnd += 1
            }
            let stop = lastBreakEnd > 0 ? lastBreakEnd : (runEnd < hi && runEnd - i > 1 ? runEnd - 1 : runEnd)
            out.append(i..<stop)
            i = stop
        }
    }
}
