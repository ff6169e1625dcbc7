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

    public init(config: LlamaConfig) {
        layers = config.layers
        kvDim = config.kvDim
        limit = config.contextLength
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
}
