import Foundation

/// Splits prose into sentences: at `.`, `!` or `?` (with any closing quotes or brackets after
/// it) followed by white space and the start of a new sentence, but not inside a number
/// ("3.14"), after an abbreviation ("e.g.", "Dr.", "U.S.", initials such as "J."), or inside
/// quotation marks or brackets.
public enum SentenceSplitter {
    /// Abbreviations that do not end a sentence, lowercased, without their final period.
    public static let abbreviations: Set<String> = [
        "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "ft", "vs", "etc", "e.g", "i.e", "cf", "al", "approx",
        "no", "nos", "vol", "fig", "figs", "eq", "p", "pp", "ch", "sec", "dept", "inc", "ltd", "co", "corp", "gen",
        "col", "lt", "sgt", "capt", "gov", "sen", "rep", "rev", "hon", "jan", "feb", "mar", "apr", "jun", "jul",
        "aug", "sep", "sept", "oct", "nov", "dec", "a.m", "p.m", "u.s", "u.k", "u.n", "e.u", "ph.d", "b.c", "a.d",
    ]

    static let closers: Set<Character> = ["\"", "'", "”", "’", "»", ")", "]"]
    static let openers: [Character: Character] = ["“": "”", "«": "»", "(": ")", "[": "]"]

    public static func split(_ text: String) -> [String] {
        let chars = Array(text)
        var sentences: [String] = []
        var start = 0
        var stack: [Character] = []  // closing marks awaited
        var straightQuote = false
        var i = 0
        func emit(_ end: Int) {
            let s = String(chars[start..<end]).trimmingCharacters(in: .whitespacesAndNewlines)
            if !s.isEmpty { sentences.append(s) }
            start = end
        }
        while i < chars.count {
            let ch = chars[i]
            if let close = openers[ch] {
                stack.append(close)
            } else if let last = stack.last, ch == last {
                stack.removeLast()
            } else if ch == "\"" {
                straightQuote.toggle()
            } else if ch == "." || ch == "!" || ch == "?" {
                var j = i + 1
                while j < chars.count, chars[j] == "." || chars[j] == "!" || chars[j] == "?" { j += 1 }
                // Closing quotes and brackets right after the mark belong to the sentence.
                var quoted = straightQuote, open = stack
                while j < chars.count, closers.contains(chars[j]) {
                    if chars[j] == "\"" { quoted.toggle() } else if let last = open.last, chars[j] == last { open.removeLast() }
                    j += 1
                }
                let atEnd = j >= chars.count
                let spaced = atEnd || chars[j].isWhitespace
                if spaced && !quoted && open.isEmpty && (atEnd || startsSentence(chars, after: j))
                    && !(ch == "." && isAbbreviation(chars, period: i)) {
                    straightQuote = quoted; stack = open
                    emit(j)
                    i = j
                    continue
                }
            }
            i += 1
        }
        emit(chars.count)
        return sentences
    }

    /// Whether the text after position `j` (white space) starts a sentence: an upper-case
    /// letter, a digit or an opening quote or bracket.
    static func startsSentence(_ chars: [Character], after j: Int) -> Bool {
        var k = j
        while k < chars.count, chars[k].isWhitespace { k += 1 }
        guard k < chars.count else { return true }
        let c = chars[k]
        return c.isUppercase || c.isNumber || openers[c] != nil || c == "\"" || c == "'"
    }

    /// Whether the word ending at the period `i` is an abbreviation or an initial.
    static func isAbbreviation(_ chars: [Character], period i: Int) -> Bool {
        var k = i
        while k > 0, !chars[k - 1].isWhitespace, !openers.keys.contains(chars[k - 1]), chars[k - 1] != "\"" { k -= 1 }
        let word = String(chars[k..<i])
        if word.isEmpty { return false }
        if word.count == 1, word.first!.isLetter, word.first!.isUppercase { return true }  // initial: "J. R. R. Tolkien"
        if abbreviations.contains(word.lowercased()) { return true }
        // Dotted abbreviations not in the list: "U.S.A", "e.g".
        let parts = word.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count > 1 && parts.allSatisfy { $0.count == 1 && $0.first!.isLetter }
    }
}
