/// Expression evaluation with Python semantics.
extension Interpreter {
    func eval(_ e: Expr, _ scope: Scope) throws -> Value {
        try step()
        do {
            return try evalKind(e, scope)
        } catch let error as EvalError {
            throw JinjaError(error.kind, error.message, line: e.position.line, column: e.position.column)
        }
    }

    private func evalKind(_ e: Expr, _ scope: Scope) throws -> Value {
        switch e.kind {
        case .literal(let v): return v
        case .name(let n):
            if let v = scope.lookup(n) { return v }
            if Builtins.names.contains(n) { return .builtin(n) }
            return .undefined("'\(n)' is undefined")
        case .list(let items): return .list(try items.map { try eval($0, scope) })
        case .tuple(let items): return .tuple(try items.map { try eval($0, scope) })
        case .dict(let pairs):
            var d = Dict()
            for (k, v) in pairs { d[try eval(k, scope)] = try eval(v, scope) }
            return .dict(d)
        case .attribute(let base, let name):
            return try attribute(try eval(base, scope), name)
        case .item(let base, let index):
            return try item(try eval(base, scope), try eval(index, scope))
        case .slice(let base, let a, let b, let c):
            let v = try eval(base, scope)
            return try slice(v, try a.map { try eval($0, scope) }, try b.map { try eval($0, scope) }, try c.map { try eval($0, scope) })
        case .call(let callee, let args, let kwargs):
            let f = try eval(callee, scope)
            return try call(f, try args.map { try eval($0, scope) }, try evalKeywords(kwargs, scope), scope)
        case .filter(let base, let name, let args, let kwargs):
            let v = try eval(base, scope)
            return try applyFilter(name, v, try args.map { try eval($0, scope) }, try evalKeywords(kwargs, scope), scope)
        case .test(let base, let name, let args, let negated):
            let v = try eval(base, scope)
            let r = try applyTest(name, v, try args.map { try eval($0, scope) }, scope)
            return .bool(negated ? !r : r)
        case .unary(let op, let operand):
            let v = try eval(operand, scope)
            switch (op, v) {
            case ("-", .int(let i)): return .int(-i)
            case ("-", .double(let d)): return .double(-d)
            case ("-", .bool(let b)): return .int(b ? -1 : 0)
            case ("+", .int), ("+", .double): return v
            case ("+", .bool(let b)): return .int(b ? 1 : 0)
            case (_, .undefined(let m)): throw EvalError(m)
            default: throw EvalError("bad operand type for unary \(op): '\(v.typeName)'")
            }
        case .binary(let op, let l, let r):
            return try Arithmetic.binary(op, try eval(l, scope), try eval(r, scope))
        case .and(let l, let r):
            let a = try eval(l, scope)
            return a.truthy ? try eval(r, scope) : a
        case .or(let l, let r):
            let a = try eval(l, scope)
            return a.truthy ? a : try eval(r, scope)
        case .not(let x):
            return .bool(!(try eval(x, scope).truthy))
        case .compare(let first, let rest):
            var left = try eval(first, scope)
            for (op, rhs) in rest {
                let right = try eval(rhs, scope)
                guard try Arithmetic.compare(op, left, right) else { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .conditional(let condition, let then, let otherwise):
            if try eval(condition, scope).truthy { return try eval(then, scope) }
            if let otherwise { return try eval(otherwise, scope) }
            return .undefined("the inline if expression has no else branch")
        }
    }

    /// `base.name`: a method of str/list/dict, then a dict key or namespace attribute.
    func attribute(_ base: Value, _ name: String) throws -> Value {
        let base = base.plain
        switch base {
        case .undefined(let m): throw EvalError(m)
        case .dict(let d):
            if Methods.dictMethods.contains(name) { return .method(Box(base), name) }
            return d[name] ?? .undefined("'dict object' has no attribute '\(name)'")
        case .namespace(let ns):
            return ns.attributes[name] ?? .undefined("'Namespace object' has no attribute '\(name)'")
        case .string where Methods.stringMethods.contains(name), .list where Methods.listMethods.contains(name):
            return .method(Box(base), name)
        case .none:
            return .undefined("'None' has no attribute '\(name)'")
        default:
            return .undefined("'\(base.typeName) object' has no attribute '\(name)'")
        }
    }

    /// `base[index]`: list/str index (negative from the end), dict key, else an attribute.
    func item(_ base: Value, _ index: Value) throws -> Value {
        let base = base.plain, index = index.plain
        switch (base, index) {
        case (.undefined(let m), _): throw EvalError(m)
        case (.list(let items, _), _):
            guard let i = Arithmetic.integer(index) else { break }
            let j = i < 0 ? items.count + i : i
            return items.indices.contains(j) ? items[j] : .undefined("'list object' has no element \(i)")
        case (.string(let s), _):
            guard let i = Arithmetic.integer(index) else { break }
            let scalars = Array(s.unicodeScalars)
            let j = i < 0 ? scalars.count + i : i
            return scalars.indices.contains(j) ? .string(String(scalars[j])) : .undefined("'str object' has no element \(i)")
        case (.dict(let d), _):
            if let v = d[index] { return v }
            if case .string(let name) = index, Methods.dictMethods.contains(name) { return .method(Box(base), name) }
            return .undefined("'dict object' has no attribute \(Format.repr(index))")
        default: break
        }
        if case .string(let name) = index { return try attribute(base, name) }
        if case .none = base { return .undefined("'None' has no attribute \(Format.repr(index))") }
        return .undefined("'\(base.typeName) object' has no element \(Format.repr(index))")
    }

    func slice(_ base: Value, _ a: Value?, _ b: Value?, _ c: Value?) throws -> Value {
        func bound(_ v: Value?) throws -> Int? {
            guard let v, !(v.isNone) else { return nil }
            guard let i = Arithmetic.integer(v) else { throw EvalError("slice indices must be integers or None") }
            return i
        }
        let step = try bound(c) ?? 1
        guard step != 0 else { throw EvalError("slice step cannot be zero") }
        func indices(_ n: Int) throws -> [Int] {
            var start = try bound(a), stop = try bound(b)
            if step > 0 {
                var s = start.map { $0 < 0 ? max(0, n + $0) : min($0, n) } ?? 0
                let e = stop.map { $0 < 0 ? max(0, n + $0) : min($0, n) } ?? n
                var out: [Int] = []
                while s < e { out.append(s); s += step }
                return out
            }
            start = start.map { $0 < 0 ? max(-1, n + $0) : min($0, n - 1) } ?? n - 1
            stop = stop.map { $0 < 0 ? max(-1, n + $0) : min($0, n - 1) } ?? -1
            var s = start!
            var out: [Int] = []
            while s > stop! { out.append(s); s += step }
            return out
        }
        switch base.plain {
        case .undefined(let m): throw EvalError(m)
        case .list(let items, let t): return .list(try indices(items.count).map { items[$0] }, tuple: t)
        case .string(let s):
            let scalars = Array(s.unicodeScalars)
            var out = String.UnicodeScalarView()
            for i in try indices(scalars.count) { out.append(scalars[i]) }
            return .string(String(out))
        default: throw EvalError("'\(base.typeName)' object is not subscriptable")
        }
    }

    /// Calls a macro, a global function, a bound method or a recursive loop.
    func call(_ f: Value, _ args: [Value], _ kwargs: [(String, Value)], _ scope: Scope) throws -> Value {
        switch f {
        case .macro(let m): return try callMacro(m, args, kwargs)
        case .builtin(let name): return try Builtins.call(name, args, kwargs, self)
        case .method(let receiver, let name): return try Methods.call(receiver.value, name, args, kwargs)
        case .loopCall(let info):
            if info.isCycle {
                guard !args.isEmpty else { throw EvalError("no items for cycling given") }
                return args[info.index0 % args.count]
            }
            guard let recurse = info.recurse, args.count == 1 else { throw EvalError("loop() takes exactly one argument") }
            return try recurse(args[0])
        case .dict(let d):
            if let inner = d["__call__"] { return try call(inner, args, kwargs, scope) }
            throw EvalError("'dict' object is not callable")
        case .undefined(let m): throw EvalError(m)
        default: throw EvalError("'\(f.typeName)' object is not callable")
        }
    }

    func callMacro(_ m: Macro, _ args: [Value], _ kwargs: [(String, Value)]) throws -> Value {
        guard args.count <= m.parameters.count else {
            throw EvalError("macro '\(m.name)' takes not more than \(m.parameters.count) argument(s)")
        }
        depth += 1
        defer { depth -= 1 }
        guard depth <= limits.maxDepth else {
            throw EvalError("macro calls nested deeper than \(limits.maxDepth) levels (runaway recursion in '\(m.name)'?)", kind: .limit)
        }
        let s = Scope(parent: m.scope)
        var remaining = kwargs
        for (i, p) in m.parameters.enumerated() {
            if i < args.count {
                s.variables[p.name] = args[i]
            } else if let at = remaining.firstIndex(where: { $0.0 == p.name }) {
                s.variables[p.name] = remaining.remove(at: at).1
            } else if let d = p.defaultValue {
                s.variables[p.name] = try eval(d, s)
            } else {
                s.variables[p.name] = .undefined("parameter '\(p.name)' was not provided")
            }
        }
        if let extra = remaining.first {
            throw EvalError("macro '\(m.name)' takes no keyword argument '\(extra.0)'")
        }
        return .string(try capture { _ = try run(m.body, s) })
    }
}

extension Value {
    var isNone: Bool { if case .none = self { return true } else { return false } }
}
