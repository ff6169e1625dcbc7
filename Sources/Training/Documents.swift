import Foundation

/// A document as headed sections of paragraphs: what `graft dataset from-text` reads from
/// plain text, Markdown and HTML.
public struct TextDocument: Sendable, Equatable {
    public struct Section: Sendable, Equatable {
        /// The heading (or the document's title); nil for text before any heading.
        public var heading: String?
        public var paragraphs: [String]
        public init(heading: String?, paragraphs: [String]) { self.heading = heading; self.paragraphs = paragraphs }
    }

    public var sections: [Section]
    public init(sections: [Section]) { self.sections = sections }

    public enum Kind: String, Sendable { case text, markdown, html }

    /// The kind a file name implies: .md/.markdown, .html/.htm, anything else plain text.
    public static func kind(ofFile name: String) -> Kind {
        switch (name as NSString).pathExtension.lowercased() {
        case "md", "markdown": .markdown
        case "html", "htm", "xhtml": .html
        default: .text
        }
    }

    /// Decodes a file's bytes, refusing binary data and text that is not UTF-8.
    public static func text(_ data: Data, name: String) throws -> String {
        if let nul = data.firstIndex(of: 0) {
            throw DatasetError(file: name, line: nil, "is binary (a zero byte at offset \(nul - data.startIndex)); expected UTF-8 text, Markdown or HTML")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            let lines = data.split(separator: 0x0A, omittingEmptySubsequences: false)
            let bad = (lines.firstIndex { String(data: Data($0), encoding: .utf8) == nil } ?? 0) + 1
            throw DatasetError(file: name, line: bad, "is not UTF-8 text; convert it first (e.g. iconv -t UTF-8)")
        }
        return text.hasPrefix("\u{FEFF}") ? String(text.dropFirst()) : text
    }

    public init(_ text: String, kind: Kind) {
        switch kind {
        case .text: self = Self.plain(text)
        case .markdown: self = Self.markdown(text)
        case .html: self = Self.html(text)
        }
    }

    /// Blocks separated by blank lines; a block of one short line without closing punctuation
    /// is a heading.
    static func plain(_ text: String) -> TextDocument {
        var b = Builder()
        for block in blocks(text) {
            let lines = block.split(separator: "\n")
            if lines.count == 1, isHeadingLike(block) { b.heading(block) } else { b.paragraph(block) }
        }
        return b.document
    }

    static func isHeadingLike(_ line: String) -> Bool {
        let t = line.trimmingCharacters(in: .whitespaces)
        guard let last = t.last else { return false }
        return t.split(separator: " ").count <= 10 && !".!?,;:\"”)".contains(last)
    }

    static func blocks(_ text: String) -> [String] {
        var out: [String] = [], current: [String] = []
        for line in text.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false) {
            let t = line.trimmingCharacters(in: .whitespaces)
            if t.isEmpty {
                if !current.isEmpty { out.append(current.joined(separator: "\n")); current = [] }
            } else {
                current.append(t)
            }
        }
        if !current.isEmpty { out.append(current.joined(separator: "\n")) }
        return out
    }

    /// ATX (`# Title`) and Setext (underlined) headings; fenced code, tables, HTML comments
    /// and images dropped; list items, quotes and emphasis reduced to their text.
    static func markdown(_ text: String) -> TextDocument {
        var b = Builder()
        var paragraph: [String] = []
        var fenced = false
        func flush() {
            if !paragraph.isEmpty { b.paragraph(paragraph.joined(separator: " ")); paragraph = [] }
        }
        let lines = text.replacingOccurrences(of: "<!--[\\s\\S]*?-->", with: "", options: .regularExpression)
            .replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for (n, raw) in lines.enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("```") || line.hasPrefix("~~~") { flush(); fenced.toggle(); continue }
            if fenced { continue }
            if line.isEmpty { flush(); continue }
            if line.hasPrefix("#") {
                let level = line.prefix { $0 == "#" }.count
                if level <= 6, line.dropFirst(level).first == " " {
                    flush()
                    b.heading(inline(String(line.dropFirst(level)).trimmingCharacters(in: CharacterSet(charactersIn: " #"))))
                    continue
                }
            }
            if paragraph.isEmpty, n + 1 < lines.count {  // Setext: a line underlined with === or ---
                let next = lines[n + 1].trimmingCharacters(in: .whitespaces)
                if !next.isEmpty, next.allSatisfy({ $0 == "=" }) || (next.count >= 2 && next.allSatisfy({ $0 == "-" })) {
                    b.heading(inline(line))
                    continue
                }
            }
            if line.allSatisfy({ "=-*_ ".contains($0) }) { flush(); continue }  // rules and Setext underlines
            if line.hasPrefix("|") { continue }  // tables
            var content = line
            if let m = content.range(of: "^([-*+]|[0-9]+[.)])\\s+", options: .regularExpression) {
                flush()  // each list item is its own paragraph
                content.removeSubrange(m)
            }
            while content.hasPrefix(">") { content = String(content.dropFirst()).trimmingCharacters(in: .whitespaces) }
            paragraph.append(inline(content))
        }
        flush()
        return b.document
    }

    /// Markdown inline markup reduced to text: images dropped, links to their text, code,
    /// emphasis and strike-through marks removed.
    static func inline(_ s: String) -> String {
        var t = s.replacingOccurrences(of: "!\\[[^\\]]*\\]\\([^)]*\\)", with: "", options: .regularExpression)
        t = t.replacingOccurrences(of: "\\[([^\\]]*)\\]\\([^)]*\\)", with: "$1", options: .regularExpression)
        t = t.replacingOccurrences(of: "(\\*\\*|__|~~|`)", with: "", options: .regularExpression)
        t = t.replacingOccurrences(of: "(^|\\s)[*_]([^*_]+)[*_]", with: "$1$2", options: .regularExpression)
        return t.trimmingCharacters(in: .whitespaces)
    }

    /// The visible text of headings, paragraphs, list items and quotes; scripts, styles,
    /// navigation, headers, footers and forms dropped; the <title> heads the document.
    static func html(_ text: String) -> TextDocument {
        var s = text.replacingOccurrences(of: "<!--[\\s\\S]*?-->", with: "", options: .regularExpression)
        for tag in ["script", "style", "nav", "header", "footer", "noscript", "form", "aside", "svg", "template"] {
            s = s.replacingOccurrences(of: "<\(tag)\\b[\\s\\S]*?</\(tag)\\s*>", with: " ", options: [.regularExpression, .caseInsensitive])
        }
        var b = Builder()
        if let r = s.range(of: "<title\\b[^>]*>([\\s\\S]*?)</title\\s*>", options: [.regularExpression, .caseInsensitive]) {
            let title = visible(String(s[r]))
            if !title.isEmpty { b.title = title }
            s.removeSubrange(r)
        }
        let pattern = "<(h[1-6]|p|li|blockquote|dd|dt|td|figcaption)\\b[^>]*>([\\s\\S]*?)</\\1\\s*>"
        let regex = try! NSRegularExpression(pattern: pattern, options: [.caseInsensitive])
        for m in regex.matches(in: s, range: NSRange(s.startIndex..., in: s)) {
            let tag = String(s[Range(m.range(at: 1), in: s)!]).lowercased()
            let content = visible(String(s[Range(m.range(at: 2), in: s)!]))
            if content.isEmpty { continue }
            if tag.hasPrefix("h") && tag.count == 2 { b.heading(content) } else { b.paragraph(content) }
        }
        return b.document
    }

    /// Text with tags removed, entities decoded and white space collapsed.
    static func visible(_ html: String) -> String {
        var t = html.replacingOccurrences(of: "<br\\s*/?>", with: " ", options: [.regularExpression, .caseInsensitive])
        t = t.replacingOccurrences(of: "<[^>]*>", with: "", options: .regularExpression)
        t = decodeEntities(t)
        return t.replacingOccurrences(of: "\\s+", with: " ", options: .regularExpression).trimmingCharacters(in: .whitespaces)
    }

    static func decodeEntities(_ s: String) -> String {
        guard s.contains("&") else { return s }
        let named = ["amp": "&", "lt": "<", "gt": ">", "quot": "\"", "apos": "'", "nbsp": " ", "mdash": "—", "ndash": "–",
                     "hellip": "…", "lsquo": "‘", "rsquo": "’", "ldquo": "“", "rdquo": "”", "copy": "©"]
        let regex = try! NSRegularExpression(pattern: "&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);")
        var out = "", last = s.startIndex
        for m in regex.matches(in: s, range: NSRange(s.startIndex..., in: s)) {
            let whole = Range(m.range, in: s)!, name = String(s[Range(m.range(at: 1), in: s)!])
            out += s[last..<whole.lowerBound]
            var replacement: String?
            if name.hasPrefix("#x") { replacement = UInt32(name.dropFirst(2), radix: 16).flatMap(Unicode.Scalar.init).map { String($0) } }
            else if name.hasPrefix("#") { replacement = UInt32(name.dropFirst()).flatMap(Unicode.Scalar.init).map { String($0) } }
            else { replacement = named[name.lowercased()] }
            out += replacement ?? String(s[whole])
            last = whole.upperBound
        }
        return out + s[last...]
    }

    struct Builder {
        var sections: [Section] = []
        var title: String?
        mutating func heading(_ h: String) { sections.append(Section(heading: h, paragraphs: [])) }
        mutating func paragraph(_ p: String) {
            let text = p.replacingOccurrences(of: "\\s+", with: " ", options: .regularExpression).trimmingCharacters(in: .whitespaces)
            if text.isEmpty { return }
            if sections.isEmpty { sections.append(Section(heading: title, paragraphs: [])) }
            sections[sections.count - 1].paragraphs.append(text)
        }
        var document: TextDocument {
            var s = sections
            if let title, !s.isEmpty, s[0].heading == nil { s[0].heading = title }
            if let title, s.isEmpty { s = [Section(heading: title, paragraphs: [])] }
            return TextDocument(sections: s)
        }
    }
}

/// Prompt/completion pairs from a document: within each section, every `every`-th sentence
/// is a prompt and the sentences up to the next prompt its completion; each heading is also a
/// prompt whose completion is its section's text (its first paragraph when `headingParagraph`).
public enum TextPairs {
    public struct Pair: Sendable, Equatable, Codable {
        public var prompt: String
        public var completion: String
    }

    public static func pairs(_ document: TextDocument, every: Int, headingParagraph: Bool = false) -> [Pair] {
        precondition(every >= 2, "a prompt needs at least one sentence after it")
        var out: [Pair] = []
        for section in document.sections {
            if let h = section.heading, !section.paragraphs.isEmpty {
                let body = headingParagraph ? section.paragraphs[0] : section.paragraphs.joined(separator: "\n\n")
                out.append(Pair(prompt: h, completion: body))
            }
            let sentences = section.paragraphs.flatMap(SentenceSplitter.split)
            var i = 0
            while i + 1 < sentences.count {
                let completion = sentences[(i + 1)..<min(sentences.count, i + every)].joined(separator: " ")
                out.append(Pair(prompt: sentences[i], completion: completion))
                i += every
            }
        }
        return out
    }
}
