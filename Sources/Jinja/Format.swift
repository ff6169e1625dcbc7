/// Python's `str()`, `repr()` and `json.dumps` of runtime values.
enum Format {
    /// `str(value)`, as `{{ value }}` prints it (undefined prints as "").
    static func str(_ v: Value) -> String {
        switch v {
        case .undefined: ""
        case .string(let s), .markup(let s): s
        default: repr(v)
        }
    }

    static func repr(_ v: Value) -> String {
        switch v {
        case .undefined: ""
        case .none: "None"
        case .bool(let b): b ? "True" : "False"
        case .int(let i): String(i)
        case .double(let d): float(d)
        case .string(let s): stringRepr(s)
        case .markup(let s): "Markup(\(stringRepr(s)))"
        case .list(let items, let tuple):
            if tuple {
                items.count == 1 ? "(\(repr(items[0])),)" : "(" + items.map(repr).joined(separator: ", ") + ")"
            } else {
                "[" + items.map(repr).joined(separator: ", ") + "]"
            }
        case .dict(let d): "{" + d.entries.map { "\(repr($0.key)): \(repr($0.value))" }.joined(separator: ", ") + "}"
        case .generator: "<generator object>"
        case .namespace(let n): "<Namespace " + repr(.dict(n.attributes)) + ">"
        case .macro(let m): "<Macro '\(m.name)'>"
        case .builtin(let name): "<function \(name)>"
        case .method(_, let name): "<built-in method \(name)>"
        case .loopCall: "<function loop>"
        }
    }

    /// Python's float repr: the shortest round-tripping digits, positional for exponents
    /// -4 ..< 16, scientific (`1e+16`, `1.5e-07`) otherwise.
    static func float(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d < 0 ? "-inf" : "inf" }
        if d == 0 { return d.sign == .minus ? "-0.0" : "0.0" }
        // Swift's description also gives the shortest round-tripping digits; re-lay them out.
        var text = "\(abs(d))"
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exponent = Int(text[text.index(after: e)...]) ?? 0
            text = String(text[..<e])
        }
        var digits = text.replacingOccurrences(".", "")
        let point = (text.firstIndex(of: ".").map { text.distance(from: text.startIndex, to: $0) } ?? text.count)
        // Normalise to digits d1 d2 ... with the decimal exponent of d1.
        let leadingZeros = digits.prefix { $0 == "0" }.count
        digits.removeFirst(leadingZeros)
        while digits.count > 1, digits.hasSuffix("0") { digits.removeLast() }
        let exp10 = point - 1 - leadingZeros + exponent
        let sign = d < 0 ? "-" : ""
        if exp10 >= -4 && exp10 < 16 {
            if exp10 < 0 {
                return sign + "0." + String(repeating: "0", count: -exp10 - 1) + digits
            }
            if digits.count <= exp10 + 1 {
                return sign + digits + String(repeating: "0", count: exp10 + 1 - digits.count) + ".0"
            }
            let cut = digits.index(digits.startIndex, offsetBy: exp10 + 1)
            return sign + digits[..<cut] + "." + digits[cut...]
        }
        let mantissa = digits.count == 1 ? digits : "\(digits.first!)." + digits.dropFirst()
        let e = abs(exp10) < 10 ? "0\(abs(exp10))" : "\(abs(exp10))"
        return sign + mantissa + "e" + (exp10 < 0 ? "-" : "+") + e
    }

    /// Python's repr of a str: single quotes unless the text has a ' and no ".
    static func stringRepr(_ s: String) -> String {
        let quote: Character = s.contains("'") && !s.contains("\"") ? "\"" : "'"
        var out = String(quote)
        for u in s.unicodeScalars {
            switch u {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if Character(u) == quote { out += "\\\(quote)" }
                else if u.value < 0x20 || u.value == 0x7F { out += "\\x" + hex(u.value, 2) }
                else if (0x80..<0xA0).contains(u.value) { out += "\\x" + hex(u.value, 2) }
                else { out.unicodeScalars.append(u) }
            }
        }
        out.append(quote)
        return out
    }

    static func hex(_ v: UInt32, _ width: Int) -> String {
        let h = String(v, radix: 16)
        return String(repeating: "0", count: max(0, width - h.count)) + h
    }
}

/// `json.dumps(value, ensure_ascii=..., indent=..., separators=..., sort_keys=...)`.
struct JSONDumper {
    var ensureASCII = false
    /// Indent per level (a string, as Python turns an int indent into that many spaces); nil for one line.
    var indent: String?
    var itemSeparator = ", "
    var keySeparator = ": "
    var sortKeys = false

    func dump(_ v: Value) throws -> String {
        var out = ""
        try write(v, level: 0, into: &out)
        return out
    }

    private func write(_ v: Value, level: Int, into out: inout String) throws {
        switch v {
        case .none: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d):
            if d.isNaN { out += "NaN" } else if d.isInfinite { out += d < 0 ? "-Infinity" : "Infinity" } else { out += Format.float(d) }
        case .string(let s), .markup(let s): out += quote(s)
        case .list(let items, _):
            try container("[", "]", items.count, level: level, into: &out) { i, out in
                try write(items[i], level: level + 1, into: &out)
            }
        case .dict(let d):
            var entries = try d.entries.map { (key: try keyString($0.key), value: $0.value) }
            if sortKeys { entries.sort { $0.key.unicodeScalars.lexicographicallyPrecedes($1.key.unicodeScalars) } }
            try container("{", "}", entries.count, level: level, into: &out) { i, out in
                out += quote(entries[i].key) + keySeparator
                try write(entries[i].value, level: level + 1, into: &out)
            }
        default:
            throw EvalError("Object of type \(v.typeName) is not JSON serializable")
        }
    }

    private func container(_ open: String, _ close: String, _ count: Int, level: Int, into out: inout String,
                           _ item: (Int, inout String) throws -> Void) throws {
        out += open
        guard count > 0 else { out += close; return }
        if let indent {
            let inner = "\n" + String(repeating: indent, count: level + 1)
            for i in 0..<count {
                out += (i == 0 ? inner : itemSeparator + inner)
                try item(i, &out)
            }
            out += "\n" + String(repeating: indent, count: level) + close
        } else {
            for i in 0..<count {
                if i > 0 { out += itemSeparator }
                try item(i, &out)
            }
            out += close
        }
    }

    private func keyString(_ k: Value) throws -> String {
        switch k {
        case .string(let s), .markup(let s): return s
        case .int(let i): return String(i)
        case .bool(let b): return b ? "true" : "false"
        case .none: return "null"
        case .double(let d): return Format.float(d)
        default: throw EvalError("keys must be str, int, float, bool or None, not \(k.typeName)")
        }
    }

    func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if u.value < 0x20 {
                    out += "\\u" + Format.hex(u.value, 4)
                } else if ensureASCII && u.value > 0x7E {
                    if u.value > 0xFFFF {
                        let v = u.value - 0x10000
                        out += "\\u" + Format.hex(0xD800 + (v >> 10), 4) + "\\u" + Format.hex(0xDC00 + (v & 0x3FF), 4)
                    } else {
                        out += "\\u" + Format.hex(u.value, 4)
                    }
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}

extension String {
    /// Replaces every occurrence of `target` (no Foundation needed).
    func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        guard !target.isEmpty else { return self }
        return self.split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
