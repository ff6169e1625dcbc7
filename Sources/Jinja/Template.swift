import Foundation

/// A compiled Jinja template, rendered as Python jinja2 renders it in the environment Hugging
/// Face transformers uses for chat templates: `trim_blocks` and `lstrip_blocks` on, the
/// `loopcontrols` extension, a `{% generation %}` block that renders its body, the globals
/// `raise_exception` and `strftime_now`, `tojson` as `json.dumps(ensure_ascii=False)`, no
/// autoescaping, and the immutable sandbox (lists and dicts cannot be mutated).
public struct Template: Sendable {
    /// The template source.
    public let source: String
    private let body: Body

    /// Statements are immutable after parsing; the box only makes them storable in a Sendable value.
    private final class Body: @unchecked Sendable {
        let statements: [Stmt]
        init(_ statements: [Stmt]) { self.statements = statements }
    }

    /// Parses `source`.
    /// - Throws: `JinjaError` of kind `.syntax` with the line and column of the problem.
    public init(_ source: String) throws(JinjaError) {
        self.source = source
        var lexer = Lexer(source)
        let tokens = try lexer.tokenize()
        var parser = Parser(tokens: tokens)
        body = Body(try parser.parseTemplate())
    }

    /// Renders with `context` as the template's variables.
    /// - Parameters:
    ///   - now: the time `strftime_now` formats, in `timeZone` (injectable for tests).
    /// - Throws: `JinjaError` (`.runtime`, `.raised` for `raise_exception`, `.limit`).
    public func render(_ context: [String: JinjaValue], limits: RenderLimits = RenderLimits(),
                       now: Date = Date(), timeZone: TimeZone = .current) throws(JinjaError) -> String {
        let interpreter = Interpreter(limits: limits, now: now, timeZone: timeZone)
        let scope = Scope(parent: nil)
        for (k, v) in context { scope.variables[k] = Value(v) }
        do {
            _ = try interpreter.run(body.statements, Scope(parent: scope))
        } catch let e as JinjaError {
            throw e
        } catch let e as EvalError {
            throw JinjaError(e.kind, e.message, line: 0, column: 0)
        } catch {
            throw JinjaError(.runtime, "\(error)", line: 0, column: 0)
        }
        return interpreter.output
    }
}
