/// A lexical token with its 1-based position.
struct Token {
    enum Kind: Equatable {
        case text(String)
        case blockBegin, blockEnd, variableBegin, variableEnd
        case name(String)
        case string(String)
        case int(Int)
        case float(Double)
        case op(String)
        case end
    }
    var kind: Kind
    var position: Position
}

/// Splits a template into text and tag tokens, applying jinja2's whitespace rules with
/// `trim_blocks` and `lstrip_blocks` on (as Hugging Face configures it): a block or comment tag
/// alone on its line takes the line's leading spaces and its newline with it; `-` beside a
/// delimiter strips all whitespace on that side; `+` turns the two options off for that tag.
/// The source's newlines are normalised to `\n` and one trailing newline is dropped
/// (`keep_trailing_newline=False`).
struct Lexer {
    private let src: [UInt8]
    private var i = 0
    private var tokens: [Token] = []

    init(_ source: String) {
        var text = source.replacingOccurrences("\r\n", "\n").replacingOccurrences("\r", "\n")
        if text.hasSuffix("\n") { text.removeLast() }
        src = Array(text.utf8)
    }

    /// The last position computed: tokens come in source order, so positions advance from it.
    private var cached = (offset: 0, line: 1, column: 1)

    mutating func position(_ offset: Int) -> Position {
        if offset < cached.offset { cached = (0, 1, 1) }
        var (o, line, column) = cached
        while o < offset && o < src.count {
            if src[o] == 0x0A { line += 1; column = 1 }
            else if src[o] & 0xC0 != 0x80 { column += 1 }  // columns count characters, not UTF-8 bytes
            o += 1
        }
        cached = (o, line, column)
        return Position(line: line, column: column)
    }

    private mutating func error(_ message: String, at offset: Int) -> JinjaError {
        let p = position(offset)
        return JinjaError(.syntax, message, line: p.line, column: p.column)
    }

    private func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D || b == 0x0B || b == 0x0C }

    private func starts(_ s: String, at k: Int) -> Bool {
        let u = Array(s.utf8)
        return k + u.count <= src.count && Array(src[k..<k + u.count]) == u
    }

    mutating func tokenize() throws(JinjaError) -> [Token] {
        var lineStarting = true
        while i < src.count {
            // The next tag opener.
            var open = i
            while open + 1 < src.count {
                if src[open] == UInt8(ascii: "{"), [UInt8(ascii: "{"), UInt8(ascii: "%"), UInt8(ascii: "#")].contains(src[open + 1]) { break }
                open += 1
            }
            guard open + 1 < src.count else {
                emitText(i, src.count)
                break
            }
            let kind = src[open + 1]
            let modifier: UInt8? = open + 2 < src.count && (src[open + 2] == UInt8(ascii: "-") || src[open + 2] == UInt8(ascii: "+")) ? src[open + 2] : nil
            var textEnd = open
            if modifier == UInt8(ascii: "-") {
                while textEnd > i, isSpace(src[textEnd - 1]) { textEnd -= 1 }
            } else if modifier != UInt8(ascii: "+") && kind != UInt8(ascii: "{") {
                // lstrip_blocks: drop the spaces before the tag when only spaces precede it on its line.
                var lineStart = textEnd
                while lineStart > i, src[lineStart - 1] != 0x0A { lineStart -= 1 }
                let atLineStart = lineStart > i || (lineStart == i && lineStarting)
                if atLineStart, src[lineStart..<textEnd].allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0B || $0 == 0x0C || $0 == 0x0D }) {
                    textEnd = lineStart
                }
            }
            emitText(i, textEnd)
            let bodyStart = open + 2 + (modifier == nil ? 0 : 1)
            if kind == UInt8(ascii: "#") {
                var k = bodyStart
                while k + 1 < src.count, !(src[k] == UInt8(ascii: "#") && src[k + 1] == UInt8(ascii: "}")) { k += 1 }
                guard k + 1 < src.count else { throw error("unterminated comment: expected '#}'", at: open) }
                let stripRight = k > bodyStart && src[k - 1] == UInt8(ascii: "-")
                let keep = k > bodyStart && src[k - 1] == UInt8(ascii: "+")
                i = k + 2
                finishTag(stripRight: stripRight, trim: !keep)
            } else {
                let isBlock = kind == UInt8(ascii: "%")
                tokens.append(Token(kind: isBlock ? .blockBegin : .variableBegin, position: position(open)))
                i = bodyStart
                try expressionTokens(block: isBlock, opener: open)
            }
            lineStarting = i > 0 && src[i - 1] == 0x0A
        }
        tokens.append(Token(kind: .end, position: position(src.count)))
        return tokens
    }

    private mutating func emitText(_ from: Int, _ to: Int) {
        guard to > from else { return }
        tokens.append(Token(kind: .text(String(decoding: src[from..<to], as: UTF8.self)), position: position(from)))
    }

    /// After a tag's closing delimiter: `-` eats all following whitespace; otherwise trim_blocks
    /// eats one newline unless the tag ended with `+`.
    private mutating func finishTag(stripRight: Bool, trim: Bool) {
        if stripRight {
            while i < src.count, isSpace(src[i]) { i += 1 }
        } else if trim, i < src.count, src[i] == 0x0A {
            i += 1
        }
    }

    private mutating func expressionTokens(block: Bool, opener: Int) throws(JinjaError) {
        let close = block ? "%}" : "}}"
        var depth = 0
        while true {
            while i < src.count, isSpace(src[i]) { i += 1 }
            guard i < src.count else {
                throw error("unexpected end of template: expected '\(close)' to close the tag opened here", at: opener)
            }
            if depth == 0 {
                if starts("-" + close, at: i) {
                    tokens.append(Token(kind: block ? .blockEnd : .variableEnd, position: position(i)))
                    i += 3
                    finishTag(stripRight: true, trim: false)
                    return
                }
                if block, starts("+" + close, at: i) {
                    tokens.append(Token(kind: .blockEnd, position: position(i)))
                    i += 3
                    return
                }
                if starts(close, at: i) {
                    tokens.append(Token(kind: block ? .blockEnd : .variableEnd, position: position(i)))
                    i += 2
                    if block { finishTag(stripRight: false, trim: true) }
                    return
                }
            }
            let start = i
            let c = src[i]
            let pos = position(i)
            if c == UInt8(ascii: "_") || (c | 0x20 >= UInt8(ascii: "a") && c | 0x20 <= UInt8(ascii: "z")) {
                while i < src.count, src[i] == UInt8(ascii: "_") || (src[i] | 0x20 >= UInt8(ascii: "a") && src[i] | 0x20 <= UInt8(ascii: "z"))
                        || (src[i] >= 0x30 && src[i] <= 0x39) { i += 1 }
                tokens.append(Token(kind: .name(String(decoding: src[start..<i], as: UTF8.self)), position: pos))
            } else if c >= 0x30 && c <= 0x39 {
                tokens.append(Token(kind: try number(), position: pos))
            } else if c == UInt8(ascii: "'") || c == UInt8(ascii: "\"") {
                tokens.append(Token(kind: .string(try string(quote: c)), position: pos))
            } else {
                let ops = ["//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=", ".", ",", ":",
                           "|", "(", ")", "[", "]", "{", "}", ";"]
                guard let op = ops.first(where: { starts($0, at: i) }) else {
                    throw error("unexpected character '\(String(decoding: src[i..<i + 1], as: UTF8.self))'", at: i)
                }
                if "([{".contains(op) { depth += 1 }
                if ")]}".contains(op) { depth = max(0, depth - 1) }
                i += op.utf8.count
                tokens.append(Token(kind: .op(op), position: pos))
            }
        }
    }

    private mutating func number() throws(JinjaError) -> Token.Kind {
        let start = i
        func digits() { while i < src.count, (src[i] >= 0x30 && src[i] <= 0x39) || src[i] == UInt8(ascii: "_") { i += 1 } }
        digits()
        var isFloat = false
        // A fraction needs a digit after the dot, so `x.0.1` style attribute chains stay intact.
        if i + 1 < src.count, src[i] == UInt8(ascii: "."), src[i + 1] >= 0x30 && src[i + 1] <= 0x39 {
            isFloat = true
            i += 1
            digits()
        }
        if i < src.count, src[i] | 0x20 == UInt8(ascii: "e") {
            var k = i + 1
            if k < src.count, src[k] == UInt8(ascii: "+") || src[k] == UInt8(ascii: "-") { k += 1 }
            if k < src.count, src[k] >= 0x30 && src[k] <= 0x39 {
                isFloat = true
                i = k
                digits()
            }
        }
        let text = String(decoding: src[start..<i], as: UTF8.self).replacingOccurrences("_", "")
        if !isFloat, let v = Int(text) { return .int(v) }
        guard let d = Double(text) else { throw error("bad number literal '\(text)'", at: start) }
        return .float(d)
    }

    /// A quoted literal with Python's escapes (`\n`, `\t`, `\\`, `\'`, `\xhh`, `\uhhhh`, ...);
    /// an unknown escape keeps its backslash.
    private mutating func string(quote: UInt8) throws(JinjaError) -> String {
        let start = i
        i += 1
        var out = String.UnicodeScalarView()
        var chunkStart = i
        func flush(_ to: Int) { out.append(contentsOf: String(decoding: src[chunkStart..<to], as: UTF8.self).unicodeScalars) }
        while i < src.count {
            let c = src[i]
            if c == quote {
                flush(i)
                i += 1
                return String(out)
            }
            guard c == UInt8(ascii: "\\"), i + 1 < src.count else { i += 1; continue }
            flush(i)
            let e = src[i + 1]
            i += 2
            let simple: [UInt8: Unicode.Scalar] = [
                UInt8(ascii: "n"): "\n", UInt8(ascii: "t"): "\t", UInt8(ascii: "r"): "\r", UInt8(ascii: "\\"): "\\",
                UInt8(ascii: "'"): "'", UInt8(ascii: "\""): "\"", UInt8(ascii: "a"): "\u{07}", UInt8(ascii: "b"): "\u{08}",
                UInt8(ascii: "f"): "\u{0C}", UInt8(ascii: "v"): "\u{0B}", UInt8(ascii: "0"): "\u{00}",
            ]
            if e == 0x0A {
                // A backslash-newline continues the line.
            } else if let s = simple[e] {
                out.append(s)
            } else if let width = [UInt8(ascii: "x"): 2, UInt8(ascii: "u"): 4, UInt8(ascii: "U"): 8][e] {
                guard i + width <= src.count, let v = UInt32(String(decoding: src[i..<i + width], as: UTF8.self), radix: 16),
                      let scalar = Unicode.Scalar(v) else {
                    throw error("bad \\\(Character(Unicode.Scalar(e))) escape in string literal", at: i - 2)
                }
                out.append(scalar)
                i += width
            } else {
                // Unknown escape: the backslash stays, the next byte is read again as text.
                out.append("\\")
                chunkStart = i - 1
                continue
            }
            chunkStart = i
        }
        throw error("unterminated string literal", at: start)
    }
}
