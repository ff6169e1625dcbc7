/// jinja2's tests (`x is defined`, `x is divisibleby 3`, ...).
enum Tests {
    static let names: Set<String> = [
        "defined", "undefined", "none", "string", "mapping", "iterable", "sequence", "number", "integer", "float",
        "boolean", "true", "false", "even", "odd", "divisibleby", "eq", "equalto", "==", "ne", "!=", "lt", "<",
        "le", "<=", "gt", ">", "ge", ">=", "greaterthan", "lessthan", "in", "callable", "sameas", "lower", "upper",
        "escaped", "filter", "test",
    ]
}

extension Interpreter {
    func applyTest(_ name: String, _ v: Value, _ args: [Value], _ scope: Scope) throws -> Bool {
        let v = v.plain, args = args.map(\.plain)
        func arg(_ i: Int) throws -> Value {
            guard i < args.count else { throw EvalError("test '\(name)' needs an argument") }
            return args[i]
        }
        func int(_ what: Value) throws -> Int {
            if case .undefined(let m) = what { throw EvalError(m) }
            guard let i = Arithmetic.integer(what) else {
                if let d = Arithmetic.number(what), let i = Arithmetic.truncated(d) { return i }
                throw EvalError("test '\(name)' needs a number, got \(what.typeName)")
            }
            return i
        }
        switch name {
        case "defined": return !v.isUndefined
        case "undefined": return v.isUndefined
        case "none": return v.isNone
        case "string": if case .string = v { return true } else { return false }
        case "mapping": if case .dict = v { return true } else { return false }
        case "iterable":
            switch v {
            case .undefined, .string, .list, .dict: return true
            default: return false
            }
        case "sequence":
            switch v {
            case .undefined, .string, .list, .dict: return true
            default: return false
            }
        case "number":
            switch v {
            case .int, .double, .bool: return true
            default: return false
            }
        case "integer": if case .int = v { return true } else { return false }
        case "float": if case .double = v { return true } else { return false }
        case "boolean": if case .bool = v { return true } else { return false }
        case "true": if case .bool(true) = v { return true } else { return false }
        case "false": if case .bool(false) = v { return true } else { return false }
        case "even": return try int(v) % 2 == 0
        case "odd": return try int(v) % 2 != 0
        case "divisibleby":
            let d = try int(try arg(0))
            guard d != 0 else { throw EvalError("integer division or modulo by zero") }
            return try int(v) % d == 0
        case "eq", "equalto", "==": return Arithmetic.equal(v, try arg(0))
        case "ne", "!=": return !Arithmetic.equal(v, try arg(0))
        case "lt", "<", "lessthan": return try Arithmetic.less(v, try arg(0))
        case "gt", ">", "greaterthan": return try Arithmetic.less(try arg(0), v)
        case "le", "<=": return try Arithmetic.compare("<=", v, try arg(0))
        case "ge", ">=": return try Arithmetic.compare(">=", v, try arg(0))
        case "in": return try Arithmetic.contains(try arg(0), v)
        case "callable": return v.isCallable
        case "sameas":
            let other = try arg(0)
            switch (v, other) {
            case (.none, .none): return true
            case let (.bool(a), .bool(b)): return a == b
            case let (.namespace(a), .namespace(b)): return a === b
            default: return false
            }
        case "lower": if case .string(let s) = v { return s == s.lowercased() } else { return false }
        case "upper": if case .string(let s) = v { return s == s.uppercased() } else { return false }
        case "escaped": return false
        case "filter": if case .string(let s) = try arg(0) { return Filters.names.contains(s) } else { return false }
        case "test": if case .string(let s) = try arg(0) { return Tests.names.contains(s) } else { return false }
        default: throw EvalError("no test named '\(name)'")
        }
    }
}
