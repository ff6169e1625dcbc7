/// Keys and values of one sequence, per layer: `count` rows of kvDim floats each. Storage
/// grows in steps (up to the context length) so short sequences stay small.
public final class KVCache {
    public let layers: Int
    public let kvDim: Int
    public let limit: Int
    public private(set) var count = 0
    private(set) var capacity = 0
    private var keys: [UnsafeMutablePointer<Float>] = []
    private var values: [UnsafeMutablePointer<Float>] = []

    public convenience init(config: LlamaConfig) {
        self.init(layers: config.layers, kvDim: config.kvDim, limit: config.contextLength)
    }

    deinit {
        for p in keys { p.deallocate() }
        for p in values { p.deallocate() }
    }

    /// Makes room for `extra` more positions.
    func reserve(_ extra: Int) throws {
        let needed = count + extra
        guard needed <= limit else { throw ModelError.contextFull(needed: needed, limit: limit) }
        guard needed > capacity else { return }
        let newCapacity = min(limit, max(needed, capacity * 2, 256))
        func grow(_ old: [UnsafeMutablePointer<Float>]) -> [UnsafeMutablePointer<Float>] {
            (0..<layers).map { l in
                let p = UnsafeMutablePointer<Float>.allocate(capacity: newCapacity * kvDim)
                if l < old.count {
                    p.update(from: old[l], count: count * kvDim)
                    old[l].deallocate()
                }
                return p
            }
        }
        keys = grow(keys)
        values = grow(values)
        capacity = newCapacity
    }

    func keys(_ layer: Int) -> UnsafeMutablePointer<Float> { keys[layer] }
    func values(_ layer: Int) -> UnsafeMutablePointer<Float> { values[layer] }

    func advance(_ n: Int) { count += n }

    /// Forgets everything from position `n` on (e.g. to reuse a shared prompt prefix).
    public func truncate(to n: Int) { count = min(count, max(0, n)) }

    /// A copy of the first `n` positions of `source`, holding exactly those (no room to grow
    /// beyond them without reallocating).
    public convenience init(copying n: Int, of source: KVCache) {
        precondition(n >= 0 && n <= source.count, "copying \(n) of \(source.count) positions")
        self.init(layers: source.layers, kvDim: source.kvDim, limit: source.limit)
        keys = (0..<layers).map { _ in .allocate(capacity: n * kvDim) }
        values = (0..<layers).map { _ in .allocate(capacity: n * kvDim) }
        capacity = n
        copy(n, from: source)
    }

    /// Replaces this cache's contents with the first `n` positions of `source` (same shape).
    public func load(_ n: Int, of source: KVCache) throws {
        precondition(layers == source.layers && kvDim == source.kvDim, "caches of different models")
        precondition(n >= 0 && n <= source.count, "loading \(n) of \(source.count) positions")
        count = 0
        try reserve(n)
        copy(n, from: source)
    }

    private func copy(_ n: Int, from source: KVCache) {
        for l in 0..<layers {
            keys[l].update(from: source.keys[l], count: n * kvDim)
            values[l].update(from: source.values[l], count: n * kvDim)
        }
        count = n
    }

    /// Bytes one position takes (its keys and values in every layer).
    public var bytesPerPosition: Int { 2 * layers * kvDim * MemoryLayout<Float>.stride }

    /// Bytes allocated for keys and values.
    public var byteCount: Int { capacity * bytesPerPosition }

    private init(layers: Int, kvDim: Int, limit: Int) {
        self.layers = layers
        self.kvDim = kvDim
        self.limit = limit
    }
}
