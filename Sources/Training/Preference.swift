import Foundation
import LlamaModel
import Tokenizer

/// A preference example rendered to text: the prompt (never trained), and the preferred and
/// the dispreferred completion, each with its end-of-turn marker.
public struct PreferenceText: Sendable, Hashable {
    public var prompt: String
    public var chosen: String
    public var rejected: String
    public init(prompt: String, chosen: String, rejected: String) {
        self.prompt = prompt; self.chosen = chosen; self.rejected = rejected
    }
}

/// A preference data format (prompt, chosen and rejected in some spelling), as a plugin.
public protocol PreferenceFormat: DataFormat {
    /// The example as text, or a `FieldError` naming the wrong field and what was expected.
    func render(_ object: [String: JSON], options: RenderOptions) throws(FieldError) -> PreferenceText
}

/// A chat message as preference formats read it.
public struct Message: Sendable, Equatable {
    public var role: String
    public var content: String
    public init(role: String, content: String) { self.role = role; self.content = content }
}

extension FormatSupport {
    /// The messages of field `key` (a list of {role, content}).
    public static func messages(_ value: JSON?, field key: String) throws(FieldError) -> [Message] {
        guard let value else { throw FieldError(key, "missing; expected an array of {role, content} objects") }
        guard let list = value.array else {
            throw FieldError(key, "expected an array of {role, content} objects, got \(value.typeName)")
        }
        guard !list.isEmpty else { throw FieldError(key, "is empty") }
        var out: [Message] = []
        for (i, item) in list.enumerated() {
            let at = "\(key)[\(i)]"
            guard let m = item.object else { throw FieldError(at, "expected an object {role, content}, got \(item.typeName)") }
            guard let role = m["role"]?.string else { throw FieldError("\(at).role", "missing or not a string; expected system, user or assistant") }
            guard ["system", "user", "assistant"].contains(role) else {
                throw FieldError("\(at).role", "unknown role '\(role)'; expected system, user or assistant")
            }
            guard let content = m["content"]?.string else { throw FieldError("\(at).content", "missing or not a string") }
            out.append(Message(role: role, content: content))
        }
        return out
    }

    /// The prompt text for a conversation that the model answers next: the chat template with
    /// its generation prompt, or without a template the turns joined by newlines.
    public static func promptText(_ messages: [Message], options: RenderOptions) throws(FieldError) -> String {
        guard let template = options.chatTemplate else { return messages.map { $0.content + "\n" }.joined() }
        do {
            return try template.render(messages.map { ChatMessage(role: $0.role, content: $0.content) }, addGenerationPrompt: true)
        } catch {
            throw FieldError("messages", "\(error)")
        }
    }

    /// A completion as trained on: the text followed by the template's end of turn (what it
    /// renders after an assistant message's content, e.g. `<|im_end|>`, without the whitespace
    /// that separates turns), or the EOS text without a template.
    /// - Throws: `FieldError` when the template's assistant turn does not start with the text.
    public static func completionText(_ text: String, options: RenderOptions) throws(FieldError) -> String {
        guard let template = options.chatTemplate else { return text + options.eosText }
        let span = try chat([("user", "?", false), ("assistant", text, true)], template: template).filter(\.trained).map(\.text).joined()
        guard span.unicodeScalars.starts(with: text.unicodeScalars) else {
            throw FieldError("completion", "the chat template rewrites the assistant turn, so its end of turn cannot be found")
        }
        var end = String(String.UnicodeScalarView(span.unicodeScalars.dropFirst(text.unicodeScalars.count)))
        while let last = end.unicodeScalars.last, last.properties.isWhitespace { end.unicodeScalars.removeLast() }
        return text + end
    }

    /// A completion given as a string or as a list holding one assistant message.
    public static func completion(_ value: JSON?, field key: String) throws(FieldError) -> String {
        guard let value else { throw FieldError(key, "missing; expected a string or [{role: assistant, content}]") }
        let text: String
        if let s = value.string {
            text = s
        } else if value.array != nil {
            let ms = try messages(value, field: key)
            guard ms.count == 1, ms[0].role == "assistant" else {
                throw FieldError(key, "expected exactly one assistant message, got \(ms.count) message(s) with roles \(ms.map(\.role).joined(separator: ", "))")
            }
            text = ms[0].content
        } else {
            throw FieldError(key, "expected a string or [{role: assistant, content}], got \(value.typeName)")
        }
        if text.allSatisfy(\.isWhitespace) { throw FieldError(key, "is empty") }
        return text
    }

    /// Checks that the two completions differ.
    public static func distinct(_ chosen: String, _ rejected: String, field: String = "rejected") throws(FieldError) {
        if chosen == rejected { throw FieldError(field, "is the same as the chosen completion; a preference needs two different answers") }
    }
}

/// A tokenized preference pair: the prompt's tokens and each completion's.
public struct PreferenceExample: Sendable, Equatable {
    public var line: Int
    public var prompt: [Int]
    public var chosen: [Int]
    public var rejected: [Int]

    public init(line: Int, prompt: [Int], chosen: [Int], rejected: [Int]) {
        self.line = line; self.prompt = prompt; self.chosen = chosen; self.rejected = rejected
    }

    /// The sequence prompt + completion with targets on the completion's tokens only.
    public static func sequence(prompt: [Int], completion: [Int]) -> TrainingSequence {
        let tokens = prompt + completion
        let targets = tokens.indices.map { t in t + 1 < tokens.count && t + 1 >= prompt.count ? tokens[t + 1] : -1 }
        return TrainingSequence(tokens: tokens, targets: targets)
    }

    public var chosenSequence: TrainingSequence { Self.sequence(prompt: prompt, completion: chosen) }
    public var rejectedSequence: TrainingSequence { Self.sequence(prompt: prompt, completion: rejected) }
    /// Tokens of both sequences.
    public var tokenCount: Int { 2 * prompt.count + chosen.count + rejected.count }
}

/// A preference file read, checked and tokenized.
public struct LoadedPreferences: Sendable {
    public var format: String
    public var examples: [PreferenceExample]
    /// Pairs whose prompt + completion was cut to the length limit.
    public var truncated: Int
    /// Pairs dropped because the prompt alone reaches the limit.
    public var dropped: Int
    public var rows: Int

    /// A seeded `fraction` of the pairs for validation (none below 20 rows), as for SFT data.
    public func split(fraction: Double, seed: UInt64) -> ([PreferenceExample], [PreferenceExample]) {
        guard rows >= 20 && fraction > 0 else { return (examples, []) }
        var rng = SeededGenerator(seed: SeedMix.mix(seed ^ 0x5A11_7000))
        var order = Array(examples.indices)
        order.shuffle(using: &rng)
        let n = max(1, Int((Double(examples.count) * fraction).rounded()))
        let held = Set(order.prefix(n))
        return (examples.indices.filter { !held.contains($0) }.map { examples[$0] }, held.sorted().map { examples[$0] })
    }
}

/// Reads preference JSON Lines with the registered preference formats.
public struct PreferenceLoader: Sendable {
    public var formats: [any PreferenceFormat]
    public init(formats: [any PreferenceFormat]) { self.formats = formats }

    public func parse(_ data: Data, name: String, options: RenderOptions) throws -> (format: any PreferenceFormat, lines: [(line: Int, value: PreferenceText)]) {
        try DatasetLoader.parseLines(data, name: name, formats: formats, describe: { $0 }) {
            (format: any PreferenceFormat, object: [String: JSON]) throws(FieldError) -> PreferenceText in
            try format.render(object, options: options)
        }
    }

    /// Reads and tokenizes: each completion is cut so that prompt + completion fits `maxSeqLen`
    /// (the prompt's start kept); pairs whose prompt alone fills it are dropped.
    public func load(_ data: Data, name: String, tokenizer: Tokenizer, options: RenderOptions, maxSeqLen: Int) throws -> LoadedPreferences {
        let (format, lines) = try parse(data, name: name, options: options)
        var examples: [PreferenceExample] = []
        var truncated = 0, dropped = 0
        for (line, text) in lines {
            let prompt = tokenizer.encodePrompt(text.prompt)
            var chosen = tokenizer.encode(text.chosen), rejected = tokenizer.encode(text.rejected)
            if prompt.count >= maxSeqLen { dropped += 1; continue }
            let room = maxSeqLen - prompt.count
            if chosen.count > room || rejected.count > room {
                truncated += 1
                chosen = Array(chosen.prefix(room)); rejected = Array(rejected.prefix(room))
            }
            if prompt.isEmpty || chosen == rejected { dropped += 1; continue }
            examples.append(PreferenceExample(line: line, prompt: prompt, chosen: chosen, rejected: rejected))
        }
        if examples.isEmpty {
            throw DatasetError(file: name, line: nil, "has no pair left to train on: every prompt fills --max-seq-len (\(maxSeqLen)) or the completions become equal when cut")
        }
        return LoadedPreferences(format: format.name, examples: examples, truncated: truncated, dropped: dropped, rows: lines.count)
    }
}
