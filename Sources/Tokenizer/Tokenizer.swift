import Synchronization

/// A byte-level BPE tokenizer (the GGUF `gpt2` tokenizer model).
///
/// Immutable after initialisation apart from an internal, lock-protected cache of encoded
/// pieces, so one instance can be shared across threads.
public final class Tokenizer: @unchecked Sendable {
    /// Beginning-of-sequence token id, if the model defines one.
    public let bosID: Int?
    /// End-of-sequence token id, if the model defines one.
    public let eosID: Int?
    /// The model's chat template; nil when the model has none or it does not parse.
    public let chatTemplate: ChatTemplate?
    /// Why the model's chat template could not be used, when it has one that does not parse
    /// (only with `keepInvalidTemplate`; otherwise the initializer throws).
    public let chatTemplateError: TokenizerError?
    /// How text is split before BPE.
    public let preTokenizer: PreTokenizer

    private let tokens: [String]
    private let types: [TokenType]
    /// Raw bytes each token decodes to.
    private let decodedBytes: [[UInt8]]
    /// Token spelling (UTF-8 bytes, so canonically equivalent strings stay distinct) -> id.
    private let idsBySpelling: [[UInt8]: Int]
    private let encoder: BytePairEncoder
    private let specials: SpecialTokenMatcher
    private let hasSpecials: Bool
    private let cache = Mutex<[[UInt8]: [Int32]]>([:])

    /// Bounds on the piece cache so a long-running server does not grow without limit.
    private static let cacheCapacity = 1 << 16
    private static let maxCachedPieceBytes = 64

    /// Creates a tokenizer from GGUF-style vocabulary arrays.
    /// - Parameters:
    ///   - tokens: token spellings, indexed by id (GPT-2 byte-to-unicode spelling).
    ///   - tokenTypes: `TokenType` raw values per token (0 is read as normal), or empty for all normal.
    ///   - merges: BPE merges `"left right"` in rank order (first merges first).
    ///   - preTokenizer: GGUF `tokenizer.ggml.pre` name: `smollm`, `gpt2` or `default`.
    ///   - bosID: beginning-of-sequence id, if any.
    ///   - eosID: end-of-sequence id, if any.
    ///   - chatTemplate: the Jinja chat template source, if any; it gets the BOS and EOS token
    ///     texts as `bos_token` and `eos_token`.
    ///   - keepInvalidTemplate: a template that does not parse leaves `chatTemplate` nil and its
    ///     error in `chatTemplateError` instead of failing the initializer.
    /// - Throws: `TokenizerError` describing the first inconsistency found.
    public init(tokens: [String], tokenTypes: [Int32], merges: [String], preTokenizer: String,
                bosID: Int?, eosID: Int?, chatTemplate: String?, keepInvalidTemplate: Bool = false) throws {
        guard !tokens.isEmpty else { throw TokenizerError.emptyVocabulary }
        guard tokenTypes.isEmpty || tokenTypes.count == tokens.count else {
            throw TokenizerError.tokenTypeCountMismatch(tokens: tokens.count, types: tokenTypes.count)
        }
        for (name, id) in [("BOS", bosID), ("EOS", eosID)] {
            if let id, !tokens.indices.contains(id) {
                throw TokenizerError.specialIDOutOfRange(name: name, id: id, vocabularySize: tokens.count)
            }
        }
        var types = [TokenType](repeating: .normal, count: tokens.count)
        for (index, raw) in tokenTypes.enumerated() {
            // GGUF type 0 means "undefined"; llama.cpp treats such tokens as normal.
            guard raw == 0 || TokenType(rawValue: raw) != nil else {
                throw TokenizerError.invalidTokenType(index: index, value: raw)
            }
            types[index] = TokenType(rawValue: raw) ?? .normal
        }

        var spellings: [[UInt8]: Int] = [:]
        spellings.reserveCapacity(tokens.count)
        for (id, token) in tokens.enumerated() {
            // The first spelling wins if a vocabulary repeats one.
            let key = Array(token.utf8)
            if spellings[key] == nil { spellings[key] = id }
        }

        self.tokens = tokens
        self.types = types
        self.idsBySpelling = spellings
        let decoded = zip(tokens, types).map { Self.rawBytes(of: $0, type: $1) }
        self.decodedBytes = decoded
        self.preTokenizer = try PreTokenizer(name: preTokenizer)
        self.bosID = bosID
        self.eosID = eosID
        let text = { (id: Int?) in id.map { String(decoding: decoded[$0], as: UTF8.self) } }
        do {
            self.chatTemplate = try chatTemplate.map { source throws(TokenizerError) in
                try ChatTemplate(template: source, bosToken: text(bosID), eosToken: text(eosID))
            }
            self.chatTemplateError = nil
        } catch {
            guard keepInvalidTemplate else { throw error }
            self.chatTemplate = nil
            self.chatTemplateError = error
        }
        self.specials = SpecialTokenMatcher(tokens: tokens, types: types)
        self.hasSpecials = !specials.isEmpty

        // A byte is spelled by its byte-to-unicode scalar, else by a `<0xNN>` byte token.
        let byteTokens: [Int32] = (0..<256).map { byte in
            let mapped = Array(String(ByteLevel.byteToScalar[byte]).utf8)
            let hex = String(byte, radix: 16, uppercase: true)
            let spelled = Array("<0x\(hex.count == 1 ? "0" + hex : hex)>".utf8)
            return Int32(spellings[mapped] ?? spellings[spelled] ?? -1)
        }
        let unknownID = types.firstIndex(of: .unknown).map(Int32.init)
        self.encoder = try BytePairEncoder(merges: merges, byteTokens: byteTokens, fallbackID: unknownID,
                                           idOf: { spellings[$0] })
    }

    /// Number of tokens in the vocabulary.
    public var vocabularySize: Int { tokens.count }

    /// The vocabulary spelling of `id` (byte-to-unicode form for normal tokens), or "" if out of range.
    public func tokenText(_ id: Int) -> String {
        tokens.indices.contains(id) ? tokens[id] : ""
    }

    /// The type of `id`, or nil if out of range.
    public func tokenType(_ id: Int) -> TokenType? {
        types.indices.contains(id) ? types[id] : nil
    }

    /// Whether `id` is a control token such as `<|im_end|>`.
    public func isControl(_ id: Int) -> Bool {
        tokenType(id) == .control
    }

    /// The id whose vocabulary spelling is exactly `text`, if any.
    public func tokenID(_ text: String) -> Int? {
        idsBySpelling[Array(text.utf8)]
    }

    /// The raw bytes `id` stands for (possibly part of a UTF-8 sequence); empty if out of range.
    public func tokenBytes(_ id: Int) -> [UInt8] {
        decodedBytes.indices.contains(id) ? decodedBytes[id] : []
    }

    /// Encodes `text` to token ids. No BOS/EOS is added.
    /// - Parameter parseSpecial: when true, control-token spellings in `text` (e.g. `<|im_start|>`)
    ///   become their single id; when false they are encoded as ordinary text.
    ///   User-defined tokens are matched either way. A byte the vocabulary cannot spell becomes
    ///   the unknown token, or is dropped when there is none (never the case for GPT-2 vocabularies).
    public func encode(_ text: String, parseSpecial: Bool = true) -> [Int] {
        let utf8 = Array(text.utf8)
        var out: [Int32] = []
        out.reserveCapacity(utf8.count / 3 + 4)
        utf8.withUnsafeBufferPointer { buffer in
            var fragmentStart = 0
            if hasSpecials {
                var position = 0
                while position < buffer.count {
                    if let (length, id) = specials.match(buffer, at: position, parseSpecial: parseSpecial) {
                        encodeFragment(buffer, fragmentStart, position, into: &out)
                        out.append(id)
                        position += length
                        fragmentStart = position
                    } else {
                        position += 1
                    }
                }
            }
            encodeFragment(buffer, fragmentStart, buffer.count, into: &out)
        }
        return out.map(Int.init)
    }

    /// Decodes ids to text: token bytes are concatenated and read as UTF-8, invalid
    /// sequences becoming U+FFFD. Control tokens appear as their literal text; ids outside
    /// the vocabulary are skipped.
    public func decode(_ ids: [Int]) -> String {
        var bytes: [UInt8] = []
        for id in ids where decodedBytes.indices.contains(id) {
            bytes.append(contentsOf: decodedBytes[id])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: - Encoding internals

    /// Pre-tokenizes and encodes the text between special tokens, `buffer[lo..<hi]`.
    private func encodeFragment(_ buffer: UnsafeBufferPointer<UInt8>, _ lo: Int, _ hi: Int,
                                into out: inout [Int32]) {
        if lo >= hi { return }
        var scalars: [Unicode.Scalar] = []
        var offsets: [Int] = []     // byte offset of each scalar, plus the end
        scalars.reserveCapacity(hi - lo)
        offsets.reserveCapacity(hi - lo + 1)
        // Swift strings hold valid UTF-8, and fragments start and end on scalar boundaries.
        var position = lo
        while position < hi {
            let lead = UInt32(buffer[position])
            offsets.append(position)
            var value: UInt32
            var length: Int
            switch lead {
            case 0..<0x80: value = lead; length = 1
            case 0xC0..<0xE0: value = lead & 0x1F; length = 2
            case 0xE0..<0xF0: value = lead & 0x0F; length = 3
            default: value = lead & 0x07; length = 4
            }
            for offset in 1..<length {
                value = value << 6 | (UInt32(buffer[position + offset]) & 0x3F)
            }
            scalars.append(Unicode.Scalar(value) ?? "\u{FFFD}")
            position += length
        }
        offsets.append(hi)
        for piece in preTokenizer.pieces(scalars) {
            encodePiece(buffer[offsets[piece.lowerBound]..<offsets[piece.upperBound]], into: &out)
        }
    }

    private func encodePiece(_ slice: Slice<UnsafeBufferPointer<UInt8>>, into out: inout [Int32]) {
        if slice.count == 1 {
            encoder.encode(slice, into: &out)
            return
        }
        let bytes = Array(slice)
        let cacheable = bytes.count <= Self.maxCachedPieceBytes
        if cacheable, let hit = cache.withLock({ $0[bytes] }) {
            out.append(contentsOf: hit)
            return
        }
        var ids: [Int32] = []
        encoder.encode(bytes, into: &ids)
        out.append(contentsOf: ids)
        if cacheable {
            cache.withLock { cache in
                if cache.count >= Self.cacheCapacity { cache.removeAll(keepingCapacity: true) }
                cache[bytes] = ids
            }
        }
    }

    /// The bytes a token decodes to: byte-to-unicode spelling reversed for normal tokens,
    /// the byte for `<0xNN>` byte tokens, and the literal text for special tokens.
    private static func rawBytes(of token: String, type: TokenType) -> [UInt8] {
        switch type {
        case .normal:
            return ByteLevel.decode(token)
        case .byte:
            let utf8 = Array(token.utf8)
            if utf8.count == 6, token.hasPrefix("<0x"), token.hasSuffix(">"),
               let byte = UInt8(String(decoding: utf8[3..<5], as: UTF8.self), radix: 16) {
                return [byte]
            }
            return utf8
        case .unknown, .control, .userDefined, .unused:
            return Array(token.utf8)
        }
    }
}
