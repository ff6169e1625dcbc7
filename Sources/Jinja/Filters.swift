import Foundation

/// jinja2's filters, plus `tojson` as Hugging Face defines it (`json.dumps`, `ensure_ascii=False`).
enum Filters {
    static let names: Set<String> = [
        "tojson", "length", "count", "trim", "string", "default", "d", "join", "items", "list", "selectattr",
        "rejectattr", "select", "reject", "map", "safe", "dictsort", "lower", "upper", "capitalize", "title",
        "replace", "unique", "sort", "int", "float", "indent", "min", "max", "first", "last", "abs", "round",
        "wordcount", "batch", "e", "escape", "reverse", "sum", "attr", "forceescape", "format",
    ]
}

/// Arguments bound to a callable's parameter names, as Python does.
struct Arguments {
    let function: String
    var positional: [Value]
    var keywords: [(String, Value)]

    /// The argument at `index` or named `name`, else `defaultValue`.
    func value(_ index: Int, _ name: String, _ defaultValue: Value) -> Value {
        if index < positional.count { return positional[index] }
        return keywords.first { $0.0 == name }?.1 ?? defaultValue
    }

    func bool(_ index: Int, _ name: String, _ defaultValue: Bool) -> Bool { value(index, name, .bool(defaultValue)).truthy }

    func optionalString(_ index: Int, _ name: String) throws -> String? {
        switch value(index, name, .none) {
        case .none, .undefined: return nil
        case .string(let s): return s
        case let v: throw EvalError("\(function): '\(name)' must be a string, got \(v.typeName)")
        }
    }
}

extension Interpreter {
    func applyFilter(_ name: String, _ v: Value, _ positional: [Value], _ keywords: [(String, Value)], _ scope: Scope) throws -> Value {
        let a = Arguments(function: name, positional: positional, keywords: keywords)
        if name == "safe" { return .markup(Format.str(v)) }
        if name == "e" || name == "escape" || name == "forceescape" {
            return v.isMarkup && name != "forceescape" ? v : .markup(Value.escapeHTML(Format.str(v)))
        }
        if name == "string", v.isMarkup { return v }
        let v = v.plain
        switch name {
        case "tojson":
            var dumper = JSONDumper()
            dumper.ensureASCII = a.bool(0, "ensure_ascii", false)
            switch a.value(1, "indent", .none) {
            case .int(let n): dumper.indent = String(repeating: " ", count: try width(n))
            case .string(let s): dumper.indent = s
            default: break
            }
            if dumper.indent != nil { dumper.itemSeparator = "," }
            if case .list(let seps, _) = a.value(2, "separators", .none), seps.count == 2,
               case .string(let item) = seps[0], case .string(let key) = seps[1] {
                dumper.itemSeparator = item; dumper.keySeparator = key
            }
            dumper.sortKeys = a.bool(3, "sort_keys", false)
            return .string(try dumper.dump(v))
        case "length", "count":
            switch v {
            case .undefined: return .int(0)
            case .string(let s): return .int(s.unicodeScalars.count)
            case .list(let items, _): return .int(items.count)
            case .dict(let d): return .int(d.count)
            default: throw EvalError("object of type '\(v.typeName)' has no len()")
            }
        case "trim":
            let s = Format.str(v)
            if let chars = try a.optionalString(0, "chars") { return .string(PyString.strip(s, chars: chars, left: true, right: true)) }
            return .string(PyString.strip(s, chars: nil, left: true, right: true))
        case "string": return .string(Format.str(v))
        case "default", "d":
            let fallback = a.value(0, "default_value", .string(""))
            if v.isUndefined || (a.bool(1, "boolean", false) && !v.truthy) { return fallback }
            return v
        case "join":
            let separator = try a.optionalString(0, "d") ?? ""
            var items = try iterate(v)
            if let attr = try a.optionalString(1, "attribute") { items = try items.map { try attributePath($0, attr) } }
            return .string(items.map(Format.str).joined(separator: separator))
        case "items":
            switch v {
            case .undefined: return .generator([])
            case .dict(let d): return .generator(d.entries.map { .tuple([$0.key, $0.value]) })
            default: throw EvalError("Can only get item pairs from a mapping.")
            }
        case "list": return .list(try iterate(v))
        case "reverse":
            if case .string(let s) = v { return .string(String(String.UnicodeScalarView(s.unicodeScalars.reversed()))) }
            return .generator(try iterate(v).reversed())
        case "selectattr", "rejectattr", "select", "reject":
            let byAttribute = name.hasSuffix("attr")
            let keep = name.hasPrefix("select")
            var rest = positional
            var attr: String?
            if byAttribute {
                guard case .string(let s) = rest.first ?? .none else { throw EvalError("\(name): missing attribute name") }
                attr = s
                rest.removeFirst()
            }
            var test: String?
            if let t = rest.first {
                guard case .string(let s) = t else { throw EvalError("\(name): the test name must be a string") }
                test = s
                rest.removeFirst()
                guard Tests.names.contains(s) else { throw EvalError("no test named '\(s)'") }
            }
            return .generator(try (v.truthy ? iterate(v) : []).filter { item in
                let subject = try attr.map { try attributePath(item, $0) } ?? item
                let passed = try test.map { try applyTest($0, subject, rest, scope) } ?? subject.truthy
                return passed == keep
            })
        case "map":
            let items = v.truthy ? try iterate(v) : []
            if let attr = try a.optionalString(Int.max, "attribute") {
                let fallback = keywords.first { $0.0 == "default" }?.1
                return .generator(try items.map { item in
                    let r = try attributePath(item, attr)
                    if r.isUndefined, let fallback { return fallback }
                    return r
                })
            }
            guard case .string(let filter) = positional.first ?? .none, Filters.names.contains(filter) else {
                throw EvalError("map: expected a filter name or attribute=")
            }
            return .generator(try items.map { try applyFilter(filter, $0, Array(positional.dropFirst()), keywords, scope) })
        case "dictsort":
            guard case .dict(let d) = v else { throw EvalError("dictsort: expected a mapping, got \(v.typeName)") }
            let caseSensitive = a.bool(0, "case_sensitive", false)
            let byValue = (try a.optionalString(1, "by") ?? "key") == "value"
            let reverse = a.bool(2, "reverse", false)
            let sorted = try sortValues(d.entries.map { .tuple([$0.key, $0.value]) }, reverse: reverse) { pair in
                guard case .list(let kv, _) = pair else { return pair }
                return fold(kv[byValue ? 1 : 0], caseSensitive)
            }
            return .list(sorted)
        case "lower": return .string(Format.str(v).lowercased())
        case "upper": return .string(Format.str(v).uppercased())
        case "capitalize": return .string(PyString.capitalize(Format.str(v)))
        case "title": return .string(PyString.title(Format.str(v)))
        case "replace":
            guard case .string(let old) = a.value(0, "old", .none), case .string(let new) = a.value(1, "new", .none) else {
                throw EvalError("replace: expected two strings")
            }
            let count = Arithmetic.integer(a.value(2, "count", .none))
            return .string(PyString.replace(Format.str(v), old, new, count: count))
        case "unique":
            let caseSensitive = a.bool(0, "case_sensitive", false)
            let attr = try a.optionalString(1, "attribute")
            var seen: [Value] = []
            var out: [Value] = []
            for item in try iterate(v) {
                let key = fold(try attr.map { try attributePath(item, $0) } ?? item, caseSensitive)
                if !seen.contains(where: { Arithmetic.equal($0, key) }) { seen.append(key); out.append(item) }
            }
            return .generator(out)
        case "sort":
            let reverse = a.bool(0, "reverse", false)
            let caseSensitive = a.bool(1, "case_sensitive", false)
            let attr = try a.optionalString(2, "attribute")
            return .list(try sortValues(try iterate(v), reverse: reverse) { item in
                fold(try attr.map { try attributePath(item, $0) } ?? item, caseSensitive)
            })
        case "int":
            let fallback = a.value(0, "default", .int(0))
            switch v {
            case .int: return v
            case .bool(let b): return .int(b ? 1 : 0)
            case .double(let d): return Arithmetic.truncated(d).map { .int($0) } ?? fallback
            case .string(let s):
                let t = s.trimmingCharacters(in: .whitespaces)
                if let i = Int(t.replacingOccurrences("_", "")) { return .int(i) }
                if let d = Double(t), let i = Arithmetic.truncated(d) { return .int(i) }
                return fallback
            default: return fallback
            }
        case "float":
            let fallback = a.value(0, "default", .double(0))
            switch v {
            case .double: return v
            case .int(let i): return .double(Double(i))
            case .bool(let b): return .double(b ? 1 : 0)
            case .string(let s): return Double(s.trimmingCharacters(in: .whitespaces)).map { .double($0) } ?? fallback
            default: return fallback
            }
        case "indent":
            var indentation = "    "
            switch a.value(0, "width", .int(4)) {
            case .string(let s): indentation = s
            case let w: indentation = String(repeating: " ", count: try width(Arithmetic.integer(w) ?? 4))
            }
            let first = a.bool(1, "first", false), blank = a.bool(2, "blank", false)
            var lines = PyString.splitLines(Format.str(v) + "\n")
            var text: String
            if blank {
                text = lines.joined(separator: "\n" + indentation)
            } else {
                text = lines.removeFirst()
                if !lines.isEmpty { text += "\n" + lines.map { $0.isEmpty ? $0 : indentation + $0 }.joined(separator: "\n") }
            }
            return .string(first ? indentation + text : text)
        case "min", "max":
            let caseSensitive = a.bool(0, "case_sensitive", false)
            let attr = try a.optionalString(1, "attribute")
            let items = try iterate(v)
            guard !items.isEmpty else { return .undefined("No aggregated item, sequence was empty.") }
            let sorted = try sortValues(items, reverse: false) { item in
                fold(try attr.map { try attributePath(item, $0) } ?? item, caseSensitive)
            }
            return name == "min" ? sorted.first! : sorted.last!
        case "first":
            return try iterate(v).first ?? .undefined("No first item, sequence was empty.")
        case "last":
            return try iterate(v).last ?? .undefined("No last item, sequence was empty.")
        case "sum":
            var total = Value.int(0)
            for item in try iterate(v) { total = try Arithmetic.binary("+", total, item) }
            return total
        case "abs":
            switch v {
            case .int(let i): return .int(abs(i))
            case .bool(let b): return .int(b ? 1 : 0)
            case .double(let d): return .double(abs(d))
            default: throw EvalError("bad operand type for abs(): '\(v.typeName)'")
            }
        case "round":
            let precision = Arithmetic.integer(a.value(0, "precision", .int(0))) ?? 0
            let method = (try a.optionalString(1, "method")) ?? "common"
            guard let x = Arithmetic.number(v) else { throw EvalError("round: expected a number, got \(v.typeName)") }
            let scale = pow(10.0, Double(precision))
            let rule: FloatingPointRoundingRule = method == "ceil" ? .up : method == "floor" ? .down : .toNearestOrEven
            let r = (x * scale).rounded(rule) / scale
            if method == "common", case .int = v { return v }
            return .double(r)
        case "wordcount":
            return .int(Format.str(v).split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "_") }).count)
        case "batch":
            guard let size = Arithmetic.integer(a.value(0, "linecount", .none)), size > 0 else { throw EvalError("batch: expected a positive size") }
            let items = try iterate(v)
            let fill = positional.count > 1 ? positional[1] : nil
            return .generator(stride(from: 0, to: items.count, by: size).map { start in
                var chunk = Array(items[start..<min(start + size, items.count)])
                if let fill { while chunk.count < size { chunk.append(fill) } }
                return .list(chunk)
            })
        case "attr":
            guard case .string(let n) = a.value(0, "name", .none) else { throw EvalError("attr: expected a name") }
            return try attribute(v, n)
        case "format":
            return .string(try Arithmetic.percentFormat(Format.str(v), .tuple(positional)))
        default:
            throw EvalError("No filter named '\(name)' found.")
        }
    }

    /// An indent width; a huge one is refused rather than allocated.
    func width(_ n: Int) throws -> Int {
        guard n <= 1024 else { throw EvalError("indent width \(n) exceeds the limit of 1024", kind: .limit) }
        return max(0, n)
    }

    /// `item.a.b` for `attribute="a.b"` (dotted paths; integer parts index lists).
    func attributePath(_ item: Value, _ path: String) throws -> Value {
        var v = item
        for part in path.split(separator: ".") {
            if let i = Int(part) { v = try self.item(v, .int(i)) } else { v = try self.item(v, .string(String(part))) }
        }
        return v
    }

    /// Lower-cases strings unless `caseSensitive`, for sort/unique/dictsort keys.
    func fold(_ v: Value, _ caseSensitive: Bool) -> Value {
        if !caseSensitive, case .string(let s) = v { return .string(s.lowercased()) }
        return v
    }

    /// A stable sort by `key` with Python ordering.
    func sortValues(_ items: [Value], reverse: Bool, key: (Value) throws -> Value) throws -> [Value] {
        let keyed = try items.enumerated().map { (offset: $0.offset, key: try key($0.element), value: $0.element) }
        var failure: Error?
        let sorted = keyed.sorted { x, y in
            do {
                if try Arithmetic.less(x.key, y.key) { return !reverse }
                if try Arithmetic.less(y.key, x.key) { return reverse }
            } catch { failure = error }
            return x.offset < y.offset
        }
        if let failure { throw failure }
        return sorted.map(\.value)
    }
}
