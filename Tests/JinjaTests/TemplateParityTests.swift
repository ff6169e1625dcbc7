import Foundation
import Jinja
import Testing

/// Renders every chat template of the llama.cpp sources (GRAFT_LLAMA_CPP/models/templates) with
/// each conversation of Tests/Fixtures/templates/conversations.json and compares with Python
/// jinja2's renders, produced by Tests/Fixtures/templates/render_references.py into the file
/// GRAFT_TEMPLATE_RENDERS names.
struct TemplateParityTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/templates")
    /// The date render_references.py gives strftime_now: 2024-07-26 12:00:00.
    static let fixedNow = Date(timeIntervalSince1970: 1_721_995_200)

    struct Reference {
        var template: String
        var conversation: String
        var text: String?
        var error: String?
        var errorType: String?
    }

    static func references() throws -> (templates: URL, references: [Reference])? {
        let env = ProcessInfo.processInfo.environment
        let required = env["GRAFT_REQUIRE_SDIST"] == "1"
        guard let renders = env["GRAFT_TEMPLATE_RENDERS"], let sdist = env["GRAFT_LLAMA_CPP"] else {
            if required { Issue.record("GRAFT_TEMPLATE_RENDERS and GRAFT_LLAMA_CPP must be set when GRAFT_REQUIRE_SDIST=1") }
            return nil
        }
        let text = try String(contentsOfFile: renders, encoding: .utf8)
        var out: [Reference] = []
        for (n, line) in text.split(separator: "\n").enumerated() {
            let v = try JinjaValue(json: String(line))
            guard case .string(let t)? = v["template"], case .string(let c)? = v["conversation"] else {
                Issue.record("\(renders):\(n + 1): expected template and conversation")
                continue
            }
            func string(_ key: String) -> String? { if case .string(let s)? = v[key] { s } else { nil } }
            out.append(Reference(template: t, conversation: c, text: string("text"), error: string("error"), errorType: string("error_type")))
        }
        return (URL(fileURLWithPath: sdist).appendingPathComponent("models/templates"), out)
    }

    /// Template file name -> why it is not expected to match.
    static func unsupported() throws -> [String: String] {
        let v = try JinjaValue(json: String(contentsOf: fixtures.appendingPathComponent("unsupported.json"), encoding: .utf8))
        guard case .object(let entries) = v else { return [:] }
        var out: [String: String] = [:]
        for (k, reason) in entries { if case .string(let r) = reason { out[k] = r } }
        return out
    }

    static func conversations() throws -> [String: JinjaValue] {
        let v = try JinjaValue(json: String(contentsOf: fixtures.appendingPathComponent("conversations.json"), encoding: .utf8))
        guard case .array(let items) = v else { return [:] }
        var out: [String: JinjaValue] = [:]
        for c in items { if case .string(let name)? = c["name"] { out[name] = c } }
        return out
    }

    /// Where two strings first differ, with some context, for failure messages.
    static func firstDifference(_ a: String, _ b: String) -> String {
        let x = Array(a.unicodeScalars), y = Array(b.unicodeScalars)
        var i = 0
        while i < min(x.count, y.count), x[i] == y[i] { i += 1 }
        func around(_ s: [Unicode.Scalar]) -> String {
            String(String.UnicodeScalarView(s[max(0, i - 40)..<min(s.count, i + 40)])).debugDescription
        }
        return "first difference at scalar \(i): swift \(around(x)) vs jinja2 \(around(y))"
    }

    @Test func everyTemplateMatchesJinja2() throws {
        guard let (dir, references) = try Self.references() else { return }
        let unsupported = try Self.unsupported()
        let conversations = try Self.conversations()
        #expect(references.count >= conversations.count * 60, "expected the renders of ~70 templates x \(conversations.count) conversations")
        var passed = Set<String>(), failed = Set<String>()
        for ref in references {
            let source = try String(contentsOf: dir.appendingPathComponent(ref.template), encoding: .utf8)
            let conversation = try #require(conversations[ref.conversation], "unknown conversation \(ref.conversation)")
            var context: [String: JinjaValue] = [
                "messages": conversation["messages"] ?? .array([]),
                "tools": conversation["tools"] ?? .null,
                "documents": .null,
                "add_generation_prompt": conversation["add_generation_prompt"] ?? .bool(false),
                "bos_token": "<s>", "eos_token": "</s>",
            ]
            if case .object(let extra)? = conversation["variables"] {
                for (k, v) in extra { context[k] = v }
            }
            var outcome: Result<String, JinjaError>
            do {
                let template = try Template(source)
                outcome = .success(try template.render(context, now: Self.fixedNow, timeZone: TimeZone(identifier: "UTC")!))
            } catch {
                outcome = .failure(error)
            }
            var problem: String?
            switch (outcome, ref.text) {
            case (.success(let s), let expected?): if s != expected { problem = Self.firstDifference(s, expected) }
            case (.success, nil): problem = "jinja2 raised \(ref.errorType ?? "") '\(ref.error ?? "")' but the render succeeded"
            case (.failure(let e), nil):
                if ref.errorType == "TemplateError", e.kind != .raised || e.message != ref.error {
                    problem = "jinja2 raised '\(ref.error ?? "")' from the template, the engine: \(e)"
                } else if e.message != ref.error {
                    // Both fail; the wording of Python's own exceptions is not part of the contract.
                    print("template parity: \(ref.template) × \(ref.conversation): jinja2 \(ref.errorType ?? ""): \(ref.error ?? ""); engine: \(e)")
                }
            case (.failure(let e), .some): problem = "jinja2 rendered it, the engine failed: \(e)"
            }
            let key = ref.template
            if let problem {
                failed.insert(key)
                if unsupported[key] == nil { Issue.record("\(ref.template) × \(ref.conversation): \(problem)") }
            } else {
                passed.insert(key)
            }
        }
        let fullyPassing = passed.subtracting(failed)
        print("template parity: \(fullyPassing.count) templates match on every conversation, \(failed.count) differ (\(failed.sorted().joined(separator: ", ")))")
        for name in unsupported.keys.sorted() where !failed.contains(name) {
            Issue.record("\(name) is on the unsupported list but now matches jinja2: remove it from unsupported.json")
        }
    }
}
