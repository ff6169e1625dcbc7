import Foundation

/// Variables visible at one point of a render; `for` bodies and macro calls get a child scope,
/// so a `set` inside them does not leak out (which is why templates use `namespace`).
final class Scope {
    var variables: [String: Value] = [:]
    let parent: Scope?
    init(parent: Scope?) { self.parent = parent }

    func lookup(_ name: String) -> Value? {
        var s: Scope? = self
        while let current = s {
            if let v = current.variables[name] { return v }
            s = current.parent
        }
        return nil
    }
}

/// Limits that keep a hostile or broken template from hanging or exhausting memory.
public struct RenderLimits: Sendable {
    /// Statements, expressions and loop iterations evaluated.
    public var maxSteps: Int
    /// Nested macro calls (and recursive loops).
    public var maxDepth: Int
    /// Bytes of output, including captured blocks.
    public var maxOutputBytes: Int
    /// Elements `range()` may produce.
    public var maxRange: Int

    public init(maxSteps: Int = 20_000_000, maxDepth: Int = 100, maxOutputBytes: Int = 32 << 20, maxRange: Int = 1_000_000) {
        self.maxSteps = maxSteps; self.maxDepth = maxDepth; self.maxOutputBytes = maxOutputBytes; self.maxRange = maxRange
    }
}

/// Control flow out of a statement list.
enum Flow { case normal, breakLoop, continueLoop }

/// Walks the syntax tree and writes the output.
final class Interpreter {
    var output = ""
    var steps = 0
    var depth = 0
    let limits: RenderLimits
    let now: Date
    let timeZone: TimeZone

    init(limits: RenderLimits, now: Date, timeZone: TimeZone) {
        self.limits = limits; self.now = now; self.timeZone = timeZone
    }

    func step() throws {
        steps += 1
        if steps > limits.maxSteps {
            throw EvalError("the render took more than \(limits.maxSteps) steps (an endless or very long loop?)", kind: .limit)
        }
    }

    func write(_ s: String) throws {
        output += s
        if output.utf8.count > limits.maxOutputBytes {
            throw EvalError("the output exceeds \(limits.maxOutputBytes) bytes", kind: .limit)
        }
    }

    /// Runs `body` with the output captured and returns what it wrote.
    func capture(_ body: () throws -> Void) throws -> String {
        let saved = output
        output = ""
        defer { output = saved }
        try body()
        return output
    }

    func run(_ body: [Stmt], _ scope: Scope) throws -> Flow {
        for s in body {
            let flow = try execute(s, scope)
            if flow != .normal { return flow }
        }
        return .normal
    }

    func execute(_ stmt: Stmt, _ scope: Scope) throws -> Flow {
        try step()
        switch stmt {
        case .text(let s):
            try write(s)
        case .output(let e):
            try write(Format.str(try eval(e, scope)))
        case .ifChain(let branches, let otherwise):
            for (condition, body) in branches where try eval(condition, scope).truthy {
                return try run(body, scope)
            }
            return try run(otherwise, scope)
        case .forLoop(let target, let iterable, let filter, let body, let otherwise, let recursive, let p):
            let items = try located(p) { try iterate(try eval(iterable, scope)) }
            try loop(target, items, filter: filter, body: body, otherwise: otherwise, recursive: recursive, scope: scope, at: p)
        case .set(let target, let e, let p):
            let v = try eval(e, scope)
            try located(p) { try assign(target, v, scope) }
        case .setBlock(let target, let filters, let body, let p):
            var v = Value.string(try capture { _ = try run(body, scope) })
            for (name, args, kwargs, fp) in filters {
                v = try located(fp) { try applyFilter(name, v, try args.map { try eval($0, scope) }, try evalKeywords(kwargs, scope), scope) }
            }
            try located(p) { try assign(target, v, scope) }
        case .macro(let name, let params, let body):
            scope.variables[name] = .macro(Macro(name: name, parameters: params, body: body, scope: scope))
        case .filterBlock(let filters, let body):
            var v = Value.string(try capture { _ = try run(body, scope) })
            for (name, args, kwargs, fp) in filters {
                v = try located(fp) { try applyFilter(name, v, try args.map { try eval($0, scope) }, try evalKeywords(kwargs, scope), scope) }
            }
            try write(Format.str(v))
        case .generation(let body):
            return try run(body, scope)
        case .loopBreak: return .breakLoop
        case .loopContinue: return .continueLoop
        }
        return .normal
    }

    /// Converts an `EvalError` thrown inside `body` into a `JinjaError` at `p`.
    func located<T>(_ p: Position, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as EvalError {
            throw JinjaError(e.kind, e.message, line: p.line, column: p.column)
        }
    }

    func assign(_ target: Target, _ v: Value, _ scope: Scope) throws {
        switch target {
        case .name(let n): scope.variables[n] = v
        case .tuple(let names):
            let items = try iterate(v)
            guard items.count == names.count else {
                throw EvalError(items.count > names.count ? "too many values to unpack (expected \(names.count))"
                                : "not enough values to unpack (expected \(names.count), got \(items.count))")
            }
            for (n, item) in zip(names, items) { scope.variables[n] = item }
        case .attribute(let object, let attr):
            guard case .namespace(let ns) = scope.lookup(object) ?? .undefined("") else {
                throw EvalError("cannot assign attribute on non-namespace object")
            }
            ns.attributes[attr] = v
        }
    }

    private func loop(_ target: Target, _ all: [Value], filter: Expr?, body: [Stmt], otherwise: [Stmt], recursive: Bool,
                      scope: Scope, at p: Position) throws {
        var items = all
        if let filter {
            items = try all.filter { item in
                let s = Scope(parent: scope)
                try located(p) { try assign(target, item, s) }
                return try eval(filter, s).truthy
            }
        }
        if items.isEmpty {
            _ = try run(otherwise, scope)
            return
        }
        let recurse: ((Value) throws -> Value)? = recursive ? { [unowned self] children in
            self.depth += 1
            defer { self.depth -= 1 }
            guard self.depth <= self.limits.maxDepth else {
                throw EvalError("recursion deeper than \(self.limits.maxDepth) levels", kind: .limit)
            }
            let nested = try self.iterate(children)
            return .string(try self.capture {
                try self.loop(target, nested, filter: filter, body: body, otherwise: [], recursive: true, scope: scope, at: p)
            })
        } : nil
        let n = items.count
        for (i, item) in items.enumerated() {
            try step()
            let s = Scope(parent: scope)
            try located(p) { try assign(target, item, s) }
            var info = Dict()
            info["index"] = .int(i + 1)
            info["index0"] = .int(i)
            info["revindex"] = .int(n - i)
            info["revindex0"] = .int(n - i - 1)
            info["first"] = .bool(i == 0)
            info["last"] = .bool(i == n - 1)
            info["length"] = .int(n)
            info["depth"] = .int(depth + 1)
            info["depth0"] = .int(depth)
            if i > 0 { info["previtem"] = items[i - 1] }
            if i + 1 < n { info["nextitem"] = items[i + 1] }
            info["cycle"] = .loopCall(LoopInfo(index0: i, isCycle: true, recurse: nil))
            if let recurse { info["__call__"] = .loopCall(LoopInfo(index0: i, isCycle: false, recurse: recurse)) }
            s.variables["loop"] = .dict(info)
            let flow = try run(body, s)
            if flow == .breakLoop { break }
        }
    }

    /// The elements a `for` visits: list items, dict keys, string characters; undefined is empty.
    func iterate(_ v: Value) throws -> [Value] {
        switch v.plain {
        case .undefined: return []
        case .list(let items, _), .generator(let items): return items
        case .dict(let d): return d.keys
        case .string(let s): return s.unicodeScalars.map { .string(String($0)) }
        case .namespace: throw EvalError("'Namespace' object is not iterable")
        default: throw EvalError("'\(v.typeName)' object is not iterable")
        }
    }

    func evalKeywords(_ kwargs: [(String, Expr)], _ scope: Scope) throws -> [(String, Value)] {
        try kwargs.map { ($0.0, try eval($0.1, scope)) }
    }
}
