import Synchronization

/// A GGUF tokenizer: byte-level BPE (`gpt2`), SentencePiece BPE (`llama`) or Gemma 4's
/// UTF-8 BPE (`gemma4`), behind one API.
///
/// Immutable after initialisation apart from an internal, lock-protected cache of encoded
/// pieces, so one instance can be shared across threads.
public final class Tokenizer: @unchecked Sendable {
    /// The tokenizer algorithm.
    public let model: TokenizerConfiguration.Model
    /// Beginning-of-sequence token id, if the model defines one.
    public let bosID: Int?
    /// End-of-sequence token id, if the model defines one.
    public let eosID: Int?
    /// End-of-turn token id, if any.
    public let eotID: Int?
    /// The unknown token id, if any.
    public let unknownID: Int?
    /// The padding token id, if any.
    public let paddingID: Int?
    /// Whether `encode(_:addSpecial:parseSpecial:)` adds BOS / EOS.
    public let addBOS: Bool
    public let addEOS: Bool
    /// SentencePiece space prefix (see `TokenizerConfiguration.addSpacePrefix`).
    public let addSpacePrefix: Bool
    /// Tokens that end generation: EOS, EOT, EOM and tokens spelled like an end of turn.
    public let endOfGenerationIDs: Set<Int>
    /// The model's chat template; nil when the model has none or it does not parse.
    public let chatTemplate: ChatTemplate?
    /// Why the model's chat template could not be used, when it has one that does not parse
    /// (only with `keepInvalidTemplate`; otherwise the initializer throws).
    public let chatTemplateError: TokenizerError?
    /// How text is split before BPE (byte-level BPE only; SentencePiece does not split).
    public let preTokenizer: PreTokenizer

    private let tokens: [String]
    private let types: [TokenType]
    private let scores: [Float]
    /// Raw bytes each token decodes to.
    private let decodedBytes: [[UInt8]]
    /// Token spelling (UTF-8 bytes, so canonically equivalent strings stay distinct) -> id.
    private let idsBySpelling: [[UInt8]: Int]
    private let encoder: BytePairEncoder?
    private let sentencePiece: SentencePieceEncoder?
    private let gemma4: Gemma4Encoder?
    /// Byte-to-unicode spelling of each byte, for whole-piece lookups (`ignoresMerges`).
    private let byteSpellings: [[UInt8]]
    private let specials: SpecialTokenMatcher
    private let rightStrip: Set<Int32>
    private let leftStrip: Set<Int32>
    private let cache = Mutex<[[UInt8]: [Int32]]>([:])

    /// Bounds on the piece cache so a long-running server does not grow without limit.
    private static let cacheCapacity = 1 << 16
    private static let maxCachedPieceBytes = 64

    /// Spellings that mark a token as ending a turn (llama.cpp's list, in part).
    static let endOfTurnSpellings: Set<String> = [
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>", "<turn|>",
    ]

    /// Creates a byte-level BPE tokenizer from GGUF-style vocabulary arrays.
    /// - Parameters:
    ///   - tokens: token spellings, indexed by id (GPT-2 byte-to-unicode spelling).
    ///   - tokenTypes: `TokenType` raw values per token (0 is read as normal), or empty for all normal.
    ///   - merges: BPE merges `"left right"` in rank order (first merges first).
    ///   - preTokenizer: GGUF `tokenizer.ggml.pre` name (see `PreTokenizer`).
    ///   - bosID: beginning-of-sequence id, if any.
    ///   - eosID: end-of-sequence id, if any.
    ///   - chatTemplate: the Jinja chat template source, if any; it gets the BOS and EOS token
    ///     texts as `bos_token` and `eos_token`.
    ///   - keepInvalidTemplate: a template that does not parse leaves `chatTemplate` nil and its
    ///     error in `chatTemplateError` instead of failing the initializer.
    /// - Throws: `TokenizerError` describing the first inconsistency found.
    public convenience init(tokens: [String], tokenTypes: [Int32], merges: [String], preTokenizer: String,
                            bosID: Int?, eosID: Int?, chatTemplate: String?, keepInvalidTemplate: Bool = false) throws {
        var configuration = TokenizerConfiguration(model: .bytePair, tokens: tokens)
        configuration.tokenTypes = tokenTypes
        configuration.merges = merges
        configuration.preTokenizer = preTokenizer
        configuration.bosID = bosID
        configuration.eosID = eosID
        configuration.chatTemplate = chatTemplate
        try self.init(configuration, keepInvalidTemplate: keepInvalidTemplate)
    }

    /// Creates a tokenizer from a full configuration.
    /// - Throws: `TokenizerError` describing the first inconsistency found.
    public init(_ configuration: TokenizerConfiguration, keepInvalidTemplate: Bool = false) throws {
        let tokens = configuration.tokens
        guard !tokens.isEmpty else { throw TokenizerError.emptyVocabulary }
        let tokenTypes = configuration.tokenTypes
        guard tokenTypes.isEmpty || tokenTypes.count == tokens.count else {
            throw TokenizerError.tokenTypeCountMismatch(tokens: tokens.count, types: tokenTypes.count)
        }
        guard configuration.scores.isEmpty || configuration.scores.count == tokens.count else {
            throw TokenizerError.scoreCountMismatch(tokens: tokens.count, scores: configuration.scores.count)
        }
        let named: [(String, Int?)] = [("BOS", configuration.bosID), ("EOS", configuration.eosID),
                                       ("EOT", configuration.eotID), ("EOM", configuration.eomID),
                                       ("unknown", configuration.unknownID), ("padding", configuration.paddingID)]
        for (name, id) in named {
            if let id, !tokens.indices.contains(id) {
                throw TokenizerError.specialIDOutOfRange(name: name, id: id, vocabularySize: tokens.count)
            }
        }
        if configuration.addBOS && configuration.bosID == nil { throw TokenizerError.missingSpecialToken("BOS") }
        if configuration.addEOS && configuration.eosID == nil { throw TokenizerError.missingSpecialToken("EOS") }
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

        // End of generation: EOS, EOT, EOM, and every token spelled like an end of turn.
        let spelledEndOfTurn = tokens.indices.filter { Self.endOfTurnSpellings.contains(tokens[$0]) }
        let eotID = configuration.eotID ?? spelledEndOfTurn.first
        let eomID = configuration.eomID ?? spellings[Array("<|eom_id|>".utf8)]
        var endOfGeneration = Set(spelledEndOfTurn)
        for id in [configuration.eosID, eotID, eomID] { if let id { endOfGeneration.insert(id) } }

        let model = configuration.model
        self.model = model
        self.tokens = tokens
        self.types = types
        self.scores = configuration.scores.isEmpty ? Array(repeating: 0, count: tokens.count) : configuration.scores
        self.idsBySpelling = spellings
        let decoded = zip(tokens, types).map { Self.rawBytes(of: $0, type: $1, model: model) }
        self.decodedBytes = decoded
        self.preTokenizer = try PreTokenizer(name: model == .bytePair ? configuration.preTokenizer : "default")
        self.bosID = configuration.bosID
        self.eosID = configuration.eosID
        self.eotID = eotID
        self.unknownID = configuration.unknownID
        self.paddingID = configuration.paddingID
        self.addBOS = configuration.addBOS
        self.addEOS = configuration.addEOS
        self.addSpacePrefix = configuration.addSpacePrefix
        self.endOfGenerationIDs = endOfGeneration
        let text = { (id: Int?) in id.map { String(decoding: decoded[$0], as: UTF8.self) } }
        do {
            self.chatTemplate = try configuration.chatTemplate.map { source throws(TokenizerError) in
                try ChatTemplate(template: source, bosToken: text(configuration.bosID), eosToken: text(configuration.eosID))
            }
            self.chatTemplateError = nil
        } catch {
            guard keepInvalidTemplate else { throw error }
            self.chatTemplate = nil
            self.chatTemplateError = error
        }
        // Tokens that end generation are matched as control tokens even if typed otherwise.
        self.specials = SpecialTokenMatcher(tokens: tokens, types: types,
                                            forcedControl: endOfGeneration.filter { types[$0] != .control })
        self.rightStrip = Set(configuration.rightStripIDs.map(Int32.init))
        self.leftStrip = Set(configuration.leftStripIDs.map(Int32.init))
        self.byteSpellings = (0..<256).map { Array(String(ByteLevel.byteToScalar[$0]).utf8) }

        // A byte is spelled by a `<0xNN>` byte token, else by its byte-to-unicode scalar (BPE)
        // or the one-byte token (SentencePiece).
        let byteTokens: [Int32] = (0..<256).map { byte in
            let hex = String(byte, radix: 16, uppercase: true)
            let spelled = Array("<0x\(hex.count == 1 ? "0" + hex : hex)>".utf8)
            let plain = model == .bytePair ? Array(String(ByteLevel.byteToScalar[byte]).utf8) : [UInt8(byte)]
            return Int32((model == .bytePair ? spellings[plain] ?? spellings[spelled]
                                             : spellings[spelled] ?? spellings[plain]) ?? -1)
        }
        let unknown = (configuration.unknownID ?? types.firstIndex(of: .unknown)).map(Int32.init)
        switch model {
        case .bytePair:
            self.encoder = try BytePairEncoder(merges: configuration.merges, byteTokens: byteTokens, fallbackID: unknown,
                                               idOf: { spellings[$0] })
            self.sentencePiece = nil
            self.gemma4 = nil
        case .gemma4:
            self.encoder = nil
            self.sentencePiece = nil
            self.gemma4 = Gemma4Encoder(
                encoder: try BytePairEncoder(merges: configuration.merges, byteTokens: byteTokens, fallbackID: unknown,
                                             idOf: { spellings[$0] }),
                byteTokens: byteTokens)
        case .sentencePiece:
            self.encoder = nil
            self.gemma4 = nil
            self.sentencePiece = SentencePieceEncoder(scores: self.scores, byteTokens: byteTokens, unknownID: unknown,
                                                      tokens: tokens)
        }
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

    /// The score of `id` (SentencePiece merge priority; 0 for BPE vocabularies), or nil if out of range.
    public func tokenScore(_ id: Int) -> Float? {
        scores.indices.contains(id) ? scores[id] : nil
    }

    /// Encodes `text` to token ids. No BOS/EOS is added.
    /// - Parameter parseSpecial: when true, control-token spellings in `text` (e.g. `<|im_start|>`)
    ///   become their single id; when false they are encoded as ordinary text (use this for
    ///   chat message content). User-defined tokens are matched either way. A byte the vocabulary
    ///   cannot spell becomes the unknown token, or is dropped when there is none.
    public func encode(_ text: String, parseSpecial: Bool = true) -> [Int] {
        encode(text, addSpecial: false, parseSpecial: parseSpecial)
    }

    /// The start of a sequence the model reads (a prompt, a training example): special tokens
    /// parsed, and BOS first when the model adds one (`addBOS`) unless the text (a rendered chat
    /// template, say) already begins with it.
    public func encodePrompt(_ text: String) -> [Int] {
        let ids = encode(text, addSpecial: false, parseSpecial: true)
        guard addBOS, let bos = bosID, ids.first != bos else { return ids }
        return [bos] + ids
    }

    /// Encodes `text`, adding BOS first and EOS last when `addSpecial` is set and the model
    /// asks for them (`addBOS`, `addEOS`).
    public func encode(_ text: String, addSpecial: Bool, parseSpecial: Bool) -> [Int] {
        let utf8 = Array(text.utf8)
        var out: [Int32] = []
        out.reserveCapacity(utf8.count / 3 + 4)
        if addSpecial && addBOS, let bosID { out.append(Int32(bosID)) }
        utf8.withUnsafeBufferPointer { buffer in
            let cuts = specials.isEmpty ? [] : specials.partition(buffer, parseSpecial: parseSpecial)
            var fragmentStart = 0
            for (position, length, id) in cuts {
                var fragmentEnd = position
                if leftStrip.contains(id) {
                    while fragmentEnd > fragmentStart && Self.isSpace(buffer[fragmentEnd - 1]) { fragmentEnd -= 1 }
                }
                encodeFragment(buffer, fragmentStart, fragmentEnd, into: &out)
                out.append(id)
                fragmentStart = position + length
                if rightStrip.contains(id) {
                    while fragmentStart < buffer.count && Self.isSpace(buffer[fragmentStart]) { fragmentStart += 1 }
                }
            }
            encodeFragment(buffer, fragmentStart, buffer.count, into: &out)
        }
        if addSpecial && addEOS, let eosID { out.append(Int32(eosID)) }
        return out.map(Int.init)
    }

    /// Decodes ids to text: token bytes are concatenated and read as UTF-8, invalid
    /// sequences becoming U+FFFD. Control tokens appear as their literal text; ids outside
    /// the vocabulary are skipped. With `addSpacePrefix`, one leading space of the first
    /// token is dropped (the space encoding added).
    public func decode(_ ids: [Int]) -> String {
        var bytes: [UInt8] = []
        var first = true
        for id in ids where decodedBytes.indices.contains(id) {
            let piece = decodedBytes[id]
            if first && addSpacePrefix && piece.first == 0x20 {
                bytes.append(contentsOf: piece.dropFirst())
            } else {
                bytes.append(contentsOf: piece)
            }
            first = false
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: - Encoding internals

    /// C `isspace`: space, tab, line feed, vertical tab, form feed, carriage return.
    @inline(__always)
    private static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || (0x09...0x0D).contains(byte) }

    /// Encodes the text between special tokens, `buffer[lo..<hi]`.
    private func encodeFragment(_ buffer: UnsafeBufferPointer<UInt8>, _ lo: Int, _ hi: Int,
                                into out: inout [Int32]) {
        if lo >= hi { return }
        if let gemma4 {
            gemma4.encode(buffer[lo..<hi], idOf: { idsBySpelling[$0] }, into: &out)
            return
        }
        if let sentencePiece {
            // Every text fragment is the first or follows a special token, so with a space
            // prefix each one gets a space first; then every space becomes U+2581.
            var text: [UInt8] = []
            text.reserveCapacity(hi - lo + 3)
            if addSpacePrefix { text.append(contentsOf: [0xE2, 0x96, 0x81]) }
            for byte in buffer[lo..<hi] {
                if byte == 0x20 { text.append(contentsOf: [0xE2, 0x96, 0x81]) } else { text.append(byte) }
            }
            sentencePiece.encode(text, idOf: { idsBySpelling[$0] }, into: &out)
            return
        }
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
        guard let encoder else { return }
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
        if preTokenizer.ignoresMerges, let whole = idsBySpelling[bytes.flatMap { byteSpellings[Int($0)] }] {
            ids = [Int32(whole)]
        } else {
            encoder.encode(bytes, into: &ids)
        }
        out.append(contentsOf: ids)
        if cacheable {
            cache.withLock { cache in
                if cache.count >= Self.cacheCapacity { cache.removeAll(keepingCapacity: true) }
                cache[bytes] = ids
            }
        }
    }

    /// The bytes a token decodes to: for normal tokens the byte-to-unicode spelling reversed
    /// (BPE) or `▁` read as a space (SentencePiece); the byte for `<0xNN>` byte tokens; the
    /// literal text for special tokens.
    private static func rawBytes(of token: String, type: TokenType, model: TokenizerConfiguration.Model) -> [UInt8] {
        switch type {
        case .normal:
            if model == .bytePair { return ByteLevel.decode(token) }
            var bytes: [UInt8] = []
            let utf8 = Array(token.utf8)
            bytes.reserveCapacity(utf8.count)
            var index = 0
            while index < utf8.count {
                if index + 2 < utf8.count && utf8[index] == 0xE2 && utf8[index + 1] == 0x96 && utf8[index + 2] == 0x81 {
                    bytes.append(0x20)
                    index += 3
                } else {
                    bytes.append(utf8[index])
                    index += 1
                }
            }
            return bytes
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
