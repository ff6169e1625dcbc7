import Foundation

/// Python's operators on runtime values.
enum Arithmetic {
    /// An int (or bool) as Int; nil for other values.
    static func integer(_ v: Value) -> Int? {
        switch v {
        case .int(let i): i
        case .bool(let b): b ? 1 : 0
        default: nil
        }
    }

    static func number(_ v: Value) -> Double? {
        switch v {
        case .int(let i): Double(i)
        case .bool(let b): b ? 1 : 0
        case .double(let d): d
        default: nil
        }
    }

    private static func overflow(_ op: String) -> EvalError { EvalError("integer overflow in '\(op)'") }

    static func binary(_ op: String, _ l: Value, _ r: Value) throws -> Value {
        if op == "~" { return .string(Format.str(l) + Format.str(r)) }
        switch (op, l, r) {
        case ("+", .markup(let a), .string(let b)), ("+", .markup(let a), .markup(let b)):
            return .markup(a + (r.isMarkup ? b : Value.escapeHTML(b)))
        case ("+", .string(let a), .markup(let b)): return .markup(Value.escapeHTML(a) + b)
        case ("%", .markup(let format), _):
            let args: Value
            if case .list(let items, true) = r { args = .tuple(items.map { $0.isMarkup ? $0 : .string(Value.escapeHTML(Format.str($0))) }) }
            else { args = r.isMarkup ? r : .string(Value.escapeHTML(Format.str(r))) }
            return .markup(try percentFormat(format, args))
        default: break
        }
        let l = l.plain, r = r.plain
        if case .undefined(let m) = l { throw EvalError(m) }
        if case .undefined(let m) = r { throw EvalError(m) }
        if let a = integer(l), let b = integer(r) {
            switch op {
            case "+": let (v, o) = a.addingReportingOverflow(b); if o { throw overflow(op) }; return .int(v)
            case "-": let (v, o) = a.subtractingReportingOverflow(b); if o { throw overflow(op) }; return .int(v)
            case "*": let (v, o) = a.multipliedReportingOverflow(by: b); if o { throw overflow(op) }; return .int(v)
            case "/":
                guard b != 0 else { throw EvalError("division by zero") }
                return .double(Double(a) / Double(b))
            case "//":
                guard b != 0 else { throw EvalError("integer division or modulo by zero") }
                let q = a / b
                return .int((a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q)
            case "%":
                guard b != 0 else { throw EvalError("integer division or modulo by zero") }
                let m = a % b
                return .int(m != 0 && (m < 0) != (b < 0) ? m + b : m)
            case "**":
                if b < 0 { return .double(pow(Double(a), Double(b))) }
                var result = 1, base = a, e = b
                while e > 0 {
                    if e & 1 == 1 { let (v, o) = result.multipliedReportingOverflow(by: base); if o { throw overflow(op) }; result = v }
                    e >>= 1
                    if e > 0 { let (v, o) = base.multipliedReportingOverflow(by: base); if o { throw overflow(op) }; base = v }
                }
                return .int(result)
            default: break
            }
        }
        if let a = number(l), let b = number(r) {
            switch op {
            case "+": return .double(a + b)
            case "-": return .double(a - b)
            case "*": return .double(a * b)
            case "/":
                guard b != 0 else { throw EvalError("float division by zero") }
                return .double(a / b)
            case "//":
                guard b != 0 else { throw EvalError("float floor division by zero") }
                return .double((a / b).rounded(.down))
            case "%":
                guard b != 0 else { throw EvalError("float modulo") }
                let m = fmod(a, b)
                return .double(m != 0 && (m < 0) != (b < 0) ? m + b : m)
            case "**": return .double(pow(a, b))
            default: break
            }
        }
        switch (op, l, r) {
        case ("+", .string(let a), .string(let b)): return .string(a + b)
        case ("+", .list(let a, let t), .list(let b, _)): return .list(a + b, tuple: t)
        case ("*", .string(let s), _) where integer(r) != nil:
            return .string(String(repeating: s, count: try repetitions(integer(r)!, of: s.utf8.count)))
        case ("*", _, .string(let s)) where integer(l) != nil:
            return .string(String(repeating: s, count: try repetitions(integer(l)!, of: s.utf8.count)))
        case ("*", .list(let a, let t), _) where integer(r) != nil:
            return .list(Array(repeating: a, count: try repetitions(integer(r)!, of: a.count)).flatMap { $0 }, tuple: t)
        case ("%", .string(let format), _):
            return .string(try percentFormat(format, r))
        case ("+", .string, _), ("+", _, .string):
            if case .string = l { throw EvalError("can only concatenate str (not \"\(r.typeName)\") to str") }
        default: break
        }
        throw EvalError("unsupported operand type(s) for \(op): '\(l.typeName)' and '\(r.typeName)'")
    }

    /// The largest string or list `*` builds, in bytes or elements.
    static let maxRepetition = 64 << 20

    private static func repetitions(_ n: Int, of size: Int) throws -> Int {
        guard n > 0 else { return 0 }
        guard size == 0 || n <= maxRepetition / size else {
            throw EvalError("repeating \(size) bytes or items \(n) times exceeds the limit of \(maxRepetition)", kind: .limit)
        }
        return n
    }

    /// A float truncated toward zero as an Int; nil when it is not finite or out of range.
    static func truncated(_ d: Double) -> Int? { Int(exactly: d.rounded(.towardZero)) }

    /// `"%s and %d" % args`: the %s %d %i %r %f %% conversions.
    static func percentFormat(_ format: String, _ args: Value) throws -> String {
        var values: [Value]
        if case .list(let items, true) = args { values = items } else { values = [args] }
        var out = ""
        var chars = Array(format)[...]
        while let c = chars.popFirst() {
            guard c == "%" else { out.append(c); continue }
            guard let conv = chars.popFirst() else { throw EvalError("incomplete format") }
            if conv == "%" { out += "%"; continue }
            guard !values.isEmpty else { throw EvalError("not enough arguments for format string") }
            let v = values.removeFirst()
            switch conv {
            case "s": out += Format.str(v)
            case "r": out += Format.repr(v)
            case "d", "i":
                guard let n = number(v) else { throw EvalError("%\(conv) format: a real number is required, not \(v.typeName)") }
                guard let i = truncated(n) else { throw EvalError("cannot convert float \(Format.float(n)) to integer") }
                out += String(i)
            case "f": guard let n = number(v) else { throw EvalError("%f format: a real number is required") }
                out += String(format: "%f", n)
            default: throw EvalError("unsupported format character '\(conv)'")
            }
        }
        guard values.isEmpty else { throw EvalError("not all arguments converted during string formatting") }
        return out
    }

    /// Python `==`.
    static func equal(_ l: Value, _ r: Value) -> Bool {
        let l = l.plain, r = r.plain
        if let a = number(l), let b = number(r) { return a == b }
        switch (l, r) {
        case (.undefined, .undefined), (.none, .none): return true
        case let (.string(a), .string(b)): return a == b
        case let (.list(a, _), .list(b, _)): return a.count == b.count && zip(a, b).allSatisfy { equal($0, $1) }
        case let (.dict(a), .dict(b)):
            return a.count == b.count && a.entries.allSatisfy { e in b[e.key].map { equal($0, e.value) } ?? false }
        case let (.namespace(a), .namespace(b)): return a === b
        case let (.macro(a), .macro(b)): return a === b
        case let (.builtin(a), .builtin(b)): return a == b
        default: return false
        }
    }

    /// Python `<` for numbers, strings and lists; other pairs fail as in Python.
    static func less(_ l: Value, _ r: Value) throws -> Bool {
        let l = l.plain, r = r.plain
        if let a = number(l), let b = number(r) { return a < b }
        switch (l, r) {
        case let (.string(a), .string(b)): return a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars)
        case let (.list(a, _), .list(b, _)):
            for (x, y) in zip(a, b) where !equal(x, y) { return try less(x, y) }
            return a.count < b.count
        case (.undefined(let m), _), (_, .undefined(let m)): throw EvalError(m)
        default: throw EvalError("'<' not supported between instances of '\(l.typeName)' and '\(r.typeName)'")
        }
    }

    static func contains(_ container: Value, _ item: Value) throws -> Bool {
        let item = item.plain
        switch container.plain {
        case .string(let s):
            guard case .string(let needle) = item else { throw EvalError("'in <string>' requires string as left operand, not \(item.typeName)") }
            return needle.isEmpty || s.contains(needle)
        case .list(let items, _), .generator(let items): return items.contains { equal($0, item) }
        case .dict(let d): return d[item] != nil
        case .undefined: return false
        default: throw EvalError("argument of type '\(container.typeName)' is not iterable")
        }
    }

    static func compare(_ op: String, _ l: Value, _ r: Value) throws -> Bool {
        switch op {
        case "==": return equal(l, r)
        case "!=": return !equal(l, r)
        case "<": return try less(l, r)
        case ">": return try less(r, l)
        case "<=": return try less(l, r) || equal(l, r)
        case ">=": return try less(r, l) || equal(l, r)
        case "in": return try contains(r, l)
        case "not in": return try !contains(r, l)
        default: throw EvalError("unknown comparison '\(op)'")
        }
    }
}
