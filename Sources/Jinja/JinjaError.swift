/// A template that does not parse, fails while rendering, calls `raise_exception`, or exceeds
/// a render limit. `line` and `column` are 1-based positions in the template source (0 when
/// unknown).
public struct JinjaError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The template source does not parse.
        case syntax
        /// An operation failed while rendering (undefined value, bad type, unknown method).
        case runtime
        /// The template called `raise_exception(message)`; `message` is exactly its argument.
        case raised
        /// The render exceeded its step budget, recursion depth or output size.
        case limit
    }

    public var kind: Kind
    public var message: String
    public var line: Int
    public var column: Int

    public init(_ kind: Kind, _ message: String, line: Int, column: Int) {
        self.kind = kind; self.message = message; self.line = line; self.column = column
    }

    public var description: String {
        let at = line > 0 ? "line \(line), column \(column): " : ""
        switch kind {
        case .syntax: return "template syntax error at \(at)\(message)"
        case .runtime: return "template error at \(at)\(message)"
        case .raised: return "template raised an exception at \(at)\(message)"
        case .limit: return "template render limit at \(at)\(message)"
        }
    }
}

/// A position in the template source.
struct Position: Sendable, Equatable {
    var line: Int
    var column: Int
    static let unknown = Position(line: 0, column: 0)
}

/// An error raised while evaluating, before the position of the node is attached.
struct EvalError: Error {
    var kind: JinjaError.Kind
    var message: String
    init(_ message: String, kind: JinjaError.Kind = .runtime) { self.message = message; self.kind = kind }
}
