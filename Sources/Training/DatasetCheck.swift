import Foundation
import Tokenizer

/// What `graft dataset check` reports about a file: its format, size, token counts, what the
/// length limit cuts, duplicate rows and every bad line.
public struct DatasetCheck: Sendable {
    /// "sft" or "dpo": the training method the format is for.
    public var method: String
    public var format: String?
    /// Valid rows.
    public var rows: Int
    /// Tokens per row (preference rows: prompt plus the longer completion).
    public var tokenCounts: [Int]
    /// Tokens one epoch processes (preference rows: both sequences), after truncation.
    public var epochTokens: Int
    /// Rows longer than `maxSeqLen`.
    public var truncated: Int
    public var maxSeqLen: Int
    /// (line, the earlier line it repeats).
    public var duplicates: [(line: Int, of: Int)]
    public var issues: [DatasetError.Issue]
    public var moreIssues: Int

    public var minTokens: Int { tokenCounts.min() ?? 0 }
    public var maxTokens: Int { tokenCounts.max() ?? 0 }
    public var totalTokens: Int { tokenCounts.reduce(0, +) }
    public var medianTokens: Double {
        let s = tokenCounts.sorted()
        guard !s.isEmpty else { return 0 }
        return s.count % 2 == 1 ? Double(s[s.count / 2]) : Double(s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    /// Reads `data` as SFT data and as preference data and reports on the reading that
    /// recognises the file (the one with fewer bad lines when both do).
    public static func run(_ data: Data, name: String, sft: [any DatasetFormat], preference: [any PreferenceFormat],
                           tokenizer: Tokenizer, options: RenderOptions, maxSeqLen: Int, maxIssues: Int = 1000) throws -> DatasetCheck {
        let a = try DatasetLoader.scanLines(data, name: name, formats: sft, describe: { $0 }, maxIssues: maxIssues) {
            (f: any DatasetFormat, o: [String: JSON]) throws(FieldError) -> [Piece] in try f.render(o, options: options)
        }
        let b = try DatasetLoader.scanLines(data, name: name, formats: preference, describe: { $0 }, maxIssues: maxIssues) {
            (f: any PreferenceFormat, o: [String: JSON]) throws(FieldError) -> PreferenceText in try f.render(o, options: options)
        }
        let usePreference = b.format != nil && (a.format == nil || b.issues.count + b.more < a.issues.count + a.more)
        var check = DatasetCheck(method: usePreference ? "dpo" : "sft", format: nil, rows: 0, tokenCounts: [], epochTokens: 0,
                                 truncated: 0, maxSeqLen: maxSeqLen, duplicates: [], issues: [], moreIssues: 0)
        if usePreference {
            check.format = b.format?.name
            check.issues = b.issues; check.moreIssues = b.more
            var seen: [PreferenceText: Int] = [:]
            for (line, p) in b.lines {
                if let first = seen[p] { check.duplicates.append((line, first)) } else { seen[p] = line }
                let prompt = tokenizer.encode(p.prompt).count
                let c = tokenizer.encode(p.chosen).count, r = tokenizer.encode(p.rejected).count
                check.tokenCounts.append(prompt + max(c, r))
                if prompt + max(c, r) > maxSeqLen { check.truncated += 1 }
                check.epochTokens += min(prompt + c, maxSeqLen) + min(prompt + r, maxSeqLen)
            }
        } else {
            check.format = a.format?.name
            check.issues = a.issues; check.moreIssues = a.more
            var seen: [[Piece]: Int] = [:]
            for (line, pieces) in a.lines {
                if let first = seen[pieces] { check.duplicates.append((line, first)) } else { seen[pieces] = line }
                let n = pieces.reduce(0) { $0 + tokenizer.encode($1.text).count }
                check.tokenCounts.append(n)
                if n > maxSeqLen { check.truncated += 1 }
                check.epochTokens += min(n, maxSeqLen)
            }
        }
        check.rows = check.tokenCounts.count
        return check
    }
}

