import Foundation
import Testing
import Training

@Suite("Sentences, documents and pairs from prose")
struct TextToDataTests {
    @Test("sentences end at . ! ? before a new sentence, not at decimals, abbreviations, initials or inside quotes")
    func sentences() {
        let text = #"Pi is about 3.14 in most uses. Dr. Smith moved to the U.S. in 1990, e.g. for work. Really? Yes! "#
            + #"J. R. R. Tolkien wrote it. She said "Stop. Go home." and left. He asked (quietly. then louder) twice. "#
            + #"“It works. Mostly,” said Ann. The end."#
        #expect(SentenceSplitter.split(text) == [
            "Pi is about 3.14 in most uses.",
            "Dr. Smith moved to the U.S. in 1990, e.g. for work.",
            "Really?", "Yes!",
            "J. R. R. Tolkien wrote it.",
            #"She said "Stop. Go home." and left."#,
            "He asked (quietly. then louder) twice.",
            "“It works. Mostly,” said Ann.",
            "The end.",
        ])
        #expect(SentenceSplitter.split(#"She said, "Go home." Then she left."#) == [#"She said, "Go home.""#, "Then she left."])
        #expect(SentenceSplitter.split("Version 2.0.1 is out. lower case follows. Next one.") ==
                ["Version 2.0.1 is out. lower case follows.", "Next one."])
    }

    @Test("Markdown: headings, paragraphs and list items; code, images and link targets dropped")
    func markdown() {
        let md = """
        # Rivers

        The **Ulvenne** is long. It flows [north](http://x.example) to the sea.

        ```
        let x = 1. Not prose.
        ```

        Tributaries
        -----------
        - The Arn joins it. It is short.
        - ![map](m.png) The Bel joins later.
        """
        let doc = TextDocument(md, kind: .markdown)
        #expect(doc.sections == [
            .init(heading: "Rivers", paragraphs: ["The Ulvenne is long. It flows north to the sea."]),
            .init(heading: "Tributaries", paragraphs: ["The Arn joins it. It is short.", "The Bel joins later."]),
        ])
    }

    @Test("HTML: visible text of headings and paragraphs; scripts, styles and navigation dropped; entities decoded")
    func html() {
        let html = """
        <html><head><title>Bridges &amp; Arches</title><style>p { color: red }</style></head>
        <body><nav><p>Home. About.</p></nav><script>var a = "<p>no</p>";</script>
        <p>The bridge has 143 arches. It is &lt;old&gt;.</p><h2>History</h2><p>Built in 1771.<br>Rebuilt later.</p>
        <footer><p>Copyright.</p></footer></body></html>
        """
        let doc = TextDocument(html, kind: .html)
        #expect(doc.sections == [
            .init(heading: "Bridges & Arches", paragraphs: ["The bridge has 143 arches. It is <old>."]),
            .init(heading: "History", paragraphs: ["Built in 1771. Rebuilt later."]),
        ])
    }

    @Test("plain text: a short line without closing punctuation is a heading")
    func plain() {
        let doc = TextDocument("The Kethric Bridge\n\nIt has 143 arches.\nIt is old.\n\nNotes\n\nNone so far.", kind: .text)
        #expect(doc.sections == [
            .init(heading: "The Kethric Bridge", paragraphs: ["It has 143 arches. It is old."]),
            .init(heading: "Notes", paragraphs: ["None so far."]),
        ])
    }

    @Test("pairs: every Nth sentence a prompt, the following ones its completion; headings prompt their section")
    func pairs() {
        let doc = TextDocument(sections: [.init(heading: "Facts", paragraphs: ["One. Two. Three.", "Four. Five."])])
        let pairs = TextPairs.pairs(doc, every: 2)
        #expect(pairs.map(\.prompt) == ["Facts", "One.", "Three."])
        #expect(pairs.map(\.completion) == ["One. Two. Three.\n\nFour. Five.", "Two.", "Four."])
        let three = TextPairs.pairs(doc, every: 3, headingParagraph: true)
        #expect(three.map(\.completion) == ["One. Two. Three.", "Two. Three.", "Five."])
    }

    @Test("binary and non-UTF-8 input is refused with the offset")
    func rejects() throws {
        #expect(throws: DatasetError.self) { try TextDocument.text(Data([0x48, 0x69, 0x00, 0x01]), name: "a.bin") }
        do {
            _ = try TextDocument.text(Data("ok\n".utf8) + Data([0x48, 0xE9, 0x74, 0xE9]), name: "latin1.txt")
            Issue.record("latin-1 accepted")
        } catch let e as DatasetError {
            #expect(e.description.contains("latin1.txt:2: is not UTF-8"))
        }
        #expect(try TextDocument.text(Data("\u{FEFF}Hi.".utf8), name: "bom.txt") == "Hi.")
    }
}
