import ChatFormat
import CompletionsFormat
import Foundation
import InstructionFormat
import LlamaModel
import QAFormat
import TestSupport
import Testing
import TextFormat
import Tokenizer
import Training

let formats: [any DatasetFormat] = [ChatFormat(), CompletionsFormat(), QAFormat(), InstructionFormat(), TextFormat()]

func tinyTokenizer() throws -> Tokenizer { try TinyModel.model().tokenizer }

func settings(_ tokenizer: Tokenizer, template: Bool = true, maxSeqLen: Int = 4096, truncate: TruncationSide = .right,
              lossOn: LossOn = .completion) -> DatasetLoader.Settings {
    DatasetLoader.Settings(render: RenderOptions(chatTemplate: template ? tokenizer.chatTemplate : nil, eosText: "<|im_end|>"),
                           maxSeqLen: maxSeqLen, truncate: truncate, lossOn: lossOn)
}

func load(_ text: String, template: Bool = true, maxSeqLen: Int = 4096, truncate: TruncationSide = .right,
          lossOn: LossOn = .completion) throws -> LoadedDataset {
    let tokenizer = try tinyTokenizer()
    return try DatasetLoader(formats: formats).load(Data(text.utf8), name: "data.jsonl", tokenizer: tokenizer,
                                                    settings: settings(tokenizer, template: template, maxSeqLen: maxSeqLen,
                                                                       truncate: truncate, lossOn: lossOn))
}

/// The trained text of an example, decoded.
func trainedText(_ e: TokenizedExample, _ tokenizer: Tokenizer) -> String {
    tokenizer.decode(zip(e.tokens, e.trained).filter(\.1).map(\.0))
}

func expectError(_ text: String, contains parts: [String], sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        _ = try load(text)
        Issue.record("expected an error for \(text.prefix(60))", sourceLocation: sourceLocation)
    } catch let error as DatasetError {
        for p in parts {
            #expect(error.description.contains(p), "'\(error.description)' lacks '\(p)'", sourceLocation: sourceLocation)
        }
    } catch {
        Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
    }
}

@Suite("Dataset formats and the loader")
struct DatasetTests {
    @Test("chat: the loss is on assistant contents with their end of turn, under the model's template")
    func chat() throws {
        let tok = try tinyTokenizer()
        let d = try load(#"{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}, {"role": "user", "content": "again"}, {"role": "assistant", "content": "no", "weight": 0}]}"#)
        #expect(d.format == "chat" && d.examples.count == 1)
        let e = d.examples[0]
        #expect(tok.decode(e.tokens) == "<|im_start|>system\nYou are tiny.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nhello<|im_end|>\n<|im_start|>user\nagain<|im_end|>\n<|im_start|>assistant\nno<|im_end|>\n")
        #expect(trainedText(e, tok) == "hello<|im_end|>\n")
        // Position t predicts token t + 1 where that token is trained.
        let seq = e.sequence
        for t in 0..<e.tokens.count - 1 { #expect(seq.targets[t] == (e.trained[t + 1] ? e.tokens[t + 1] : -1)) }
        #expect(seq.targets.last == -1)
    }

    @Test("completions, qa and instruction wrap prompt and answer in a user and an assistant turn; raw without a template")
    func promptFormats() throws {
        let tok = try tinyTokenizer()
        for line in [#"{"prompt": "2+2?", "completion": "4"}"#, #"{"question": "2+2?", "answer": "4"}"#,
                     #"{"instruction": "2+2?", "output": "4"}"#] {
            let e = try load(line).examples[0]
            #expect(tok.decode(e.tokens).hasSuffix("<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n"))
            #expect(trainedText(e, tok) == "4<|im_end|>\n")
        }
        let raw = try load(#"{"prompt": "Q: 2+2? A:", "completion": " 4"}"#, template: false).examples[0]
        #expect(tok.decode(raw.tokens) == "Q: 2+2? A: 4<|im_end|>")
        #expect(trainedText(raw, tok) == " 4<|im_end|>")
        let alpaca = try load(#"{"instruction": "Add.", "input": "2, 2", "output": "4"}"#, template: false).examples[0]
        #expect(tok.decode(alpaca.tokens).contains("### Instruction:\nAdd.\n\n### Input:\n2, 2\n\n### Response:\n4"))
        let noInput = try load(#"{"instruction": "Add.", "input": "", "output": "4"}"#, template: false).examples[0]
        #expect(!tok.decode(noInput.tokens).contains("### Input:"))
    }

    @Test("text trains on every token; --loss-on all trains prompts too")
    func textAndLossOnAll() throws {
        let tok = try tinyTokenizer()
        let e = try load(#"{"text": "abc"}"#).examples[0]
        #expect(tok.decode(e.tokens) == "abc<|im_end|>" && e.trained.allSatisfy { $0 })
        let all = try load(#"{"prompt": "p", "completion": "c"}"#, lossOn: .all).examples[0]
        #expect(all.trained.allSatisfy { $0 })
    }

    @Test("truncation keeps the start or the end and is counted; fully masked examples are skipped")
    func truncation() throws {
        let text = #"{"prompt": "abcdefghij", "completion": "XYZ"}"#
        let right = try load(text, template: false, maxSeqLen: 12)
        #expect(right.truncated == 1 && right.examples[0].tokens.count == 12)
        let left = try load(text, template: false, maxSeqLen: 6, truncate: .left)
        #expect(left.truncated == 1 && left.examples[0].tokens.count == 6 && left.examples[0].trained.last == true)
        let mixed = try load(text + "\n" + #"{"prompt": "a", "completion": "b"}"#, template: false, maxSeqLen: 8)
        #expect(mixed.dropped == 1 && mixed.examples.count == 1)
        #expect(throws: DatasetError.self) { try load(text, template: false, maxSeqLen: 5) }
    }

    @Test("bad input names the line, the field and what was expected")
    func errors() {
        expectError("", contains: ["empty"])
        expectError(#"[{"text": "a"}]"#, contains: ["data.jsonl:1", "JSON array", "JSON Lines"])
        expectError("{\"text\": \"a\"}\n{oops}", contains: ["data.jsonl:2", "not valid JSON"])
        expectError("{\"text\": \"a\"}\n[1]", contains: ["data.jsonl:2", "expected a JSON object, got an array"])
        expectError(#"{"foo": 1}"#, contains: ["data.jsonl:1", "{foo}", "chat (messages"])
        expectError("{\"text\": \"a\"}\n{\"prompt\": \"p\", \"completion\": \"c\"}", contains: ["data.jsonl:2", "text data (detected at line 1)"])
        expectError(#"{"prompt": 3, "completion": "c"}"#, contains: ["field 'prompt'", "expected a string, got a number"])
        expectError(#"{"messages": [{"role": "bot", "content": "x"}]}"#, contains: ["field 'messages[0].role'", "unknown role 'bot'"])
        expectError(#"{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": " "}]}"#,
                    contains: ["messages[1].content", "empty assistant turn"])
        expectError(#"{"messages": [{"role": "user", "content": "x"}]}"#, contains: ["no assistant message"])
        expectError(#"{"messages": [{"role": "user"}, {"role": "assistant", "content": "y"}]}"#, contains: ["messages[0].content", "missing"])
        expectError(#"{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y", "weight": 0.5}]}"#,
                    contains: ["messages[1].weight", "0 or 1"])
        expectError(#"{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y", "weight": 0}]}"#,
                    contains: ["fully masked"])
        expectError(String(repeating: "{bad}\n", count: 30), contains: ["data.jsonl:20", "and 10 more bad lines"])
    }

    @Test("blank lines are skipped and a JSON line count is reported")
    func blankLines() throws {
        let d = try load("\n{\"text\": \"a\"}\n\n{\"text\": \"b\"}\n")
        #expect(d.rows == 2 && d.examples.map(\.line) == [2, 4])
    }
}
