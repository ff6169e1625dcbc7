import AdapterFormat
import Foundation
import LlamaModel
import Synchronization

/// Resolves adapter ids to adapters ready for the forward pass, keeping recently used ones in
/// memory up to a byte budget (least recently used out first). A cached entry is keyed by
/// its exact version, so publishing a new version never changes one in use.
public final class AdapterLoader: @unchecked Sendable {
    public let hub: Hub
    public let config: LlamaConfig
    /// SHA-256 of the loaded base model, when known: adapters made for another base are refused.
    public let baseModelSHA256: String?
    public let budgetBytes: Int

    private struct Entry { var adapter: PreparedAdapter; var info: AdapterInfo; var stamp: [UInt64]; var lastUse: UInt64 }
    private struct State { var entries: [AdapterID: Entry] = [:]; var clock: UInt64 = 0; var bytes = 0
                           var hits = 0; var misses = 0; var reads = 0; var reading = 0; var mostReading = 0 }
    private let state = Mutex(State())
    private let inFlight = Mutex<[AdapterID: Task<Loaded, any Error>]>([:])
    /// The last read started by the async `load`; the next one waits for it.
    private let readQueue = Mutex<Task<Void, Never>?>(nil)

    public init(hub: Hub, config: LlamaConfig, baseModelSHA256: String?, budgetBytes: Int = 256 << 20) {
        self.hub = hub; self.config = config
        self.baseModelSHA256 = baseModelSHA256; self.budgetBytes = budgetBytes
    }

    public struct Loaded: Sendable {
        public var id: AdapterID
        public var adapter: PreparedAdapter
        public var info: AdapterInfo
        /// True when it came from memory.
        public var cached: Bool
    }

    /// The adapter `id` names (newest version if none), from memory or from disk.
    public func load(_ id: AdapterID, as tenant: String? = nil) throws -> Loaded {
        try load(resolved: hub.resolveAdapter(id, as: tenant))
    }

    /// A version resolved earlier; `notFound` if it was deleted since.
    public func load(resolved stored: StoredAdapter) throws -> Loaded {
        try cached(stored) ?? read(stored)
    }

    /// As `load`, for concurrent callers: requests that miss on the same version wait for one
    /// read of it instead of each reading the file.
    public func load(_ id: AdapterID, as tenant: String? = nil) async throws -> Loaded {
        let stored = try hub.resolveAdapter(id, as: tenant)
        if let hit = cached(stored) { return hit }
        let (task, first) = inFlight.withLock { map -> (Task<Loaded, any Error>, Bool) in
            if let running = map[stored.id] { return (running, false) }
            // Reads of different versions take turns: each holds the file and its decoded
            // values (about three times the prepared size) until it is prepared, and two
            // cores gain nothing from several at once.
            let task = readQueue.withLock { tail in
                let previous = tail
                let task = Task.detached {
                    await previous?.value
                    return try self.read(stored)
                }
                tail = Task { _ = await task.result }
                return task
            }
            map[stored.id] = task
            return (task, true)
        }
        defer { if first { inFlight.withLock { $0[stored.id] = nil } } }
        var loaded = try await task.value
        if !first { loaded.cached = true }
        return loaded
    }

    private func cached(_ stored: StoredAdapter) -> Loaded? {
        state.withLock { s -> Loaded? in
            guard var e = s.entries[stored.id], e.stamp == stored.stamp else { s.misses += 1; return nil }
            s.clock += 1
            s.hits += 1
            e.lastUse = s.clock
            s.entries[stored.id] = e
            return Loaded(id: stored.id, adapter: e.adapter, info: e.info, cached: true)
        }
    }

    private func read(_ stored: StoredAdapter) throws -> Loaded {
        state.withLock { s in
            s.reads += 1
            s.reading += 1
            s.mostReading = max(s.mostReading, s.reading)
        }
        defer { state.withLock { $0.reading -= 1 } }
        let (prepared, info) = try prepare(stored)
        // The file and its decoded Float32 values (about three times the prepared size) are
        // freed now; hand their pages back rather than leave them to the allocator's arenas,
        // which otherwise keep each thread's largest load resident beside the cache.
        releaseFreedMemory()
        state.withLock { s in
            s.clock += 1
            if let old = s.entries[stored.id] { s.bytes -= old.adapter.byteCount }
            s.bytes += prepared.byteCount
            s.entries[stored.id] = Entry(adapter: prepared, info: info, stamp: stored.stamp, lastUse: s.clock)
            while s.bytes > budgetBytes, s.entries.count > 1,
                  let victim = s.entries.filter({ $0.key != stored.id }).min(by: { $0.value.lastUse < $1.value.lastUse }) {
                s.bytes -= victim.value.adapter.byteCount
                s.entries[victim.key] = nil
            }
        }
        return Loaded(id: stored.id, adapter: prepared, info: info, cached: false)
    }

    /// Reads, decodes and prepares one version; what it decoded is freed on return.
    private func prepare(_ stored: StoredAdapter) throws -> (PreparedAdapter, AdapterInfo) {
        func bytes() throws -> [UInt8] {
            do {
                return try readFile(stored.url.path)
            } catch HubError.io where !FileManager.default.fileExists(atPath: stored.url.path) {
                throw AdapterStoreError.notFound(stored.id.description)  // deleted since it was resolved
            }
        }
        let (adapter, info) = try GraftFile.decode(try bytes())  // the file's bytes are freed once decoded
        if let baseModelSHA256, !info.baseModelSHA256.isEmpty, info.baseModelSHA256 != baseModelSHA256 {
            throw AdapterError.wrongBase("\(stored.id) was made for base model \(info.baseModel) (sha256 \(info.baseModelSHA256.prefix(12))…), not the loaded one (sha256 \(baseModelSHA256.prefix(12))…)")
        }
        return (try PreparedAdapter(adapter, config: config, valuesChecked: true), info)  // decode rejects non-finite values
    }

    /// Bytes held by cached adapters.
    public var cachedBytes: Int { state.withLock { $0.bytes } }
    public var cachedCount: Int { state.withLock { $0.entries.count } }
    /// Lookups served from memory, lookups that were not, and files read.
    public var counts: (hits: Int, misses: Int, reads: Int) { state.withLock { ($0.hits, $0.misses, $0.reads) } }
    /// The most files that were being read and prepared at the same time.
    public var mostReadsAtOnce: Int { state.withLock { $0.mostReading } }
}

/// The whole file (or its first `limit` bytes), read straight into an array (no
/// intermediate `Data` copy).
func readFile(_ path: String, limit: Int = .max) throws -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw HubError.io(path: path, message: String(cString: strerror(errno))) }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0 else { throw HubError.io(path: path, message: String(cString: strerror(errno))) }
    let size = min(Int(st.st_size), limit)
    var failure: Int32 = 0
    let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
        var done = 0
        while done < size {
            let n = read(fd, buffer.baseAddress! + done, size - done)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { failure = n < 0 ? errno : EIO; break }
            done += n
        }
        count = done
    }
    guard failure == 0, bytes.count == size else {
        throw HubError.io(path: path, message: failure != 0 ? String(cString: strerror(failure)) : "file shrank while reading")
    }
    return bytes
}

/// Returns the heap's free pages to the system (glibc's `malloc_trim`, looked up at run time,
/// so other C libraries simply skip it).
func releaseFreedMemory() {
    _ = trimHeap?(0)
}

private let trimHeap: (@convention(c) (Int) -> Int32)? = {
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return nil }
    return unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
}()
