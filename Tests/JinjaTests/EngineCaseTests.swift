import Foundation
import Jinja
import Testing

/// Each engine feature against Python jinja2's output for the same template and context
/// (Tests/Fixtures/templates/engine_cases.json, written by engine_cases.py).
struct EngineCaseTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var source: String
        var text: String?
        var error: String?
        var errorType: String?
        var testDescription: String { source }
    }

    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/templates/engine_cases.json")

    static func load() throws -> (context: [String: JinjaValue], cases: [Case]) {
        let root = try JinjaValue(json: String(contentsOf: fixture, encoding: .utf8))
        guard case .object(let ctx)? = root["context"], case .array(let items)? = root["cases"] else {
            throw JinjaError(.syntax, "engine_cases.json: expected context and cases", line: 0, column: 0)
        }
        var context: [String: JinjaValue] = [:]
        for (k, v) in ctx { context[k] = v }
        let cases = items.map { item in
            func string(_ key: String) -> String? { if case .string(let s)? = item[key] { s } else { nil } }
            return Case(source: string("source") ?? "", text: string("text"), error: string("error"), errorType: string("type"))
        }
        return (context, cases)
    }

    static let cases: [Case] = (try? load().cases) ?? []

    @Test func fixtureLoads() throws {
        #expect(try Self.load().cases.count >= 30)
    }

    @Test(arguments: cases) func matchesJinja2(_ c: Case) throws {
        let context = try Self.load().context
        let now = Date(timeIntervalSince1970: 1_721_995_200)  // 2024-07-26 12:00:00 UTC, as in the script
        let result = Result { () throws(JinjaError) -> String in
            try Template(c.source).render(context, now: now, timeZone: TimeZone(identifier: "UTC")!)
        }
        switch result {
        case .success(let text):
            #expect(text == c.text, "jinja2 \(c.text.map { "rendered \($0.debugDescription)" } ?? "raised \(c.error ?? "")")")
        case .failure(let e):
            #expect(c.text == nil, "jinja2 rendered \(c.text?.debugDescription ?? ""), the engine threw \(e)")
            if c.errorType == "TemplateError" {
                #expect(e.kind == .raised && e.message == c.error)
            } else {
                #expect(e.message == c.error)
            }
        }
    }
}
