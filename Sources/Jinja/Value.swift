/// A runtime value, modelled on the Python objects jinja2 works with.
enum Value {
    /// jinja2's default `Undefined`: prints as "", is falsy, iterates as empty; most other uses
    /// fail with `message` (e.g. "'x' is undefined").
    case undefined(String)
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    /// markupsafe's `Markup` (from `|safe`): a str that HTML-escapes plain strings added to it.
    case markup(String)
    /// A list; tuples (from `(a, b)`, `items()`) are lists marked `tuple` so they print as Python does.
    case list([Value], tuple: Bool)
    case dict(Dict)
    /// What jinja2's lazy filters (`map`, `select`, `items`, ...) return: iterable once, always
    /// truthy, without a length, not JSON serializable.
    case generator([Value])
    case namespace(Namespace)
    case macro(Macro)
    /// A global function such as `range` or `raise_exception`.
    case builtin(String)
    /// A method of a string, list or dict, bound to its receiver (`"a b".split`).
    case method(Box, String)
    /// A `loop` object's state for `loop.cycle` and recursive `loop(...)`.
    case loopCall(LoopInfo)

    static func list(_ items: [Value]) -> Value { .list(items, tuple: false) }
    static func tuple(_ items: [Value]) -> Value { .list(items, tuple: true) }

    init(_ v: JinjaValue) {
        switch v {
        case .null: self = .none
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .double(let d): self = .double(d)
        case .string(let s): self = .string(s)
        case .array(let a): self = .list(a.map(Value.init))
        case .object(let entries):
            var d = Dict()
            for (k, v) in entries { d[.string(k)] = Value(v) }
            self = .dict(d)
        }
    }

    /// Markup as a plain string: every operation but `+`, `%` and output treats it as a str.
    var plain: Value {
        if case .markup(let s) = self { return .string(s) }
        return self
    }

    /// markupsafe's `escape`.
    static func escapeHTML(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&#34;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    var isMarkup: Bool { if case .markup = self { return true } else { return false } }
    var isUndefined: Bool { if case .undefined = self { return true } else { return false } }

    /// Python's type name, for error messages.
    var typeName: String {
        switch self {
        case .undefined: "Undefined"
        case .none: "NoneType"
        case .bool: "bool"
        case .int: "int"
        case .double: "float"
        case .string: "str"
        case .markup: "Markup"
        case .list(_, let t): t ? "tuple" : "list"
        case .dict: "dict"
        case .generator: "generator"
        case .namespace: "Namespace"
        case .macro: "Macro"
        case .builtin, .method, .loopCall: "function"
        }
    }

    /// Python truthiness.
    var truthy: Bool {
        switch self {
        case .undefined, .none: false
        case .bool(let b): b
        case .int(let i): i != 0
        case .double(let d): d != 0
        case .string(let s), .markup(let s): !s.isEmpty
        case .list(let a, _): !a.isEmpty
        case .dict(let d): !d.isEmpty
        default: true
        }
    }

    var isCallable: Bool {
        switch self {
        case .macro, .builtin, .method, .loopCall: true
        default: false
        }
    }
}

/// A value held by reference so `Value` stays a small enum.
final class Box {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// The mutable object `namespace(...)` returns; `set ns.x = ...` writes into it.
final class Namespace {
    var attributes = Dict()
}

/// A macro: its parameters with default expressions, body, and the scope it was defined in.
final class Macro {
    let name: String
    let parameters: [(name: String, defaultValue: Expr?)]
    let body: [Stmt]
    let scope: Scope
    init(name: String, parameters: [(name: String, defaultValue: Expr?)], body: [Stmt], scope: Scope) {
        self.name = name; self.parameters = parameters; self.body = body; self.scope = scope
    }
}

/// What `loop.cycle(...)` and a recursive loop's `loop(...)` need.
final class LoopInfo {
    let index0: Int
    let recurse: ((Value) throws -> Value)?
    let isCycle: Bool
    init(index0: Int, isCycle: Bool, recurse: ((Value) throws -> Value)?) {
        self.index0 = index0; self.isCycle = isCycle; self.recurse = recurse
    }
}

/// An insertion-ordered dictionary with Python key equality (`1 == 1.0 == True`).
struct Dict {
    private(set) var keys: [Value] = []
    private(set) var values: [Value] = []
    private var index: [HashKey: Int] = [:]

    enum HashKey: Hashable {
        case string(String), number(Double), none, other(String)
    }

    static func hashKey(_ v: Value) -> HashKey {
        switch v {
        case .string(let s), .markup(let s): .string(s)
        case .int(let i): .number(Double(i))
        case .bool(let b): .number(b ? 1 : 0)
        case .double(let d): .number(d)
        case .none: .none
        default: .other(Format.repr(v))
        }
    }

    var isEmpty: Bool { keys.isEmpty }
    var count: Int { keys.count }

    subscript(key: Value) -> Value? {
        get { index[Self.hashKey(key)].map { values[$0] } }
        set {
            let h = Self.hashKey(key)
            if let at = index[h] {
                if let newValue { values[at] = newValue } else { remove(at: at) }
            } else if let newValue {
                index[h] = keys.count
                keys.append(key)
                values.append(newValue)
            }
        }
    }

    subscript(key: String) -> Value? {
        get { self[Value.string(key)] }
        set { self[Value.string(key)] = newValue }
    }

    private mutating func remove(at: Int) {
        keys.remove(at: at)
        values.remove(at: at)
        index = [:]
        for (i, k) in keys.enumerated() { index[Self.hashKey(k)] = i }
    }

    var entries: [(key: Value, value: Value)] { Array(zip(keys, values)).map { ($0.0, $0.1) } }
}
