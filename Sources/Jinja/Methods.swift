/// Methods of Python's str, list and dict that templates call. Mutating list and dict methods
/// fail as in jinja2's `ImmutableSandboxedEnvironment`, which Hugging Face renders with.
enum Methods {
    static let stringMethods: Set<String> = [
        "split", "rsplit", "strip", "lstrip", "rstrip", "startswith", "endswith", "replace", "upper", "lower", "title",
        "capitalize", "format", "find", "rfind", "count", "join", "isdigit", "isalpha", "isalnum", "isspace", "isupper",
        "islower", "splitlines", "index", "removeprefix", "removesuffix",
    ]
    static let dictMethods: Set<String> = [
        "items", "keys", "values", "get", "copy", "pop", "popitem", "update", "setdefault", "clear",
    ]
    static let listMethods: Set<String> = [
        "index", "count", "copy", "append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear",
    ]
    private static let unsafe: Set<String> = [
        "pop", "popitem", "update", "setdefault", "clear", "append", "extend", "insert", "remove", "reverse", "sort",
    ]

    static func call(_ receiver: Value, _ name: String, _ args: [Value], _ kwargs: [(String, Value)]) throws -> Value {
        let a = Arguments(function: name, positional: args.map(\.plain), keywords: kwargs.map { ($0.0, $0.1.plain) })
        switch receiver.plain {
        case .string(let s): return try string(s, name, a)
        case .dict(let d):
            if unsafe.contains(name) { throw EvalError("access to attribute '\(name)' of 'dict' object is unsafe.") }
            switch name {
            case "items": return .list(d.entries.map { .tuple([$0.key, $0.value]) })
            case "keys": return .list(d.keys)
            case "values": return .list(d.values)
            case "get": return d[a.value(0, "key", .none)] ?? a.value(1, "default", .none)
            case "copy": return receiver
            default: break
            }
        case .list(let items, _):
            if unsafe.contains(name) { throw EvalError("access to attribute '\(name)' of 'list' object is unsafe.") }
            switch name {
            case "index":
                let x = a.value(0, "value", .undefined(""))
                guard let i = items.firstIndex(where: { Arithmetic.equal($0, x) }) else {
                    throw EvalError("\(Format.repr(x)) is not in list")
                }
                return .int(i)
            case "count": return .int(items.filter { Arithmetic.equal($0, a.value(0, "value", .undefined(""))) }.count)
            case "copy": return receiver
            default: break
            }
        default: break
        }
        throw EvalError("'\(receiver.typeName)' object has no attribute '\(name)'")
    }

    private static func string(_ s: String, _ name: String, _ a: Arguments) throws -> Value {
        func text(_ i: Int, _ key: String) throws -> String {
            guard case .string(let t) = a.value(i, key, .none) else { throw EvalError("\(name)() argument must be str") }
            return t
        }
        switch name {
        case "split", "rsplit":
            let sep = try a.optionalString(0, "sep")
            let maxsplit = Arithmetic.integer(a.value(1, "maxsplit", .int(-1))) ?? -1
            if sep == "" { throw EvalError("empty separator") }
            let parts = name == "split" ? PyString.split(s, sep, maxsplit) : PyString.rsplit(s, sep, maxsplit)
            return .list(parts.map { .string($0) })
        case "strip", "lstrip", "rstrip":
            return .string(PyString.strip(s, chars: try a.optionalString(0, "chars"), left: name != "rstrip", right: name != "lstrip"))
        case "startswith", "endswith":
            let candidates: [Value]
            if case .list(let items, _) = a.value(0, "prefix", .none) { candidates = items } else { candidates = [a.value(0, "prefix", .none)] }
            var subject = Array(s.unicodeScalars)[...]
            if let start = Arithmetic.integer(a.value(1, "start", .none)) {
                let from = start < 0 ? max(0, subject.count + start) : min(start, subject.count)
                subject = subject[from...]
            }
            for c in candidates {
                guard case .string(let t) = c else { throw EvalError("\(name) first arg must be str or a tuple of str, not \(c.typeName)") }
                let u = Array(t.unicodeScalars)
                if name == "startswith" ? subject.starts(with: u) : subject.reversed().starts(with: u.reversed()) { return .bool(true) }
            }
            return .bool(false)
        case "replace":
            let count = Arithmetic.integer(a.value(2, "count", .int(-1))) ?? -1
            return .string(PyString.replace(s, try text(0, "old"), try text(1, "new"), count: count < 0 ? nil : count))
        case "upper": return .string(s.uppercased())
        case "lower": return .string(s.lowercased())
        case "title": return .string(PyString.title(s))
        case "capitalize": return .string(PyString.capitalize(s))
        case "format": return .string(try PyString.format(s, a.positional, a.keywords))
        case "find", "rfind", "index":
            let needle = Array(try text(0, "sub").unicodeScalars)
            let hay = Array(s.unicodeScalars)
            var found = -1
            if needle.count <= hay.count {
                let range = Array(0...(hay.count - needle.count))
                for i in (name == "rfind" ? range.reversed() : range) where Array(hay[i..<i + needle.count]) == needle {
                    found = i
                    break
                }
            }
            if name == "index" && found < 0 { throw EvalError("substring not found") }
            return .int(found)
        case "count": return .int(PyString.count(s, try text(0, "sub")))
        case "join":
            guard case .list(let items, _) = a.value(0, "iterable", .none) else { throw EvalError("can only join an iterable") }
            return .string(try items.map { v in
                guard case .string(let t) = v else { throw EvalError("sequence item: expected str instance, \(v.typeName) found") }
                return t
            }.joined(separator: s))
        case "isdigit": return .bool(!s.isEmpty && s.allSatisfy(\.isNumber))
        case "isalpha": return .bool(!s.isEmpty && s.allSatisfy(\.isLetter))
        case "isalnum": return .bool(!s.isEmpty && s.allSatisfy { $0.isLetter || $0.isNumber })
        case "isspace": return .bool(!s.isEmpty && s.allSatisfy(\.isWhitespace))
        case "isupper": return .bool(s.contains(where: \.isLetter) && s == s.uppercased())
        case "islower": return .bool(s.contains(where: \.isLetter) && s == s.lowercased())
        case "splitlines": return .list(PyString.splitLines(s).map { .string($0) })
        case "removeprefix":
            let p = try text(0, "prefix")
            return .string(s.hasPrefix(p) ? String(s.dropFirst(p.count)) : s)
        case "removesuffix":
            let p = try text(0, "suffix")
            return .string(!p.isEmpty && s.hasSuffix(p) ? String(s.dropLast(p.count)) : s)
        default: throw EvalError("'str' object has no attribute '\(name)'")
        }
    }
}
