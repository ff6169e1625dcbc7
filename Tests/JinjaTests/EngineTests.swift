import Foundation
import Jinja
import Testing

/// Error positions, limits, value conversion and formatting that need no reference renders.
struct EngineTests {
    func render(_ source: String, _ context: [String: JinjaValue] = [:], limits: RenderLimits = RenderLimits()) throws(JinjaError) -> String {
        try Template(source).render(context, limits: limits)
    }

    func error(_ source: String, _ context: [String: JinjaValue] = [:], limits: RenderLimits = RenderLimits()) -> JinjaError? {
        do { _ = try render(source, context, limits: limits); return nil } catch { return error }
    }

    @Test func syntaxErrorsNameLineColumnAndExpectation() throws {
        let unclosed = try #require(error("line one\n{% if x %}\nyes"))
        #expect(unclosed.kind == .syntax)
        #expect(unclosed.message.contains("'endif'"))
        #expect(unclosed.message.contains("line 2, column 1"))

        let badToken = try #require(error("ab\n  {{ 1 + }}"))
        #expect(badToken.kind == .syntax && badToken.line == 2 && badToken.column == 10)
        #expect(badToken.message == "expected an expression, got '}}'")

        let stray = try #require(error("{% endfor %}"))
        #expect(stray.line == 1 && stray.message.hasPrefix("unexpected 'endfor'"))

        let unknown = try #require(error("x\n\n{% frobnicate %}"))
        #expect(unknown.line == 3 && unknown.column == 1 && unknown.message == "unknown statement 'frobnicate'")

        let tag = try #require(error("{{ 'abc' "))
        #expect(tag.message.contains("expected '}}'"))
        #expect(error("{{ 'abc }}")?.message == "unterminated string literal")
        #expect("\(try #require(error("{{ ) }}")))".hasPrefix("template syntax error at line 1, column 4: "))
    }

    @Test func runtimeErrorsNameTheirPosition() throws {
        let e = try #require(error("ok\n  {{ messages[0].content.x.y }}", ["messages": [["content": "hi"]]]))
        #expect(e.kind == .runtime && e.line == 2)
        #expect(e.message == "'str object' has no attribute 'x'")
        let raised = try #require(error("{% if true %}\n{{ raise_exception('no system role') }}{% endif %}"))
        #expect(raised.kind == .raised && raised.message == "no system role" && raised.line == 2)
        #expect(error("{{ 1 / 0 }}")?.message == "division by zero")
        #expect(error("{{ none + 1 }}")?.message == "unsupported operand type(s) for +: 'NoneType' and 'int'")
        #expect(error("{{ 1 | nosuchfilter }}")?.message == "No filter named 'nosuchfilter' found.")
    }

    @Test func endlessLoopHitsTheStepBudget() throws {
        let limits = RenderLimits(maxSteps: 50_000)
        let e = try #require(error("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", limits: limits))
        #expect(e.kind == .limit && e.message.contains("50000 steps"))
    }

    @Test func runawayRecursionHitsTheDepthCap() throws {
        let e = try #require(error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"))
        #expect(e.kind == .limit && e.message.contains("'f'"))
        // Bounded recursion below the cap is fine.
        #expect(try render("{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(5) }}") == "54321")
    }

    @Test func hugeRangeAndOutputAreRefused() throws {
        #expect(error("{{ range(1000000000) | length }}")?.kind == .limit)
        let limits = RenderLimits(maxOutputBytes: 1000)
        let e = try #require(error("{% for i in range(1000) %}{{ 'abcdefgh' }}{% endfor %}", limits: limits))
        #expect(e.kind == .limit && e.message.contains("1000 bytes"))
    }

    @Test func hugeRepetitionsAndWidthsAreRefused() throws {
        #expect(error("{{ 'ab' * 1000000000000 }}")?.kind == .limit)
        #expect(error("{{ [1, 2] * 1000000000000 }}")?.kind == .limit)
        #expect(error("{{ 'x' | tojson(indent=1000000000) }}")?.kind == .limit)
        #expect(error("{{ 1e300 | int }}") == nil)  // Python makes a big int; here the default, never a trap
        #expect(try render("{{ 'ab' * 2 }} {{ 'ab' * -1 }}|") == "abab |")
    }

    @Test func deeplyNestedSourceIsASyntaxErrorNotACrash() throws {
        let nested = String(repeating: "(", count: 5000) + "1" + String(repeating: ")", count: 5000)
        #expect(error("{{ \(nested) }}")?.kind == .syntax)
    }

    @Test func jsonKeepsKeyOrderAndIntegerness() throws {
        let v = try JinjaValue(json: #"{"z": 1, "a": [1.0, 2, "x\u00e9\n"], "n": null, "t": true}"#)
        #expect(try render("{{ v | tojson }}", ["v": v]) == #"{"z": 1, "a": [1.0, 2, "xé\n"], "n": null, "t": true}"#)
        #expect(throws: JinjaError.self) { try JinjaValue(json: "{\"a\": }") }
        #expect(JinjaValue(any: ["b": 2, "a": [true, "s", 1.5] as [Any]] as [String: Any]) == ["a": [true, "s", 1.5], "b": 2])
    }

    @Test(arguments: [
        (1e16, "1e+16"), (1e15, "1000000000000000.0"), (0.0001, "0.0001"), (1e-5, "1e-05"), (-2.5, "-2.5"),
        (123456.789, "123456.789"), (1.0 / 3.0, "0.3333333333333333"), (1.7976931348623157e308, "1.7976931348623157e+308"),
    ])
    func floatsPrintLikePythonRepr(_ value: Double, _ expected: String) throws {
        #expect(try render("{{ v }}", ["v": .double(value)]) == expected)
        #expect(try render("{{ v | tojson }}", ["v": .double(value)]) == expected)
    }

    @Test func trimAndLstripBlocks() throws {
        let source = "<ul>\n  {% for x in xs %}\n    <li>{{ x }}</li>\n  {% endfor %}\n</ul>\n"
        #expect(try render(source, ["xs": [1, 2]]) == "<ul>\n    <li>1</li>\n    <li>2</li>\n</ul>")
    }
}
