/// Splits text into the pieces that byte-level BPE encodes independently.
///
/// `gpt2` applies the GPT-2 pattern
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`;
/// `smollm` first isolates every `\p{N}` scalar as its own piece and applies the
/// GPT-2 pattern to the text between them. The pattern is implemented as a scanner
/// over Unicode scalars (no regex engine) so results do not depend on one.
public struct PreTokenizer: Sendable, Equatable {
    /// The supported splitting schemes.
    public enum Kind: String, Sendable {
        /// Digit isolation followed by the GPT-2 pattern (GGUF `tokenizer.ggml.pre = "smollm"`).
        case smollm
        /// The GPT-2 pattern alone (GGUF `"gpt2"` or `"default"`).
        case gpt2
    }

    /// The scheme in use.
    public let kind: Kind

    /// Creates the pre-tokenizer named by GGUF `tokenizer.ggml.pre`.
    /// - Throws: `TokenizerError.unknownPreTokenizer` for any other name.
    public init(name: String) throws {
        switch name {
        case "smollm": kind = .smollm
        case "gpt2", "default": kind = .gpt2
        default: throw TokenizerError.unknownPreTokenizer(name)
        }
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
        var out: [Range<Int>] = []
        out.reserveCapacity(scalars.count / 3 + 1)
        switch kind {
        case .gpt2:
            Self.scan(scalars, classes, 0, scalars.count, into: &out)
        case .smollm:
            var start = 0
            for index in scalars.indices where classes[index] == .number {
                Self.scan(scalars, classes, start, index, into: &out)
                out.append(index..<index + 1)
                start = index + 1
            }
            Self.scan(scalars, classes, start, scalars.count, into: &out)
        }
        return out
    }

    /// Applies the GPT-2 pattern to `scalars[lo..<hi]`, trying alternatives in pattern order.
    private static func scan(_ s: [Unicode.Scalar], _ cls: [CharClass], _ lo: Int, _ hi: Int,
                             into out: inout [Range<Int>]) {
        var i = lo
        while i < hi {
            let c = s[i].value
            // 's 't 're 've 'm 'll 'd (case-sensitive, as in the GPT-2 pattern).
            if c == 0x27, i + 1 < hi {
                let n1 = s[i + 1].value
                if n1 == 0x73 || n1 == 0x74 || n1 == 0x6D || n1 == 0x64 {
                    out.append(i..<i + 2)
                    i += 2
                    continue
                }
                if i + 2 < hi {
                    let n2 = s[i + 2].value
                    if (n1 == 0x72 && n2 == 0x65) || (n1 == 0x76 && n2 == 0x65) || (n1 == 0x6C && n2 == 0x6C) {
                        out.append(i..<i + 3)
                        i += 3
                        continue
                    }
                }
            }
            // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: only a plain space may lead.
            var start = i
            if c == 0x20, i + 1 < hi, cls[i + 1] != .space { start = i + 1 }
            let kind = cls[start]
            if kind != .space {
                var end = start + 1
                while end < hi && cls[end] == kind { end += 1 }
                out.append(i..<end)
                i = end
                continue
            }
            // `\s+(?!\S)` backs off one scalar when a non-space follows, so that scalar can
            // lead the next piece; a lone whitespace scalar falls through to `\s+`.
            var end = i + 1
            while end < hi && cls[end] == .space { end += 1 }
            if end < hi && end - i > 1 { end -= 1 }
            out.append(i..<end)
            i = end
        }
    }
}

/// The character classes the GPT-2 pattern distinguishes.
enum CharClass: UInt8 {
    case letter, number, space, other

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
        default:
            self = .other
        }
    }
}
