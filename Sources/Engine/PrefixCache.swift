import LlamaModel

/// Keys and values of recent prompts, so a request whose prompt starts like an earlier one
/// (the same system prompt, an earlier turn of the conversation, a retry) skips prefilling
/// that part. Keys and values depend on the tokens before them and on the adapters, so an
/// entry serves a prompt only under the same adapter mix, and only for the tokens the two
/// prompts share from the start.
///
/// Owned by the engine thread; not shared. Entries are evicted least recently used first
/// when their bytes pass `capacity`.
public final class PrefixCache {
    /// Identifies an adapter mix by its prepared adapters (never-reused serials) and weights.
    struct MixKey: Hashable {
        let parts: [UInt64]
        init(_ mix: AdapterMix) {
            parts = mix.entries.flatMap { [$0.adapter.serial, UInt64($0.weight.bitPattern)] }
        }
    }

    final class Entry {
        let mix: MixKey
        let tokens: [Int]
        let cache: KVCache
        var lastUse: UInt64
        init(mix: MixKey, tokens: [Int], cache: KVCache, lastUse: UInt64) {
            self.mix = mix; self.tokens = tokens; self.cache = cache; self.lastUse = lastUse
        }
    }

    /// Bytes the entries may hold.
    public let capacity: Int
    /// Prompts shorter than this are not kept: they are cheap to prefill again.
    public let minimumTokens: Int
    private(set) var entries: [Entry] = []
    /// Bytes the entries hold.
    public private(set) var bytes = 0
    private var clock: UInt64 = 0

    public init(capacity: Int, minimumTokens: Int = 8) {
        self.capacity = capacity
        self.minimumTokens = minimumTokens
    }

    /// Fills `cache` (empty) with the longest prefix of `prompt` that an entry for `mix`
    /// holds, leaving at least the prompt's last token to compute (its logits are needed).
    /// Returns the positions filled.
    public func fill(_ cache: KVCache, prompt: [Int], mix: AdapterMix) -> Int {
        guard capacity > 0, prompt.count > minimumTokens else { return 0 }
        let key = MixKey(mix)
        var best: Entry?
        var bestLength = 0
        for e in entries where e.mix == key {
            let n = Self.sharedLength(e.tokens, prompt, limit: prompt.count - 1)
            if n > bestLength { best = e; bestLength = n }
        }
        guard let best, bestLength >= minimumTokens, (try? cache.load(bestLength, of: best.cache)) != nil else { return 0 }
        clock += 1
        best.lastUse = clock
        return bestLength
    }

    /// Keeps the first `prompt.count` positions of `cache` (the whole prompt, prefilled) for
    /// later requests with `mix`. An entry that already holds this prompt is only marked
    /// used; entries this one extends are dropped.
    public func insert(prompt: [Int], from cache: KVCache, mix: AdapterMix) {
        guard capacity > 0, prompt.count >= minimumTokens, prompt.count * cache.bytesPerPosition <= capacity,
              cache.count >= prompt.count else { return }
        let key = MixKey(mix)
        clock += 1
        for e in entries where e.mix == key && e.tokens.count >= prompt.count
            && Self.sharedLength(e.tokens, prompt, limit: prompt.count) == prompt.count {
            e.lastUse = clock
            return
        }
        entries.removeAll { e in
            let covered = e.mix == key && Self.sharedLength(e.tokens, prompt, limit: e.tokens.count) == e.tokens.count
            if covered { bytes -= e.cache.byteCount }
            return covered
        }
        let entry = Entry(mix: key, tokens: prompt, cache: KVCache(copying: prompt.count, of: cache), lastUse: clock)
        entries.append(entry)
        bytes += entry.cache.byteCount
        while bytes > capacity, let oldest = entries.indices.min(by: { entries[$0].lastUse < entries[$1].lastUse }) {
            bytes -= entries[oldest].cache.byteCount
            entries.remove(at: oldest)
        }
    }

    /// The prompts kept, least recently used first.
    public var prompts: [[Int]] { entries.sorted { $0.lastUse < $1.lastUse }.map(\.tokens) }

    /// Tokens `a` and `b` share from the start, at most `limit`.
    static func sharedLength(_ a: [Int], _ b: [Int], limit: Int) -> Int {
        let n = min(a.count, b.count, limit)
        var i = 0
        while i < n && a[i] == b[i] { i += 1 }
        return i
    }
}
