import Foundation
import ImplicitPreferenceFormat
import OpenAIPreferenceFormat
import PromptPreferenceFormat
import TestSupport
import Testing
import Tokenizer
import Training

let preferenceFormats: [any PreferenceFormat] = [OpenAIPreferenceFormat(), PromptPreferenceFormat(), ImplicitPreferenceFormat()]

func loadPreferences(_ text: String, template: Bool = true, maxSeqLen: Int = 4096) throws -> LoadedPreferences {
    let tokenizer = try tinyTokenizer()
    return try PreferenceLoader(formats: preferenceFormats).load(
        Data(text.utf8), name: "prefs.jsonl", tokenizer: tokenizer,
        options: RenderOptions(chatTemplate: template ? tokenizer.chatTemplate : nil, eosText: "<|im_end|>"), maxSeqLen: maxSeqLen)
}

@Suite("Preference formats and their loader")
struct PreferenceFormatTests {
    static let prompt = "<|im_start|>system\nYou are tiny.<|im_end|>\n<|im_start|>user\nHi?<|im_end|>\n<|im_start|>assistant\n"

    func texts(_ line: String, template: Bool = true) throws -> (String, PreferenceText) {
        let tokenizer = try tinyTokenizer()
        let (format, lines) = try PreferenceLoader(formats: preferenceFormats).parse(
            Data(line.utf8), name: "prefs.jsonl",
            options: RenderOptions(chatTemplate: template ? tokenizer.chatTemplate : nil, eosText: "</s>"))
        return (format.name, lines[0].value)
    }

    @Test("every spelling of the same preference renders to the same prompt and completions")
    func spellings() throws {
        let lines = [
            #"{"prompt": "Hi?", "chosen": "Hello.", "rejected": "Go away."}"#,
            #"{"prompt": [{"role": "user", "content": "Hi?"}], "chosen": [{"role": "assistant", "content": "Hello."}], "rejected": [{"role": "assistant", "content": "Go away."}]}"#,
            #"{"chosen": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}], "rejected": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Go away."}]}"#,
            #"{"input": {"messages": [{"role": "user", "content": "Hi?"}]}, "preferred_output": [{"role": "assistant", "content": "Hello."}], "non_preferred_output": [{"role": "assistant", "content": "Go away."}]}"#,
            #"{"input": {"messages": [{"role": "user", "content": "Hi?"}]}, "preferred_completion": "Hello.", "non_preferred_completion": "Go away."}"#,
        ]
        let names = ["preference", "preference", "implicit-preference", "openai-preference", "openai-preference"]
        for (line, name) in zip(lines, names) {
            let (format, text) = try texts(line)
            #expect(format == name)
            #expect(text == PreferenceText(prompt: Self.prompt, chosen: "Hello.<|im_end|>", rejected: "Go away.<|im_end|>"), "\(line)")
        }
        // Without a template: the raw prompt and the EOS text.
        let (_, raw) = try texts(lines[0], template: false)
        #expect(raw == PreferenceText(prompt: "Hi?\n", chosen: "Hello.</s>", rejected: "Go away.</s>"))
    }

    @Test("tokenized pairs: targets on the completion only, prompt shared, truncation keeps the prompt")
    func tokenized() throws {
        let data = try loadPreferences(#"{"prompt": "Hi?", "chosen": "Hello there.", "rejected": "No."}"#)
        let pair = try #require(data.examples.first)
        let tokenizer = try tinyTokenizer()
        #expect(tokenizer.decode(pair.prompt) == Self.prompt)
        let seq = pair.chosenSequence
        #expect(seq.tokens == pair.prompt + pair.chosen)
        #expect(seq.labelCount == pair.chosen.count)
        #expect(Array(seq.targets[(pair.prompt.count - 1)...].dropLast()) == pair.chosen)
        let cut = try loadPreferences(#"{"prompt": "Hi?", "chosen": "Hello there.", "rejected": "No thanks."}"#,
                                      maxSeqLen: pair.prompt.count + 3)
        #expect(cut.truncated == 1 && cut.examples[0].chosen.count == 3 && cut.examples[0].rejected.count == 3)
        let dropped = try? loadPreferences(#"{"prompt": "Hi?", "chosen": "Hello there.", "rejected": "No."}"#,
                                           maxSeqLen: pair.prompt.count)
        #expect(dropped == nil)
    }

    @Test("errors name the line, the field and what was expected",
          arguments: [
            (#"{"prompt": "Hi", "chosen": "Same.", "rejected": "Same."}"#, "prefs.jsonl:2: field 'rejected': is the same as the chosen"),
            (#"{"prompt": "Hi", "chosen": 3, "rejected": "No."}"#, "prefs.jsonl:2: field 'chosen': expected a string or [{role: assistant, content}], got a number"),
            (#"{"prompt": "Hi", "chosen": [{"role": "user", "content": "x"}], "rejected": "No."}"#, "field 'chosen': expected exactly one assistant message"),
            (#"{"prompt": "", "chosen": "Yes.", "rejected": "No."}"#, "prefs.jsonl:2: field 'prompt': is empty"),
            (#"{"chosen": [{"role": "user", "content": "A"}, {"role": "assistant", "content": "x"}], "rejected": [{"role": "user", "content": "B"}, {"role": "assistant", "content": "y"}]}"#, "field 'rejected[0]': differs from chosen[0]"),
            (#"{"chosen": [{"role": "user", "content": "A"}, {"role": "user", "content": "x"}], "rejected": [{"role": "user", "content": "A"}, {"role": "assistant", "content": "y"}]}"#, "field 'chosen[1].role': the last message must be the assistant's answer"),
            (#"{"input": {"messages": [{"role": "user", "content": "A"}], "tools": []}, "preferred_output": "x", "non_preferred_output": "y"}"#, "field 'input.tools': is not supported"),
            (#"{"input": {"messages": [{"role": "user", "content": "A"}]}, "preferred_output": "x", "non_preferred_output": "x"}"#, "field 'non_preferred_output': is the same as the chosen"),
            (#"{"question": "Hi", "answer": "x"}"#, "prefs.jsonl:2: no known format has the keys {answer, question}"),
          ])
    func errors(line: String, message: String) throws {
        // Line 1 is valid preference data of the same kind where one exists.
        let first = line.contains("input") ? #"{"input": {"messages": [{"role": "user", "content": "Q"}]}, "preferred_output": "a", "non_preferred_output": "b"}"#
            : line.contains("\"prompt\"") ? #"{"prompt": "Q", "chosen": "a", "rejected": "b"}"#
            : line.contains("chosen") ? #"{"chosen": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "a"}], "rejected": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "b"}]}"#
            : ""
        do {
            _ = try loadPreferences(first + "\n" + line)
            Issue.record("expected an error for \(line)")
        } catch let error as DatasetError {
            #expect(error.description.contains(message), "\(error.description)")
        }
    }
}
