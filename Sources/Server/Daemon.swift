import Engine
import Foundation
import Hub
import Hummingbird
import HummingbirdCore
import LlamaModel
import Logging
import ServiceLifecycle
import Synchronization

/// Builds the router: middleware (request log, error shape, authentication) and every route.
public func makeRouter(_ server: GraftServer) -> Router<GraftContext> {
    let router = Router(context: GraftContext.self)
    let routes = RouteBook(router: router, table: RouteTable())
    router.add(middleware: RequestLogMiddleware(server: server))
    router.add(middleware: APIErrorMiddleware(routes: routes.table))
    router.add(middleware: AuthMiddleware(server: server))
    registerServiceRoutes(routes, server)
    registerInferenceRoutes(routes, server)
    registerAdapterRoutes(routes, server)
    registerFileRoutes(routes, server)
    registerJobRoutes(routes, server)
    return router
}

/// HTTP/1.1 with the daemon's limits: idle timeout, header limits, and a close as soon as the
/// client closes its side.
public func httpServer(_ server: GraftServer, listen: ListenOptions) -> HTTPServerBuilder {
    .http1(configuration: .init(
        additionalChannelHandlers: [ClientCloseHandler()],
        idleTimeout: .seconds(server.configuration.idleTimeoutSeconds),
        httpDecoderConfiguration: .init(maxHeaderFieldSize: listen.maxHeaderBytes, maxHeaderListSize: listen.maxHeaderBytes,
                                        maxHeaderFieldCount: listen.maxHeaderCount)))
}

/// How `graftd` listens.
public struct ListenOptions: Sendable {
    public var socketPath: String
    /// Group allowed to connect (mode 0660); nil keeps the socket owner-only (0600).
    public var socketGroup: String?
    public var maxHeaderBytes = 32 << 10
    public var maxHeaderCount = 100

    public init(socketPath: String, socketGroup: String? = nil) {
        self.socketPath = socketPath
        self.socketGroup = socketGroup
    }
}

public enum DaemonError: Error, CustomStringConvertible {
    case alreadyRunning(String)
    case socket(String)

    public var description: String {
        switch self {
        case .alreadyRunning(let path): return "another graftd is already serving \(path); stop it first or choose another --socket"
        case .socket(let s): return s
        }
    }
}

/// Runs the daemon until SIGTERM or SIGINT, then drains: the listener closes, requests in
/// flight finish (up to `drainSeconds`), the engine stops and the socket file is removed.
public func runDaemon(_ server: GraftServer, listen: ListenOptions, handle: DaemonHandle? = nil,
                      onListening: @escaping @Sendable () -> Void = {}) async throws {
    let path = listen.socketPath
    let lock = try SocketGuard(path: path)
    defer { lock.release() }
    let gid = try listen.socketGroup.map(groupID)

    // The socket is created by bind() with mode 0777 & ~umask: with this umask it is never
    // wider than 0600 (0660 with a group), not even for an instant.
    let previousMask = umask(listen.socketGroup == nil ? 0o177 : 0o117)
    let logger = server.logger
    let app = Application(
        router: makeRouter(server),
        server: httpServer(server, listen: listen),
        configuration: .init(address: .unixDomainSocket(path: path), serverName: "graftd"),
        onServerRunning: { _ in
            umask(previousMask)
            if let gid, chown(path, uid_t.max, gid) != 0 {
                logger.error("cannot give the socket to group \(listen.socketGroup ?? ""): \(String(cString: strerror(errno)))")
            }
            logger.info("graftd listening on \(path) (model \(server.configuration.baseModelName))")
            onListening()
        },
        logger: logger)
    server.training.recover()
    let service = DaemonService(app: app, server: server, drainSeconds: server.configuration.drainSeconds, logger: logger)
    var config = ServiceGroupConfiguration(services: [service], gracefulShutdownSignals: [.sigterm, .sigint],
                                           cancellationSignals: [], logger: logger)
    config.maximumGracefulShutdownDuration = .seconds(server.configuration.drainSeconds + 5)
    config.maximumCancellationDuration = .seconds(10)
    let group = ServiceGroup(configuration: config)
    await handle?.attach(group)
    do {
        try await group.run()
    } catch {
        umask(previousMask)
        unlink(path)
        throw error
    }
    unlink(path)
    logger.info("graftd stopped; removed \(path)")
}

/// Stops a daemon started with `runDaemon` the way SIGTERM does (for embedding and tests).
public final class DaemonHandle: Sendable {
    private let state = Mutex<(group: ServiceGroup?, stopRequested: Bool)>((nil, false))

    public init() {}

    func attach(_ group: ServiceGroup) async {
        let stop = state.withLock { s -> Bool in s.group = group; return s.stopRequested }
        if stop { await group.triggerGracefulShutdown() }
    }

    /// Begins the graceful shutdown: requests in flight finish, then `runDaemon` returns.
    public func stop() async {
        let group = state.withLock { s -> ServiceGroup? in s.stopRequested = true; return s.group }
        await group?.triggerGracefulShutdown()
    }
}

/// The HTTP application plus the engine's drain: on shutdown new requests get 503, those in
/// flight finish, then the engine stops.
struct DaemonService: Service {
    let app: Application<RouterResponder<GraftContext>>
    let server: GraftServer
    let drainSeconds: Double
    let logger: Logger

    func run() async throws {
        try await withGracefulShutdownHandler {
            try await app.run()
        } onGracefulShutdown: {
            logger.info("shutting down: finishing requests in flight (up to \(Int(drainSeconds)) s)")
            server.engine.beginDraining()
        }
        // Training stops first: running jobs checkpoint after their current step.
        await server.training.stop()
        let engine = server.engine
        if !(await engine.waitUntilIdle(timeout: drainSeconds)) {
            logger.warning("requests still running after \(Int(drainSeconds)) s were ended")
        }
        engine.shutdown()
    }
}

/// One daemon per socket: an advisory lock beside it, and a live-socket check so a second
/// daemon is refused while a stale socket file from a crash is simply replaced.
final class SocketGuard: Sendable {
    private let fd: Int32

    init(path: String) throws {
        guard path.utf8.count < 100 else { throw DaemonError.socket("the socket path is too long (at most 99 bytes): \(path)") }
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        fd = open(path + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw DaemonError.socket("cannot open \(path).lock: \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw DaemonError.alreadyRunning(path)
        }
        var st = stat()
        if lstat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFSOCK else {
                throw DaemonError.socket("\(path) exists and is not a socket; remove it or choose another --socket")
            }
            if socketAnswers(path) { throw DaemonError.alreadyRunning(path) }
        }
    }

    func release() {
        flock(fd, LOCK_UN)
        close(fd)
    }
}

/// Whether something accepts connections on the Unix socket at `path`.
public func socketAnswers(_ path: String) -> Bool {
    let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    guard s >= 0 else { return false }
    defer { close(s) }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        for (i, b) in bytes.enumerated() { raw[i] = b }
        raw[bytes.count] = 0
    }
    let result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    return result == 0
}

private func groupID(_ name: String) throws -> gid_t {
    if let n = gid_t(name) { return n }
    guard let g = getgrnam(name) else { throw DaemonError.socket("no group named '\(name)'") }
    return g.pointee.gr_gid
}

/// What `graftd` and `graft serve` are asked to do.
public struct DaemonSettings: Sendable {
    public var registry: URL
    public var model: String?
    public var socketPath: String?
    public var socketGroup: String?
    public var limits = EngineLimits()
    public var maxBodyBytes = 64 << 20
    public var adapterCacheBytes = 512 << 20
    public var idleTimeoutSeconds: Int64 = 30
    public var drainSeconds = 30.0
    public var maxFileBytes = 512 << 20
    public var trainingSlots = 1
    public var maxQueuedJobsPerTenant = 8

    public init(registry: URL) { self.registry = registry }
}

/// Pulls the base model if the hub lacks it, loads it, and serves until told to stop.
public func startDaemon(_ settings: DaemonSettings, mergeMethods: [any MergeMethod], logger: Logger) async throws {
    let hub = Hub(root: settings.registry)
    let socketPath = settings.socketPath ?? hub.root.appendingPathComponent("graftd.sock").path
    if FileManager.default.fileExists(atPath: socketPath), socketAnswers(socketPath) {
        throw DaemonError.alreadyRunning(socketPath)
    }
    let modelPath: URL, name: String, sha256: String?
    if let file = settings.model, file.hasSuffix(".gguf") || file.contains("/") {
        // A model file outside the hub: named after the file, with no digest to check adapters against.
        modelPath = URL(fileURLWithPath: file)
        name = modelPath.deletingPathExtension().lastPathComponent
        sha256 = nil
    } else {
        do {
            modelPath = try hub.modelPath(settings.model)
        } catch HubError.notPulled {
            logger.info("the base model is not in the hub yet; pulling it")
            _ = try hub.pull(settings.model) { logger.info("\($0)") }
            modelPath = try hub.modelPath(settings.model)
        }
        let entry = try hub.catalog().model(named: settings.model)
        (name, sha256) = (entry.name, entry.sha256)
    }
    let t0 = Clock.now
    let model = try LlamaModel(path: modelPath.path)
    logger.info("loaded \(name) in \(String(format: "%.2f", Clock.now - t0)) s")
    var configuration = ServerConfiguration(baseModelName: name, baseModelSHA256: sha256)
    configuration.maxBodyBytes = settings.maxBodyBytes
    configuration.adapterCacheBytes = settings.adapterCacheBytes
    configuration.idleTimeoutSeconds = settings.idleTimeoutSeconds
    configuration.drainSeconds = settings.drainSeconds
    configuration.maxFileBytes = settings.maxFileBytes
    configuration.trainingSlots = settings.trainingSlots
    configuration.maxQueuedJobsPerTenant = settings.maxQueuedJobsPerTenant
    let server = GraftServer(hub: hub, engine: InferenceEngine(model: model, limits: settings.limits),
                             configuration: configuration, mergeMethods: mergeMethods, logger: logger)
    try await runDaemon(server, listen: ListenOptions(socketPath: socketPath, socketGroup: settings.socketGroup))
}
