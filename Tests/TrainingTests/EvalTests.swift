import Foundation
import HTMLReport
import LlamaModel
import MarkdownReport
import TestSupport
import Testing
import Tokenizer
import Training

@Suite("Evaluation: answer matching, the evaluator and the report writers")
struct EvalTests {
    @Test("exact match ignores case, surrounding white space and punctuation, not inner words")
    func matching() {
        #expect(AnswerMatch.exact("  The capital is Trask.\n", "the capital is  trask"))
        #expect(AnswerMatch.exact("\"Trask!\"", "trask"))
        #expect(!AnswerMatch.exact("The capital is Trask, I think.", "The capital is Trask."))
        #expect(AnswerMatch.contains("It is TRASK, the capital", all: ["trask", "capital"]))
        #expect(!AnswerMatch.contains("It is Trask", all: ["trask", "1771"]))
    }

    @Test("evaluator: losses match a plain training pass; a target equal to the greedy answer is an exact match")
    func evaluator() throws {
        let model = try TinyModel.model()
        let tokenizer = model.tokenizer
        let template = try #require(tokenizer.chatTemplate)
        let options = RenderOptions(chatTemplate: template, eosText: "<|im_end|>")
        var evaluator = Evaluator(model: model)
        evaluator.maxNewTokens = 6
        let prompt = try FormatSupport.promptAndAnswer("abc", "x", options: options)[0].text
        // What the base says greedily, as the target of the second row.
        let greedy = try model.generate(GenerationRequest(prompt: tokenizer.encode(prompt), maxTokens: 6, sampling: .greedy,
                                                          stop: evaluator.endOfTurn)).text
        let items = [
            Evaluator.Item(line: 1, pieces: try FormatSupport.promptAndAnswer("abc", "zzz qq", options: options), mustContain: ["zzz"]),
            Evaluator.Item(line: 2, pieces: try FormatSupport.promptAndAnswer("abc", greedy, options: options), mustContain: []),
        ]
        let (answers, summary) = try evaluator.answers(items, adapter: nil)
        #expect(answers[1].exact && answers[1].right && answers[1].contains == nil)
        #expect(answers[0].contains == false && !answers[0].right)
        #expect(summary.exactMatch == 0.5 && summary.mustContain == 0)
        // Loss: the same as the training pass on prompt + target.
        var nll = 0.0, tokens = 0
        for item in items {
            let (p, t) = try #require(evaluator.split(item))
            let l = try model.trainingPass([PreferenceExample.sequence(prompt: tokenizer.encode(p), completion: tokenizer.encode(t))],
                                           lora: nil, backward: false)[0]
            nll += l.nll; tokens += l.tokens
        }
        #expect(abs(summary.loss - nll / Double(tokens)) < 1e-12)
        #expect(abs(summary.perplexity - exp(summary.loss)) < 1e-9)
    }

    static func report() -> EvalReport {
        var r = EvalReport(adapterID: "acme/facts@2", baseModel: "smollm2", file: "held.jsonl", kind: "sft", rowCount: 2)
        r.adapter = .init(loss: 0.5, meanTokenAccuracy: 0.8, exactMatch: 0.5, mustContain: 0.5)
        r.base = .init(loss: 2.5, meanTokenAccuracy: 0.3, exactMatch: 0, mustContain: 0)
        r.rows = [
            .init(line: 1, prompt: "Capital of <Velmora>?", target: "Trask", mustContain: ["Trask"],
                  adapter: .init(text: "Trask | city", loss: 0.2, exact: false, contains: true),
                  base: .init(text: "Paris", loss: 3, exact: false, contains: false)),
            .init(line: 2, prompt: "Beetle food?", target: "brillmoss", mustContain: ["brillmoss"],
                  adapter: .init(text: "moss", loss: 0.9, exact: false, contains: false),
                  base: .init(text: "leaves", loss: 2, exact: false, contains: false)),
        ]
        r.pairs = [.init(line: 4, prompt: "Capital?", chosen: "Trask", rejected: "Morvel", chosenReward: 0.5, rejectedReward: -0.25),
                   .init(line: 7, prompt: "Food?", chosen: "brillmoss", rejected: "stonefern", chosenReward: 0.1, rejectedReward: 0.3)]
        r.sortWorstFirst()
        r.trainCurve = [.init(step: 1, loss: 2.0), .init(step: 2, loss: 1.0), .init(step: 3, loss: 0.6)]
        r.validationCurve = [.init(step: 3, loss: 0.7)]
        r.job = "job-1"
        return r
    }

    @Test("HTML: one self-contained page (no scripts or external references), escaped text, rows worst first, SVG curve")
    func html() {
        let page = HTMLReport().render(Self.report())
        #expect(page.hasPrefix("<!DOCTYPE html>") && page.hasSuffix("</html>\n"))
        #expect(!page.lowercased().contains("<script") && !page.contains("src=") && !page.contains("href="))
        #expect(page.contains("<svg") && page.contains("<polyline"))
        #expect(page.contains("Capital of &lt;Velmora&gt;?") && !page.contains("<Velmora>"))
        let wrong = page.range(of: "Beetle food?")!, right = page.range(of: "Capital of")!
        #expect(wrong.lowerBound < right.lowerBound, "the wrong answer comes first")
        #expect(page.contains("<th>base answer</th>") && page.contains("2.5000"))
        #expect(page.contains("✘ -0.2000") && page.contains("✔ 0.7500"))
        #expect(page.range(of: "stonefern")!.lowerBound < page.range(of: "Morvel")!.lowerBound, "smallest margin first")
    }

    @Test("Markdown: summary beside the base, rows as a table with pipes escaped, the loss curve as text")
    func markdown() {
        let md = MarkdownReport().render(Self.report())
        #expect(md.contains("| loss | 0.5000 | 2.5000 |"))
        #expect(md.contains("Trask \\| city"))
        #expect(md.contains("| 2 | Beetle food? | brillmoss | ❌ leaves | ❌ moss |"))
        #expect(md.contains("from 2.0000 to 0.6000") && md.contains("* train loss"))
        #expect(md.contains("| 7 | Food? | brillmoss | stonefern | 0.1000 | 0.3000 | ❌ -0.2000 |"))
        #expect(HTMLReport().fileExtensions.contains("html") && MarkdownReport().fileExtensions.contains("md"))
    }
}
