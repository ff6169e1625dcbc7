import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes files so that the destination name only ever refers to complete content.
///
/// Data goes to a hidden temporary file created next to the destination (`O_CREAT|O_EXCL`,
/// named `.<name>.<random>.tmp`), which is flushed with `fsync`, renamed over the destination
/// and followed by an `fsync` of the directory. On any error the temporary file is removed,
/// so nothing partial is left under the final name or beside it. Parent directories are
/// created as needed, which suits nested layouts such as
/// `tenants/<tenant>/adapters/<name>/<version>`.
public enum AtomicFile {
    /// Atomically writes `contents` to `url`.
    /// - Parameters:
    ///   - permissions: the mode of the new file (before the umask).
    ///   - replaceExisting: when false, an existing file at `url` is kept and
    ///     `HubError.alreadyExists` is thrown (useful for immutable versions).
    public static func write(to url: URL, contents: some DataProtocol,
                             permissions: mode_t = 0o644, replaceExisting: Bool = true) throws {
        try write(to: url, permissions: permissions, replaceExisting: replaceExisting) { writer in
            try writer.write(contents)
        }
    }

    /// Atomically creates `url` from what `body` writes through the writer it is given.
    ///
    /// The file appears under its final name only if `body` returns normally and the data
    /// reached the disk; if `body` throws, the temporary file is removed and the error rethrown.
    /// The writer must not be used after `body` returns.
    @discardableResult
    public static func write<Result>(to url: URL, permissions: mode_t = 0o644, replaceExisting: Bool = true,
                                     _ body: (AtomicFileWriter) throws -> Result) throws -> Result {
        let destination = url.standardizedFileURL
        let directory = destination.deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw HubError.io(path: directory.path, message: "cannot create the directory: \(error.localizedDescription)")
        }
        let writer = try AtomicFileWriter(destination: destination, permissions: permissions)
        do {
            let result = try body(writer)
            try writer.commit(replaceExisting: replaceExisting)
            return result
        } catch {
            writer.abandon()
            throw error
        }
    }
}

extension AtomicFile {
    /// A writer for data that arrives in pieces over time (an upload): `commit` it to make the
    /// file appear whole, or `abandon` it (also done when it is released uncommitted).
    public static func begin(_ url: URL, permissions: mode_t = 0o644) throws -> AtomicFileWriter {
        let destination = url.standardizedFileURL
        try FileManager.default.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
        return try AtomicFileWriter(destination: destination, permissions: permissions)
    }
}

/// The writing end of an atomic file; obtained from `AtomicFile.write(to:permissions:replaceExisting:_:)`.
public final class AtomicFileWriter {
    /// The final path the file will have once committed.
    public let destination: URL
    /// The hidden temporary file being written.
    public let temporaryPath: String
    /// How many bytes were written so far.
    public private(set) var bytesWritten: UInt64 = 0

    private var descriptor: Int32
    private var temporaryExists = true

    fileprivate init(destination: URL, permissions: mode_t) throws {
        self.destination = destination
        let directory = destination.deletingLastPathComponent().path
        let name = destination.lastPathComponent
        var attempt = 0
        while true {
            let token = String(UInt64.random(in: 0 ... UInt64.max), radix: 36)
            let candidate = (directory as NSString).appendingPathComponent(".\(name).\(token).tmp")
            let fd = open(candidate, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, permissions)
            if fd >= 0 {
                self.descriptor = fd
                self.temporaryPath = candidate
                return
            }
            let code = errno
            attempt += 1
            if code == EINTR || (code == EEXIST && attempt < 16) { continue }
            throw HubError.io(path: candidate, message: errnoMessage(code))
        }
    }

    deinit { abandon() }

    /// Appends the bytes of `buffer`.
    public func write(_ buffer: UnsafeRawBufferPointer) throws {
        guard descriptor >= 0 else {
            throw HubError.io(path: temporaryPath, message: "the file was already committed or abandoned")
        }
        let code = writeAll(descriptor, buffer)
        guard code == 0 else { throw HubError.io(path: temporaryPath, message: errnoMessage(code)) }
        bytesWritten += UInt64(buffer.count)
    }

    /// Appends `bytes`.
    public func write(_ bytes: some DataProtocol) throws {
        for region in bytes.regions {
            try region.withUnsafeBytes { try write($0) }
        }
    }

    /// Flushes, closes and moves the temporary file into place, then flushes the directory.
    public func commit(replaceExisting: Bool) throws {
        guard descriptor >= 0 else {
            throw HubError.io(path: temporaryPath, message: "the file was already committed or abandoned")
        }
        guard fsync(descriptor) == 0 else { throw HubError.io(path: temporaryPath, message: errnoMessage()) }
        let fd = descriptor
        descriptor = -1
        guard close(fd) == 0 else { throw HubError.io(path: temporaryPath, message: errnoMessage()) }

        let finalPath = destination.path
        if replaceExisting {
            guard rename(temporaryPath, finalPath) == 0 else { throw HubError.io(path: finalPath, message: errnoMessage()) }
        } else {
            // link(2) fails with EEXIST instead of replacing, which rename(2) cannot do portably.
            guard link(temporaryPath, finalPath) == 0 else {
                let code = errno
                if code == EEXIST { throw HubError.alreadyExists(path: finalPath) }
                throw HubError.io(path: finalPath, message: errnoMessage(code))
            }
            unlink(temporaryPath)
        }
        temporaryExists = false
        try Self.syncDirectory(destination.deletingLastPathComponent().path)
    }

    /// Closes and removes the temporary file if it still exists.
    public func abandon() {
        if descriptor >= 0 {
            close(descriptor)
            descriptor = -1
        }
        if temporaryExists {
            unlink(temporaryPath)
            temporaryExists = false
        }
    }

    /// Makes a rename in `path` durable. File systems that cannot sync directories are tolerated.
    static func syncDirectory(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw HubError.io(path: path, message: errnoMessage()) }
        defer { close(fd) }
        if fsync(fd) != 0 {
            let code = errno
            if code == EINVAL || code == ENOTSUP || code == EBADF { return }
            throw HubError.io(path: path, message: errnoMessage(code))
        }
    }
}
