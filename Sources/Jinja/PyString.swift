/// Python str operations on Unicode scalars (Python strings index code points).
enum PyString {
    static func isSpace(_ u: Unicode.Scalar) -> Bool {
        u.properties.isWhitespace || (0x1C...0x1F).contains(u.value)
    }

    static func strip(_ s: String, chars: String?, left: Bool, right: Bool) -> String {
        let set = chars.map { Set($0.unicodeScalars) }
        func strippable(_ u: Unicode.Scalar) -> Bool { set.map { $0.contains(u) } ?? isSpace(u) }
        var u = Array(s.unicodeScalars)[...]
        if left { while let f = u.first, strippable(f) { u.removeFirst() } }
        if right { while let l = u.last, strippable(l) { u.removeLast() } }
        return String(String.UnicodeScalarView(u))
    }

    /// `s.split(sep, maxsplit)`; a nil `sep` splits on runs of whitespace and drops empty parts.
    static func split(_ s: String, _ sep: String?, _ maxsplit: Int) -> [String] {
        let u = Array(s.unicodeScalars)
        var parts: [String] = []
        guard let sep else {
            var i = 0
            while i < u.count {
                while i < u.count, isSpace(u[i]) { i += 1 }
                guard i < u.count else { break }
                if maxsplit >= 0 && parts.count == maxsplit {
                    var end = u.count
                    while end > i, isSpace(u[end - 1]) { end -= 1 }
                    parts.append(String(String.UnicodeScalarView(u[i..<end])))
                    return parts
                }
                let start = i
                while i < u.count, !isSpace(u[i]) { i += 1 }
                parts.append(String(String.UnicodeScalarView(u[start..<i])))
            }
            return parts
        }
        let p = Array(sep.unicodeScalars)
        var start = 0, i = 0
        while i + p.count <= u.count {
            if (maxsplit < 0 || parts.count < maxsplit), Array(u[i..<i + p.count]) == p {
                parts.append(String(String.UnicodeScalarView(u[start..<i])))
                i += p.count
                start = i
            } else {
                i += 1
            }
        }
        parts.append(String(String.UnicodeScalarView(u[start...])))
        return parts
    }

    static func rsplit(_ s: String, _ sep: String?, _ maxsplit: Int) -> [String] {
        guard maxsplit >= 0 else { return split(s, sep, maxsplit) }
        let reversed = String(String.UnicodeScalarView(s.unicodeScalars.reversed()))
        let rsep = sep.map { String(String.UnicodeScalarView($0.unicodeScalars.reversed())) }
        return split(reversed, rsep, maxsplit).reversed().map { String(String.UnicodeScalarView($0.unicodeScalars.reversed())) }
    }

    static func replace(_ s: String, _ old: String, _ new: String, count: Int?) -> String {
        let u = Array(s.unicodeScalars), o = Array(old.unicodeScalars)
        var out = String.UnicodeScalarView()
        var done = 0, i = 0
        if o.isEmpty {
            for c in u {
                if count.map({ done < $0 }) ?? true { out.append(contentsOf: new.unicodeScalars); done += 1 }
                out.append(c)
            }
            if count.map({ done < $0 }) ?? true { out.append(contentsOf: new.unicodeScalars) }
            return String(out)
        }
        while i < u.count {
            if (count.map { done < $0 } ?? true), i + o.count <= u.count, Array(u[i..<i + o.count]) == o {
                out.append(contentsOf: new.unicodeScalars)
                i += o.count
                done += 1
            } else {
                out.append(u[i])
                i += 1
            }
        }
        return String(out)
    }

    static func count(_ s: String, _ sub: String) -> Int {
        let u = Array(s.unicodeScalars), p = Array(sub.unicodeScalars)
        if p.isEmpty { return u.count + 1 }
        var n = 0, i = 0
        while i + p.count <= u.count {
            if Array(u[i..<i + p.count]) == p { n += 1; i += p.count } else { i += 1 }
        }
        return n
    }

    static func capitalize(_ s: String) -> String {
        guard let first = s.unicodeScalars.first else { return s }
        return String(first).uppercased() + String(String.UnicodeScalarView(s.unicodeScalars.dropFirst())).lowercased()
    }

    /// jinja2's `title` filter: words start after spaces, `-`, and opening brackets.
    static func title(_ s: String) -> String {
        var out = ""
        var startOfWord = true
        for u in s.unicodeScalars {
            let isBoundary = isSpace(u) || "-([{<".unicodeScalars.contains(u)
            if isBoundary {
                out.unicodeScalars.append(u)
                startOfWord = true
            } else {
                out += startOfWord ? String(u).uppercased() : String(u).lowercased()
                startOfWord = false
            }
        }
        return out
    }

    /// `str.splitlines()`.
    static func splitLines(_ s: String) -> [String] {
        var lines: [String] = []
        var current = String.UnicodeScalarView()
        var pendingCR = false
        for u in s.unicodeScalars {
            if pendingCR {
                pendingCR = false
                if u == "\n" { continue }
            }
            if u == "\n" || u == "\r" || [0x0B, 0x0C, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029].contains(u.value) {
                lines.append(String(current))
                current = String.UnicodeScalarView()
                pendingCR = u == "\r"
            } else {
                current.append(u)
            }
        }
        if !current.isEmpty { lines.append(String(current)) }
        return lines
    }

    /// `str.format` with `{}`, `{0}`, `{name}` fields and `{{`/`}}` escapes (no format specs beyond `!r`/`!s`).
    static func format(_ s: String, _ args: [Value], _ kwargs: [(String, Value)]) throws -> String {
        var out = ""
        var auto = 0
        var chars = Array(s)[...]
        while let c = chars.popFirst() {
            if c == "{" && chars.first == "{" { chars.removeFirst(); out += "{"; continue }
            if c == "}" && chars.first == "}" { chars.removeFirst(); out += "}"; continue }
            guard c == "{" else { out.append(c); continue }
            var field = ""
            while let d = chars.popFirst(), d != "}" { field.append(d) }
            var conversion = "s"
            if let bang = field.firstIndex(of: "!") {
                conversion = String(field[field.index(after: bang)...])
                field = String(field[..<bang])
            }
            let v: Value
            if field.isEmpty {
                guard auto < args.count else { throw EvalError("Replacement index \(auto) out of range for positional args tuple") }
                v = args[auto]
                auto += 1
            } else if let i = Int(field) {
                guard i < args.count else { throw EvalError("Replacement index \(i) out of range for positional args tuple") }
                v = args[i]
            } else {
                guard let kw = kwargs.first(where: { $0.0 == field }) else { throw EvalError("KeyError: '\(field)'") }
                v = kw.1
            }
            out += conversion == "r" ? Format.repr(v) : Format.str(v)
        }
        return out
    }
}
