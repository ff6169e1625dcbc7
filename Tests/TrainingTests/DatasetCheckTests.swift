import Foundation
import Testing
import Tokenizer
import Training

@Suite("graft dataset check's report")
struct DatasetCheckTests {
    func check(_ text: String, maxSeqLen: Int = 4096) throws -> DatasetCheck {
        let tokenizer = try tinyTokenizer()
        return try DatasetCheck.run(Data(text.utf8), name: "d.jsonl", sft: formats, preference: preferenceFormats, tokenizer: tokenizer,
                                    options: RenderOptions(chatTemplate: tokenizer.chatTemplate, eosText: "<|im_end|>"),
                                    maxSeqLen: maxSeqLen)
    }

    @Test("SFT file: format, token statistics, truncation at the limit, duplicates and every bad line")
    func sft() throws {
        let lines = [
            #"{"prompt": "a", "completion": "b"}"#,
            #"{"prompt": "a much longer prompt here", "completion": "and a longer completion"}"#,
            #"{"prompt": "a", "completion": "b"}"#,
            "not json",
            #"{"prompt": "a", "completion": 5}"#,
            #"{"prompt": "c", "completion": "d"}"#,
        ]
        let full = try check(lines.joined(separator: "\n"))
        #expect(full.method == "sft" && full.format == "completions" && full.rows == 4)
        #expect(full.duplicates.count == 1 && full.duplicates[0] == (line: 3, of: 1))
        #expect(full.issues.map(\.line) == [4, 5] && full.issues[1].field == "completion")
        let short = full.tokenCounts.min()!, long = full.tokenCounts.max()!
        #expect(full.totalTokens == full.tokenCounts.reduce(0, +) && long > short)
        #expect(full.medianTokens == Double(short))  // three of the four rows are short
        let cut = try check(lines.joined(separator: "\n"), maxSeqLen: long - 1)
        #expect(cut.truncated == 1 && cut.epochTokens == full.epochTokens - 1)
    }

    @Test("preference file: detected as DPO data; an epoch counts both sequences")
    func preference() throws {
        let c = try check(#"{"prompt": "Hi?", "chosen": "Hello.", "rejected": "Go."}"# + "\n" + #"{"prompt": "Hi?", "chosen": "Same", "rejected": "Same"}"#)
        #expect(c.method == "dpo" && c.format == "preference" && c.rows == 1)
        #expect(c.issues.count == 1 && c.issues[0].line == 2 && c.issues[0].field == "rejected")
        #expect(c.epochTokens > c.totalTokens)
    }
}
