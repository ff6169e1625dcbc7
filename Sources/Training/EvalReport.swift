import Foundation

/// What `graft eval` measured: summary numbers per model (the adapter, and the base when
/// asked), each row's answers, and the adapter's training curve when it came from a job.
public struct EvalReport: Codable, Sendable {
    public struct Summary: Codable, Sendable, Equatable {
        /// Mean negative log-likelihood per target token.
        public var loss: Double
        public var perplexity: Double
        public var meanTokenAccuracy: Double
        /// Share of rows whose greedy answer equals the target (normalized).
        public var exactMatch: Double
        /// Share of rows with `must_contain` key words whose answer contains all of them (nil: no such rows).
        public var mustContain: Double?
        public init(loss: Double, meanTokenAccuracy: Double, exactMatch: Double, mustContain: Double?) {
            self.loss = loss; perplexity = exp(loss); self.meanTokenAccuracy = meanTokenAccuracy
            self.exactMatch = exactMatch; self.mustContain = mustContain
        }
    }

    /// One model's answer to one row.
    public struct Answer: Codable, Sendable, Equatable {
        public var text: String
        /// Per-token loss of the target under this model.
        public var loss: Double
        public var exact: Bool
        /// Whether the answer contains every key word (nil: the row has none).
        public var contains: Bool?
        /// Right: an exact match, or containing the key words where the row lists them.
        public var right: Bool { contains ?? exact }
        public init(text: String, loss: Double, exact: Bool, contains: Bool?) {
            self.text = text; self.loss = loss; self.exact = exact; self.contains = contains
        }
    }

    public struct Row: Codable, Sendable {
        public var line: Int
        public var prompt: String
        public var target: String
        public var mustContain: [String]
        public var adapter: Answer
        public var base: Answer?
        public init(line: Int, prompt: String, target: String, mustContain: [String], adapter: Answer, base: Answer?) {
            self.line = line; self.prompt = prompt; self.target = target; self.mustContain = mustContain
            self.adapter = adapter; self.base = base
        }
    }

    /// One preference pair under the adapter: its rewards against the reference.
    public struct Pair: Codable, Sendable, Equatable {
        public var line: Int
        public var prompt: String
        public var chosen: String
        public var rejected: String
        public var chosenReward: Double
        public var rejectedReward: Double
        public var margin: Double { chosenReward - rejectedReward }
        /// The adapter prefers the chosen answer (TRL's accuracy: strictly).
        public var right: Bool { chosenReward > rejectedReward }
        public init(line: Int, prompt: String, chosen: String, rejected: String, chosenReward: Double, rejectedReward: Double) {
            self.line = line; self.prompt = prompt; self.chosen = chosen; self.rejected = rejected
            self.chosenReward = chosenReward; self.rejectedReward = rejectedReward
        }
    }

    public struct CurvePoint: Codable, Sendable, Equatable {
        public var step: Int
        public var loss: Double
        public init(step: Int, loss: Double) { self.step = step; self.loss = loss }
    }

    public var adapterID: String
    public var baseModel: String
    public var file: String
    /// "sft" (answers and losses) or "dpo" (preference metrics).
    public var kind: String
    public var rowCount: Int
    public var adapter: Summary?
    public var base: Summary?
    /// DPO data: TRL's metrics of the adapter against its reference.
    public var preference: [Metric]?
    /// The reference of those metrics: the adapter the run started from, or nil for the base.
    public var reference: String?
    /// Rows, worst first (wrong answers, then the highest adapter loss).
    public var rows: [Row]
    /// Preference pairs, worst first (smallest reward margin).
    public var pairs: [Pair]?
    public var trainCurve: [CurvePoint]?
    public var validationCurve: [CurvePoint]?
    public var job: String?

    public init(adapterID: String, baseModel: String, file: String, kind: String, rowCount: Int) {
        self.adapterID = adapterID; self.baseModel = baseModel; self.file = file; self.kind = kind; self.rowCount = rowCount
        rows = []
    }

    /// Orders rows worst first: wrong before right, then by the adapter's loss, highest first.
    public mutating func sortWorstFirst() {
        rows.sort { a, b in
            if a.adapter.right != b.adapter.right { return !a.adapter.right }
            return a.adapter.loss > b.adapter.loss
        }
        pairs?.sort { $0.margin < $1.margin }
    }

    /// The loss curve, when the report has one.
    public var curve: LossCurve? {
        guard let t = trainCurve, !t.isEmpty else { return nil }
        return LossCurve(train: t.map { ($0.step, $0.loss) }, validation: (validationCurve ?? []).map { ($0.step, $0.loss) })
    }
}

/// Answer matching for exact-match scores: case folded, surrounding white space and
/// punctuation removed, inner white space collapsed.
public enum AnswerMatch {
    public static func normalize(_ s: String) -> String {
        let trimmed = s.lowercased().trimmingCharacters(in: CharacterSet.whitespacesAndNewlines.union(.punctuationCharacters))
        return trimmed.split(whereSeparator: \.isWhitespace).joined(separator: " ")
    }

    public static func exact(_ answer: String, _ target: String) -> Bool { normalize(answer) == normalize(target) }

    public static func contains(_ answer: String, all words: [String]) -> Bool {
        let a = answer.lowercased()
        return words.allSatisfy { a.contains($0.lowercased()) }
    }
}

/// A report writer, as a plugin: renders an `EvalReport` as a document.
public protocol ReportWriter: Sendable {
    /// Short name, e.g. "html".
    var name: String { get }
    /// File extensions it writes, lowercased, without the dot.
    var fileExtensions: [String] { get }
    func render(_ report: EvalReport) -> String
}
