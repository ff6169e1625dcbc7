/// An expression node with its source position.
struct Expr {
    indirect enum Kind {
        case literal(Value)
        case name(String)
        case list([Expr])
        case tuple([Expr])
        case dict([(Expr, Expr)])
        case attribute(Expr, String)
        case item(Expr, Expr)
        case slice(Expr, Expr?, Expr?, Expr?)
        case call(Expr, [Expr], [(String, Expr)])
        case filter(Expr, String, [Expr], [(String, Expr)])
        case test(Expr, String, [Expr], negated: Bool)
        case unary(String, Expr)
        case binary(String, Expr, Expr)
        case and(Expr, Expr)
        case or(Expr, Expr)
        case not(Expr)
        case compare(Expr, [(String, Expr)])
        case conditional(Expr, then: Expr, otherwise: Expr?)
    }
    var kind: Kind
    var position: Position
}

/// Where `for` and `set` store values.
enum Target {
    case name(String)
    case tuple([String])
    /// `ns.attr`: a namespace attribute.
    case attribute(String, String)
}

/// A statement node.
indirect enum Stmt {
    case text(String)
    case output(Expr)
    case ifChain([(Expr, [Stmt])], otherwise: [Stmt])
    case forLoop(Target, Expr, filter: Expr?, body: [Stmt], otherwise: [Stmt], recursive: Bool, Position)
    case set(Target, Expr, Position)
    case setBlock(Target, filters: [(String, [Expr], [(String, Expr)], Position)], body: [Stmt], Position)
    case macro(String, [(name: String, defaultValue: Expr?)], body: [Stmt])
    case filterBlock([(String, [Expr], [(String, Expr)], Position)], body: [Stmt])
    case generation([Stmt])
    case loopBreak
    case loopContinue
}
