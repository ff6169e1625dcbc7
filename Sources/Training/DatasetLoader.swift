import Foundation
import LlamaModel
import Tokenizer

/// Problems found in a dataset file, each with its line.
public struct DatasetError: Error, CustomStringConvertible, Sendable {
    public struct Issue: Sendable, Equatable {
        public var line: Int?
        public var field: String?
        public var message: String
    }

    public var file: String
    public var issues: [Issue]
    /// Issues beyond those listed.
    public var more = 0

    public init(file: String, issues: [Issue], more: Int = 0) { self.file = file; self.issues = issues; self.more = more }

    public init(file: String, line: Int?, field: String? = nil, _ message: String) {
        self.init(file: file, issues: [Issue(line: line, field: field, message: message)])
    }

    public var description: String {
        var lines = issues.map { i in
            let at = i.line.map { "\(file):\($0)" } ?? file
            return i.field.map { "\(at): field '\($0)': \(i.message)" } ?? "\(at): \(i.message)"
        }
        if more > 0 { lines.append("... and \(more) more bad lines") }
        return lines.joined(separator: "\n")
    }
}

public enum TruncationSide: String, Sendable, Codable, CaseIterable {
    /// Keep the start (drop tokens past the limit), as TRL does by default.
    case right
    /// Keep the end.
    case left
}

public enum LossOn: String, Sendable, Codable, CaseIterable {
    /// Assistant turns and completions only.
    case completion
    /// Every token.
    case all
}

/// One tokenized example.
public struct TokenizedExample: Sendable, Equatable {
    public var line: Int
    public var tokens: [Int]
    /// Per token: whether the loss is taken on predicting it.
    public var trained: [Bool]

    public init(line: Int, tokens: [Int], trained: [Bool]) {
        precondition(tokens.count == trained.count)
        self.line = line; self.tokens = tokens; self.trained = trained
    }

    /// The training sequence: position t predicts token t + 1 where that one is trained.
    public var sequence: TrainingSequence {
        TrainingSequence(tokens: tokens, targets: tokens.indices.map { t in t + 1 < tokens.count && trained[t + 1] ? tokens[t + 1] : -1 })
    }
}

/// A dataset file read, checked and tokenized.
public struct LoadedDataset: Sendable {
    public var format: String
    public var examples: [TokenizedExample]
    /// Examples cut to the length limit.
    public var truncated: Int
    /// Examples left with no trained token (after truncation), skipped.
    public var dropped: Int
    /// Non-empty lines read.
    public var rows: Int
}

/// Reads JSON Lines datasets with the registered formats.
public struct DatasetLoader: Sendable {
    public var formats: [any DatasetFormat]
    /// At most this many bad lines are listed in an error.
    public var maxIssues = 20

    public init(formats: [any DatasetFormat]) { self.formats = formats }

    public struct Settings: Sendable {
        public var render: RenderOptions
        public var maxSeqLen: Int
        public var truncate: TruncationSide
        public var lossOn: LossOn
        public init(render: RenderOptions, maxSeqLen: Int, truncate: TruncationSide = .right, lossOn: LossOn = .completion) {
            self.render = render; self.maxSeqLen = maxSeqLen; self.truncate = truncate; self.lossOn = lossOn
        }
    }

    /// Parses the lines of `data` (the file's bytes; `name` labels errors): detects the format
    /// from the first valid line, renders every line and checks it fits that format. Throws a
    /// `DatasetError` listing the bad lines.
    public func parse(_ data: Data, name: String, options: RenderOptions) throws -> (format: any DatasetFormat, lines: [(line: Int, pieces: [Piece])]) {
        let (format, lines) = try DatasetLoader.parseLines(data, name: name, formats: formats, describe: { $0 },
                                                           maxIssues: maxIssues) {
            (format: any DatasetFormat, object: [String: JSON]) throws(FieldError) -> [Piece] in
            try format.render(object, options: options)
        }
        return (format, lines.map { (line: $0.line, pieces: $0.value) })
    }

    /// The JSON Lines reading shared by every kind of data: detects the format among `formats`
    /// (`describe` gives each one's detection and description) from the first valid line,
    /// renders every line with `render` and checks it fits that format. Throws a
    /// `DatasetError` listing the bad lines (at most `maxIssues`).
    public static func parseLines<Format, Value>(
        _ data: Data, name: String, formats: [Format], describe: (Format) -> any DataFormat, maxIssues: Int = 20,
        render: (Format, [String: JSON]) throws(FieldError) -> Value
    ) throws -> (format: Format, lines: [(line: Int, value: Value)]) {
        let scan = try scanLines(data, name: name, formats: formats, describe: describe, maxIssues: maxIssues, render: render)
        if !scan.issues.isEmpty { throw DatasetError(file: name, issues: scan.issues, more: scan.more) }
        guard let format = scan.format else { throw DatasetError(file: name, line: nil, "has no examples") }
        return (format, scan.lines)
    }

    /// What `parseLines` reads, with the bad lines returned rather than thrown (at most
    /// `maxIssues` listed, `more` counts the rest). Throws only when the file as a whole is
    /// unusable (not UTF-8, empty, a JSON array).
    public static func scanLines<Format, Value>(
        _ data: Data, name: String, formats: [Format], describe: (Format) -> any DataFormat, maxIssues: Int = 20,
        render: (Format, [String: JSON]) throws(FieldError) -> Value
    ) throws -> (format: Format?, lines: [(line: Int, value: Value)], issues: [DatasetError.Issue], more: Int) {
        let formats = formats.map { ($0, describe($0)) }
        guard let text = String(data: data, encoding: .utf8) else {
            throw DatasetError(file: name, line: nil, "is not UTF-8 text")
        }
        let trimmed = text.drop { $0.isWhitespace }
        if trimmed.isEmpty { throw DatasetError(file: name, line: nil, "is empty: expected one JSON object per line") }
        if trimmed.first == "[" {
            throw DatasetError(file: name, line: 1, "is a JSON array; Graft reads JSON Lines, one object per line (convert it with: jq -c '.[]' FILE)")
        }
        var issues: [DatasetError.Issue] = []
        var more = 0
        func report(_ line: Int, _ field: String?, _ message: String) {
            if issues.count < maxIssues { issues.append(.init(line: line, field: field, message: message)) } else { more += 1 }
        }
        var format: (Format, any DataFormat)?
        var detectedAt = 0
        var out: [(line: Int, value: Value)] = []
        let decoder = JSONDecoder()
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = index + 1
            if rawLine.allSatisfy(\.isWhitespace) { continue }
            let value: JSON
            do {
                value = try decoder.decode(JSON.self, from: Data(rawLine.utf8))
            } catch {
                report(line, nil, "not valid JSON")
                continue
            }
            guard case .object(let object) = value else {
                report(line, nil, "expected a JSON object, got \(value.typeName)")
                continue
            }
            if format == nil {
                guard let f = formats.first(where: { $0.1.detect(object) }) else {
                    let keys = object.keys.sorted().joined(separator: ", ")
                    report(line, nil, "no known format has the keys {\(keys)}; expected one of: "
                        + formats.map { "\($0.1.name) (\($0.1.fields))" }.joined(separator: "; "))
                    continue
                }
                format = f
                detectedAt = line
            }
            guard let (f, described) = format else { continue }
            guard described.detect(object) else {
                let keys = object.keys.sorted().joined(separator: ", ")
                report(line, nil, "has the keys {\(keys)}, but the file is \(described.name) data (detected at line \(detectedAt)): expected \(described.fields)")
                continue
            }
            do throws(FieldError) {
                out.append((line, try render(f, object)))
            } catch {
                report(line, error.field, error.message)
            }
        }
        return (format?.0, out, issues, more)
    }

    /// Reads, checks and tokenizes a dataset file.
    public func load(_ url: URL, tokenizer: Tokenizer, settings: Settings) throws -> LoadedDataset {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw DatasetError(file: url.path, line: nil, "cannot be read: \(error.localizedDescription)")
        }
        return try load(data, name: url.lastPathComponent, tokenizer: tokenizer, settings: settings)
    }

    public func load(_ data: Data, name: String, tokenizer: Tokenizer, settings: Settings) throws -> LoadedDataset {
        let (format, lines) = try parse(data, name: name, options: settings.render)
        var examples: [TokenizedExample] = []
        var truncated = 0, dropped = 0
        for (line, pieces) in lines {
            var tokens: [Int] = [], trained: [Bool] = []
            for (i, p) in pieces.enumerated() {
                let ids = i == 0 ? tokenizer.encodePrompt(p.text) : tokenizer.encode(p.text)
                tokens += ids
                trained += Array(repeating: p.trained || settings.lossOn == .all, count: ids.count)
            }
            if tokens.count > settings.maxSeqLen {
                truncated += 1
                switch settings.truncate {
                case .right:
                    tokens = Array(tokens.prefix(settings.maxSeqLen)); trained = Array(trained.prefix(settings.maxSeqLen))
                case .left:
                    tokens = Array(tokens.suffix(settings.maxSeqLen)); trained = Array(trained.suffix(settings.maxSeqLen))
                }
            }
            // The first token is never a target.
            if tokens.count < 2 || !trained.dropFirst().contains(true) {
                dropped += 1
                continue
            }
            examples.append(TokenizedExample(line: line, tokens: tokens, trained: trained))
        }
        if examples.isEmpty {
            throw DatasetError(file: name, line: nil,
                "has no example left to train on: every one is fully masked" + (truncated > 0 ? " or truncated away (max \(settings.maxSeqLen) tokens)" : ""))
        }
        return LoadedDataset(format: format.name, examples: examples, truncated: truncated, dropped: dropped, rows: lines.count)
    }
}

extension LoadedDataset {
    /// The default validation split: a seeded `fraction` of the examples (none when the file has
    /// fewer than 20 rows or the fraction is 0). Returns (train, validation).
    public func split(fraction: Double, seed: UInt64) -> ([TokenizedExample], [TokenizedExample]) {
        guard rows >= 20 && fraction > 0 else { return (examples, []) }
        var rng = SeededGenerator(seed: SeedMix.mix(seed ^ 0x5A11_7000))
        var order = Array(examples.indices)
        order.shuffle(using: &rng)
        let held = Set(order.prefix(max(1, Int((Double(examples.count) * fraction).rounded()))))
        return (examples.indices.filter { !held.contains($0) }.map { examples[$0] },
                examples.indices.filter(held.contains).map { examples[$0] })
    }
}
