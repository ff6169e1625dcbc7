/// Builds statements and expressions from tokens, with jinja2's precedence:
/// conditional < or < and < not < comparison < + - < ~ < * / // % < ** < unary - + <
/// filters, tests and postfix (`.attr`, `[item]`, `(call)`).
struct Parser {
    private let tokens: [Token]
    private var k = 0
    private var depth = 0
    private static let maxDepth = 200

    init(tokens: [Token]) { self.tokens = tokens }

    private var current: Token { tokens[k] }
    private var position: Position { current.position }

    private func error(_ message: String, at p: Position? = nil) -> JinjaError {
        let p = p ?? position
        return JinjaError(.syntax, message, line: p.line, column: p.column)
    }

    private func describe(_ t: Token.Kind) -> String {
        switch t {
        case .text: "template text"
        case .blockBegin: "'{%'"
        case .blockEnd: "'%}'"
        case .variableBegin: "'{{'"
        case .variableEnd: "'}}'"
        case .name(let n): "'\(n)'"
        case .string: "a string"
        case .int, .float: "a number"
        case .op(let o): "'\(o)'"
        case .end: "end of template"
        }
    }

    /// The current token, moving past it (never past the final `.end`).
    private mutating func advance() -> Token {
        let t = tokens[k]
        if k < tokens.count - 1 { k += 1 }
        return t
    }

    private func isOp(_ o: String) -> Bool { current.kind == .op(o) }
    private func isName(_ n: String) -> Bool { current.kind == .name(n) }

    private mutating func expectOp(_ o: String) throws(JinjaError) {
        guard isOp(o) else { throw error("expected '\(o)', got \(describe(current.kind))") }
        k += 1
    }

    private mutating func expectName() throws(JinjaError) -> String {
        guard case .name(let n) = current.kind else { throw error("expected a name, got \(describe(current.kind))") }
        k += 1
        return n
    }

    private mutating func expectBlockEnd() throws(JinjaError) {
        guard current.kind == .blockEnd else { throw error("expected '%}', got \(describe(current.kind))") }
        k += 1
    }

    // MARK: statements

    mutating func parseTemplate() throws(JinjaError) -> [Stmt] {
        let (body, end) = try statements(until: [])
        if let end { throw error("unexpected '\(end)': no open block to close") }
        return body
    }

    /// Statements up to a `{% name %}` in `ends` (consumed up to the name) or the end of input.
    private mutating func statements(until ends: Set<String>, opener: (String, Position)? = nil) throws(JinjaError) -> ([Stmt], String?) {
        var body: [Stmt] = []
        while true {
            let t = advance()
            switch t.kind {
            case .text(let s): body.append(.text(s))
            case .variableBegin:
                let e = try expression()
                guard current.kind == .variableEnd else { throw error("expected '}}', got \(describe(current.kind))") }
                k += 1
                body.append(.output(e))
            case .blockBegin:
                guard case .name(let keyword) = current.kind else { throw error("expected a statement name after '{%'") }
                if ends.contains(keyword) {
                    k += 1
                    return (body, keyword)
                }
                if ["endif", "endfor", "endmacro", "endset", "endfilter", "endgeneration", "elif", "else"].contains(keyword) {
                    let expected = ends.sorted().map { "'\($0)'" }.joined(separator: " or ")
                    throw error("unexpected '\(keyword)'" + (expected.isEmpty ? "" : ", expected \(expected)"))
                }
                body.append(try statement(keyword))
            case .end:
                if let opener {
                    let expected = ends.sorted().map { "'\($0)'" }.joined(separator: " or ")
                    throw error("unexpected end of template: the '\(opener.0)' block opened at line \(opener.1.line), column \(opener.1.column) needs \(expected)", at: t.position)
                }
                return (body, nil)
            default:
                throw error("unexpected \(describe(t.kind))", at: t.position)
            }
        }
    }

    private mutating func statement(_ keyword: String) throws(JinjaError) -> Stmt {
        let start = tokens[k - 1].position  // the '{%'

        k += 1
        depth += 1
        defer { depth -= 1 }
        guard depth < Self.maxDepth else { throw error("blocks nested too deeply") }
        switch keyword {
        case "if":
            var branches: [(Expr, [Stmt])] = []
            var condition = try expression()
            try expectBlockEnd()
            while true {
                let (body, end) = try statements(until: ["elif", "else", "endif"], opener: ("if", start))
                branches.append((condition, body))
                if end == "elif" {
                    condition = try expression()
                    try expectBlockEnd()
                    continue
                }
                var otherwise: [Stmt] = []
                if end == "else" {
                    try expectBlockEnd()
                    otherwise = try statements(until: ["endif"], opener: ("if", start)).0
                }
                try expectBlockEnd()
                return .ifChain(branches, otherwise: otherwise)
            }
        case "for":
            let target = try assignTarget(allowAttribute: false)
            guard isName("in") else { throw error("expected 'in' after the loop variable, got \(describe(current.kind))") }
            k += 1
            let iterable = try expression(withConditional: false)
            var filter: Expr?
            if isName("if") { k += 1; filter = try expression() }
            var recursive = false
            if isName("recursive") { k += 1; recursive = true }
            try expectBlockEnd()
            let (body, end) = try statements(until: ["else", "endfor"], opener: ("for", start))
            var otherwise: [Stmt] = []
            if end == "else" {
                try expectBlockEnd()
                otherwise = try statements(until: ["endfor"], opener: ("for", start)).0
            }
            try expectBlockEnd()
            return .forLoop(target, iterable, filter: filter, body: body, otherwise: otherwise, recursive: recursive, start)
        case "set":
            let target = try assignTarget(allowAttribute: true)
            if isOp("=") {
                k += 1
                let value = try expression()
                try expectBlockEnd()
                return .set(target, value, start)
            }
            let filters = try filterChain()
            try expectBlockEnd()
            let body = try statements(until: ["endset"], opener: ("set", start)).0
            try expectBlockEnd()
            return .setBlock(target, filters: filters, body: body, start)
        case "macro":
            let name = try expectName()
            try expectOp("(")
            var params: [(name: String, defaultValue: Expr?)] = []
            while !isOp(")") {
                if !params.isEmpty { try expectOp(",") }
                if isOp(")") { break }
                let p = try expectName()
                var d: Expr?
                if isOp("=") { k += 1; d = try expression() }
                params.append((p, d))
            }
            k += 1
            try expectBlockEnd()
            let body = try statements(until: ["endmacro"], opener: ("macro", start)).0
            if case .name = current.kind { k += 1 }
            try expectBlockEnd()
            return .macro(name, params, body: body)
        case "filter":
            let filters = try filterChain(leadingPipe: false)
            try expectBlockEnd()
            let body = try statements(until: ["endfilter"], opener: ("filter", start)).0
            try expectBlockEnd()
            return .filterBlock(filters, body: body)
        case "generation":
            try expectBlockEnd()
            let body = try statements(until: ["endgeneration"], opener: ("generation", start)).0
            try expectBlockEnd()
            return .generation(body)
        case "break", "continue":
            try expectBlockEnd()
            return keyword == "break" ? .loopBreak : .loopContinue
        default:
            throw error("unknown statement '\(keyword)'", at: start)
        }
    }

    private mutating func assignTarget(allowAttribute: Bool) throws(JinjaError) -> Target {
        let first = try expectName()
        if allowAttribute, isOp(".") {
            k += 1
            return .attribute(first, try expectName())
        }
        guard isOp(",") else { return .name(first) }
        var names = [first]
        while isOp(",") {
            k += 1
            names.append(try expectName())
        }
        return .tuple(names)
    }

    /// `| name(args) | name ...` (the first pipe optional for `{% filter %}`).
    private mutating func filterChain(leadingPipe: Bool = true) throws(JinjaError) -> [(String, [Expr], [(String, Expr)], Position)] {
        var chain: [(String, [Expr], [(String, Expr)], Position)] = []
        var first = true
        while isOp("|") || (!leadingPipe && first) {
            if isOp("|") { k += 1 }
            first = false
            let p = position
            let name = try expectName()
            var args: [Expr] = [], kwargs: [(String, Expr)] = []
            if isOp("(") { (args, kwargs) = try callArguments() }
            chain.append((name, args, kwargs, p))
        }
        return chain
    }

    // MARK: expressions

    mutating func expression(withConditional: Bool = true) throws(JinjaError) -> Expr {
        depth += 1
        defer { depth -= 1 }
        guard depth < Self.maxDepth else { throw error("expression nested too deeply") }
        let start = position
        var e = try or()
        if withConditional {
            while isName("if") {
                k += 1
                let condition = try or()
                var otherwise: Expr?
                if isName("else") { k += 1; otherwise = try expression() }
                e = Expr(kind: .conditional(condition, then: e, otherwise: otherwise), position: start)
            }
        }
        return e
    }

    private mutating func or() throws(JinjaError) -> Expr {
        var e = try and()
        while isName("or") { let p = advance().position; e = Expr(kind: .or(e, try and()), position: p) }
        return e
    }

    private mutating func and() throws(JinjaError) -> Expr {
        var e = try not()
        while isName("and") { let p = advance().position; e = Expr(kind: .and(e, try not()), position: p) }
        return e
    }

    private mutating func not() throws(JinjaError) -> Expr {
        if isName("not") {
            let p = advance().position
            return Expr(kind: .not(try not()), position: p)
        }
        return try compare()
    }

    private mutating func compare() throws(JinjaError) -> Expr {
        let start = position
        let e = try math1()
        var ops: [(String, Expr)] = []
        while true {
            if case .op(let o) = current.kind, ["==", "!=", "<", "<=", ">", ">="].contains(o) {
                k += 1
                ops.append((o, try math1()))
            } else if isName("in") {
                k += 1
                ops.append(("in", try math1()))
            } else if isName("not"), k + 1 < tokens.count, tokens[k + 1].kind == .name("in") {
                k += 2
                ops.append(("not in", try math1()))
            } else {
                break
            }
        }
        return ops.isEmpty ? e : Expr(kind: .compare(e, ops), position: start)
    }

    private mutating func binaryLevel(_ ops: [String], _ next: (inout Parser) throws(JinjaError) -> Expr) throws(JinjaError) -> Expr {
        var e = try next(&self)
        while case .op(let o) = current.kind, ops.contains(o) {
            let p = advance().position
            e = Expr(kind: .binary(o, e, try next(&self)), position: p)
        }
        return e
    }

    private mutating func math1() throws(JinjaError) -> Expr { try binaryLevel(["+", "-"]) { p throws(JinjaError) in try p.concat() } }
    private mutating func concat() throws(JinjaError) -> Expr { try binaryLevel(["~"]) { p throws(JinjaError) in try p.math2() } }
    private mutating func math2() throws(JinjaError) -> Expr {
        try binaryLevel(["*", "/", "//", "%"]) { p throws(JinjaError) in try p.power() }
    }
    private mutating func power() throws(JinjaError) -> Expr { try binaryLevel(["**"]) { p throws(JinjaError) in try p.unary() } }

    private mutating func unary(withFilter: Bool = true) throws(JinjaError) -> Expr {
        let start = position
        var e: Expr
        if isOp("-") || isOp("+") {
            let o = advance()
            guard case .op(let op) = o.kind else { throw error("expected an operator") }
            e = Expr(kind: .unary(op, try unary(withFilter: false)), position: start)
        } else {
            e = try primary()
        }
        e = try postfix(e)
        if withFilter { e = try filterAndTests(e) }
        return e
    }

    private mutating func primary() throws(JinjaError) -> Expr {
        let t = advance()
        let p = t.position
        switch t.kind {
        case .name(let n):
            switch n {
            case "true", "True": return Expr(kind: .literal(.bool(true)), position: p)
            case "false", "False": return Expr(kind: .literal(.bool(false)), position: p)
            case "none", "None": return Expr(kind: .literal(.none), position: p)
            default: return Expr(kind: .name(n), position: p)
            }
        case .string(var s):
            while case .string(let more) = current.kind { s += more; k += 1 }
            return Expr(kind: .literal(.string(s)), position: p)
        case .int(let v): return Expr(kind: .literal(.int(v)), position: p)
        case .float(let v): return Expr(kind: .literal(.double(v)), position: p)
        case .op("("):
            if isOp(")") { k += 1; return Expr(kind: .tuple([]), position: p) }
            let first = try expression()
            if isOp(")") { k += 1; return first }
            var items = [first]
            while isOp(",") {
                k += 1
                if isOp(")") { break }
                items.append(try expression())
            }
            try expectOp(")")
            return Expr(kind: .tuple(items), position: p)
        case .op("["):
            var items: [Expr] = []
            while !isOp("]") {
                if !items.isEmpty { try expectOp(",") }
                if isOp("]") { break }
                items.append(try expression())
            }
            k += 1
            return Expr(kind: .list(items), position: p)
        case .op("{"):
            var pairs: [(Expr, Expr)] = []
            while !isOp("}") {
                if !pairs.isEmpty { try expectOp(",") }
                if isOp("}") { break }
                let key = try expression()
                try expectOp(":")
                pairs.append((key, try expression()))
            }
            k += 1
            return Expr(kind: .dict(pairs), position: p)
        default:
            throw error("expected an expression, got \(describe(t.kind))", at: p)
        }
    }

    private mutating func postfix(_ base: Expr) throws(JinjaError) -> Expr {
        var e = base
        while true {
            let p = position
            if isOp(".") {
                k += 1
                switch advance().kind {
                case .name(let n): e = Expr(kind: .attribute(e, n), position: p)
                case .int(let i): e = Expr(kind: .item(e, Expr(kind: .literal(.int(i)), position: p)), position: p)
                default: throw error("expected an attribute name after '.'", at: p)
                }
            } else if isOp("[") {
                k += 1
                e = try subscriptExpr(e, p)
            } else if isOp("(") {
                let (args, kwargs) = try callArguments()
                e = Expr(kind: .call(e, args, kwargs), position: e.position)  // a call is located at its callee
            } else {
                return e
            }
        }
    }

    private mutating func subscriptExpr(_ base: Expr, _ p: Position) throws(JinjaError) -> Expr {
        var parts: [Expr?] = [nil]
        var colons = 0
        while !isOp("]") {
            if isOp(":") {
                k += 1
                colons += 1
                guard colons <= 2 else { throw error("too many ':' in subscript") }
                parts.append(nil)
            } else {
                guard parts[parts.count - 1] == nil else { throw error("expected ':' or ']', got \(describe(current.kind))") }
                parts[parts.count - 1] = try expression()
            }
        }
        k += 1
        if colons == 0 {
            guard let index = parts[0] else { throw error("expected a subscript", at: p) }
            return Expr(kind: .item(base, index), position: p)
        }
        while parts.count < 3 { parts.append(nil) }
        return Expr(kind: .slice(base, parts[0], parts[1], parts[2]), position: p)
    }

    private mutating func callArguments() throws(JinjaError) -> ([Expr], [(String, Expr)]) {
        try expectOp("(")
        var args: [Expr] = [], kwargs: [(String, Expr)] = []
        while !isOp(")") {
            if !(args.isEmpty && kwargs.isEmpty) { try expectOp(",") }
            if isOp(")") { break }
            if case .name(let n) = current.kind, k + 1 < tokens.count, tokens[k + 1].kind == .op("=") {
                k += 2
                kwargs.append((n, try expression()))
            } else {
                guard kwargs.isEmpty else { throw error("positional argument after a keyword argument") }
                args.append(try expression())
            }
        }
        k += 1
        return (args, kwargs)
    }

    private mutating func filterAndTests(_ base: Expr) throws(JinjaError) -> Expr {
        var e = base
        while true {
            let p = position
            if isOp("|") {
                k += 1
                let name = try expectName()
                // Like jinja2 in conditional code, an unknown filter fails only when it runs.
                var args: [Expr] = [], kwargs: [(String, Expr)] = []
                if isOp("(") { (args, kwargs) = try callArguments() }
                e = Expr(kind: .filter(e, name, args, kwargs), position: p)
                e = try postfix(e)
            } else if isName("is") {
                k += 1
                var negated = false
                if isName("not") { k += 1; negated = true }
                let np = position
                var name = try expectName()
                if name == "none" || name == "true" || name == "false" { name = name.lowercased() }
                guard Tests.names.contains(name) else { throw error("no test named '\(name)'", at: np) }
                var args: [Expr] = []
                if isOp("(") {
                    args = try callArguments().0
                } else if startsTestArgument() {
                    args = [try postfix(try primary())]
                }
                e = Expr(kind: .test(e, name, args, negated: negated), position: p)
            } else {
                return e
            }
        }
    }

    private func startsTestArgument() -> Bool {
        switch current.kind {
        case .name(let n): return !["else", "or", "and", "if", "in", "not", "is"].contains(n)
        case .string, .int, .float: return true
        case .op(let o): return o == "[" || o == "{"
        default: return false
        }
    }
}
