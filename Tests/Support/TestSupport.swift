import Foundation

/// Where test data lives, found from this source file so tests run from any directory.
public enum TestData {
    /// The repository root.
    public static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `Tests/Fixtures/<path>`.
    public static func fixture(_ path: String) -> URL {
        root.appendingPathComponent("Tests/Fixtures").appendingPathComponent(path)
    }

    /// The real SmolLM2 model for parity tests: $GRAFT_TEST_MODEL, else the copy `graft pull`
    /// puts in the repository's hub. Nil when absent.
    public static var realModelPath: String? {
        let env = ProcessInfo.processInfo.environment
        let path = env["GRAFT_TEST_MODEL"]
            ?? root.appendingPathComponent("Registry/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf").path
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }

    /// Parity tests run when the model is present; with GRAFT_REQUIRE_MODEL=1 (as in CI) its
    /// absence is a failure rather than a skip.
    public static var realModelRequired: Bool {
        ProcessInfo.processInfo.environment["GRAFT_REQUIRE_MODEL"] == "1"
    }

    public static var runRealModelTests: Bool { realModelPath != nil || realModelRequired }

    /// Raw little-endian float32 values of a fixture file.
    public static func floats(_ path: String) throws -> [Float] {
        let data = try Data(contentsOf: fixture(path))
        return data.withUnsafeBytes { raw in
            (0..<data.count / 4).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
        }
    }
}

/// Runs `body` on a thread of its own while the calling test waits suspended. Swift's shared
/// concurrency threads are as many as the cores (two here); a long CPU-bound or waiting test
/// that held them would stall every test that runs a server on them.
public func onOwnThread<T>(_ body: @escaping () throws -> T) async throws -> T {
    let handoff = Handoff(body)
    try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, any Error>) in
        let thread = Thread {
            do { handoff.result = try handoff.body(); done.resume() } catch { done.resume(throwing: error) }
        }
        thread.stackSize = 16 << 20
        thread.start()
    }
    return handoff.result!
}

/// `onOwnThread`'s closure and result. Unchecked: the caller is suspended until the thread has
/// finished with both, so they are never used from two threads at once.
private final class Handoff<T>: @unchecked Sendable {
    let body: () throws -> T
    var result: T?
    init(_ body: @escaping () throws -> T) { self.body = body }
}
