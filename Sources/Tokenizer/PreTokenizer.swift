/// Splits text into the pieces that byte-level BPE encodes independently, as GGUF
/// `tokenizer.ggml.pre` names it.
///
/// Each scheme is a list of patterns applied one after another: every pattern splits every
/// piece the previous one produced, and both its matches and the gaps between them survive
/// as pieces. The patterns are implemented as scanners over Unicode scalars (no regex
/// engine), with `\p{L}`, `\p{N}`, `\p{M}`, `\p{P}` and `\s` taken from the scalar's
/// Unicode properties.
///
/// - GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
/// - Llama 3: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
///   ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`; Qwen 2 takes digits one at a time,
///   Qwen 3.5 also counts `\p{M}` as a letter.
public struct PreTokenizer: Sendable, Equatable {
    /// The supported splitting schemes.
    public enum Kind: String, Sendable, CaseIterable {
        /// Every `\p{N}` scalar alone, then GPT-2 (`smollm`, `starcoder`, `refact`, `command-r`).
        case smollm
        /// The GPT-2 pattern alone (`gpt-2`, `phi-2`, `mellum`, `mpt`, `olmo`).
        case gpt2
        /// The Llama 3 pattern (`llama-bpe`, `llama3`, `llama-v3`, `falcon3`, `pixtral`, `dbrx`, `smaug-bpe`).
        case llama3
        /// The Llama 3 pattern with single digits (`qwen2`, `deepseek-r1-qwen`, `stablelm2`).
        case qwen2
        /// Qwen 2 with combining marks counted as letters (`qwen35`).
        case qwen35
        /// Mistral Nemo: letter runs split by case, single digits (`tekken`).
        case tekken
        /// Punctuation runs, GPT-2, then ASCII digit triples (`falcon`).
        case falcon
        /// DeepSeek Coder: line breaks, letter runs, punctuation runs, CJK runs, single digits.
        case deepseekCoder
        /// The legacy set: punctuation runs, GPT-2, number runs, ASCII digit triples (`default`).
        case legacy
    }

    /// The scheme in use.
    public let kind: Kind

    /// Whether a piece that is already a vocabulary entry is emitted whole, without merging.
    public var ignoresMerges: Bool { kind == .llama3 || kind == .tekken }

    /// Whether the scheme turns on BOS by default (the GGUF key still overrides it).
    public var addsBOSByDefault: Bool { kind == .llama3 || kind == .tekken }

    /// The names each scheme answers to.
    static let names: [String: Kind] = [
        "smollm": .smollm, "starcoder": .smollm, "refact": .smollm, "command-r": .smollm,
        "codeshell": .smollm, "exaone": .smollm, "minerva-7b": .smollm, "mellum2": .smollm,
        "gpt-2": .gpt2, "gpt2": .gpt2, "phi-2": .gpt2, "mellum": .gpt2, "mpt": .gpt2, "olmo": .gpt2,
        "jais": .gpt2, "exaone4": .gpt2,
        "llama-bpe": .llama3, "llama3": .llama3, "llama-v3": .llama3, "falcon3": .llama3,
        "pixtral": .llama3, "dbrx": .llama3, "smaug-bpe": .llama3,
        "qwen2": .qwen2, "deepseek-r1-qwen": .qwen2, "stablelm2": .qwen2, "megrez": .qwen2,
        "qwen35": .qwen35,
        "tekken": .tekken,
        "falcon": .falcon,
        "deepseek-coder": .deepseekCoder,
        "default": .legacy,
    ]

    /// Creates the pre-tokenizer named by GGUF `tokenizer.ggml.pre`.
    /// - Throws: `TokenizerError.unknownPreTokenizer` for any other name.
    public init(name: String) throws {
        guard let kind = Self.names[name] else { throw TokenizerError.unknownPreTokenizer(name) }
        self.kind = kind
    }

    /// Splits `text` into pieces; concatenating them gives back `text`.
    public func split(_ text: String) -> [String] {
        let scalars = Array(text.unicodeScalars)
        return pieces(scalars).map { range in
            var view = String.UnicodeScalarView()
            view.append(contentsOf: scalars[range])
            return String(view)
        }
    }

    /// Piece boundaries as ranges of scalar indices.
    func pieces(_ scalars: [Unicode.Scalar]) -> [Range<Int>] {
        let classes = scalars.map(CharClass.init)
        let scan = Scanner(s: scalars, cls: classes)
        var out: [Range<Int>] = []
        out.reserveCapacity(scalars.count / 3 + 1)
        let whole = scalars.isEmpty ? [] : [0..<scalars.count]
        switch kind {
        case .gpt2:
            for r in whole { scan.gpt2(r, into: &out) }
        case .smollm:
            for r in scan.isolate(whole, where: { classes[$0] == .number }, maxRun: 1) { scan.gpt2(r, into: &out) }
        case .llama3:
            for r in whole { scan.llama3(r, maxDigits: 3, marksAreLetters: false, into: &out) }
        case .qwen2:
            for r in whole { scan.llama3(r, maxDigits: 1, marksAreLetters: false, into: &out) }
        case .qwen35:
            for r in whole { scan.llama3(r, maxDigits: 1, marksAreLetters: true, into: &out) }
        case .tekken:
            for r in whole { scan.tekken(r, into: &out) }
        case .falcon:
            var gpt: [Range<Int>] = []
            let punct = scan.isolate(whole, where: { scalars[$0].isPunctuationOrLegacySymbol(backtick: true) })
            for r in punct { scan.gpt2(r, into: &gpt) }
            out = scan.asciiDigitTriples(gpt)
        case .legacy:
            var gpt: [Range<Int>] = []
            let punct = scan.isolate(whole, where: { scalars[$0].isPunctuationOrLegacySymbol(backtick: false) })
            for r in punct { scan.gpt2(r, into: &gpt) }
            out = scan.asciiDigitTriples(scan.isolate(gpt, where: { classes[$0] == .number }))
        case .deepseekCoder:
            let lines = scan.isolate(whole, where: { scalars[$0] == "\n" || scalars[$0] == "\r" }, maxRun: 1)
            let letters = scan.isolate(lines, where: { classes[$0] == .letter }, optionalLead: { classes[$0] == .space })
            let punct = scan.isolate(letters, where: { scalars[$0].properties.generalCategory.isPunctuation },
                                     optionalLead: { classes[$0] == .space })
            let cjk = scan.isolate(punct, where: { scalars[$0].isDeepSeekCJK })
            out = scan.isolate(cjk, where: { classes[$0] == .number }, maxRun: 1)
        }
        return out
    }
}

/// The character classes the patterns distinguish.
enum CharClass: UInt8 {
    case letter, number, space, mark, other

    init(_ scalar: Unicode.Scalar) {
        let v = scalar.value
        if v < 0x80 {
            switch v {
            case 0x41...0x5A, 0x61...0x7A: self = .letter
            case 0x30...0x39: self = .number
            case 0x09...0x0D, 0x20: self = .space
            default: self = .other
            }
            return
        }
        let properties = scalar.properties
        // `\s` is the Unicode White_Space property.
        if properties.isWhitespace {
            self = .space
            return
        }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            self = .letter
        case .decimalNumber, .letterNumber, .otherNumber:
            self = .number
        case .nonspacingMark, .spacingMark, .enclosingMark:
            self = .mark
        default:
            self = .other
        }
    }
}

extension Unicode.GeneralCategory {
    /// `\p{P}`.
    var isPunctuation: Bool {
        switch self {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation: true
        default: false
        }
    }
}

extension Unicode.Scalar {
    /// `[\p{P}\$\+<=>\^~\|]` (legacy set), plus the backtick for Falcon.
    func isPunctuationOrLegacySymbol(backtick: Bool) -> Bool {
        switch value {
        case 0x24, 0x2B, 0x3C, 0x3D, 0x3E, 0x5E, 0x7E, 0x7C: return true
        case 0x60: return backtick
        default: return properties.generalCategory.isPunctuation
        }
    }

    /// `[一-龥ࠀ-一가-퟿]`: U+4E00...U+9FA5, U+0800...U+4E00, U+AC00...U+D7FF.
    var isDeepSeekCJK: Bool {
        (0x0800...0x9FA5).contains(value) || (0xAC00...0xD7FF).contains(value)
    }
}
