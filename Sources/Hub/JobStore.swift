import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A training job's directory, `tenants/<tenant>/jobs/<id>/`: `config.json`, `state.json`
/// (replaced atomically), `events.jsonl` (appended and fsynced line by line), `loss.svg` and
/// `checkpoints/step-NNNNNNNN/` (each written whole under a temporary name, then renamed).
public struct JobDirectory: Sendable, Equatable {
    public var tenant: String
    public var id: String
    public var url: URL

    public var configURL: URL { url.appendingPathComponent("config.json") }
    public var stateURL: URL { url.appendingPathComponent("state.json") }
    public var eventsURL: URL { url.appendingPathComponent("events.jsonl") }
    public var lossCurveURL: URL { url.appendingPathComponent("loss.svg") }
    public var checkpointsURL: URL { url.appendingPathComponent("checkpoints", isDirectory: true) }

    /// Atomically replaces one of the job's files.
    public func write(_ name: String, _ bytes: some DataProtocol) throws {
        try AtomicFile.write(to: url.appendingPathComponent(name), contents: bytes)
    }

    /// Appends one line to `events.jsonl` and flushes it to disk.
    public func appendEvent(_ line: Data) throws {
        let fd = open(eventsURL.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw HubError.io(path: eventsURL.path, message: String(cString: strerror(errno))) }
        defer { close(fd) }
        var bytes = [UInt8](line)
        if bytes.last != 0x0A { bytes.append(0x0A) }
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count, fsync(fd) == 0 else {
            throw HubError.io(path: eventsURL.path, message: "cannot append an event: \(String(cString: strerror(errno)))")
        }
    }

    /// The events recorded so far, one JSON object per line.
    public func events() -> [Data] {
        guard let data = try? Data(contentsOf: eventsURL) else { return [] }
        return data.split(separator: 0x0A).filter { !$0.isEmpty }.map { Data($0) }
    }

    /// Writes a checkpoint's files as `checkpoints/step-NNNNNNNN/`, all or nothing, and keeps
    /// only the newest `keep` checkpoints.
    @discardableResult
    public func writeCheckpoint(step: Int, files: [String: [UInt8]], keep: Int) throws -> URL {
        let fm = FileManager.default
        let name = String(format: "step-%08d", step)
        let final = checkpointsURL.appendingPathComponent(name, isDirectory: true)
        let temp = checkpointsURL.appendingPathComponent(".\(name).\(UInt32.random(in: 0...UInt32.max)).tmp", isDirectory: true)
        try fm.createDirectory(at: temp, withIntermediateDirectories: true)
        do {
            for (file, bytes) in files {
                try AtomicFile.write(to: temp.appendingPathComponent(file), contents: bytes)
            }
            if fm.fileExists(atPath: final.path) { try fm.removeItem(at: final) }
            guard rename(temp.path, final.path) == 0 else {
                throw HubError.io(path: final.path, message: String(cString: strerror(errno)))
            }
            syncDirectory(checkpointsURL.path)
        } catch {
            try? fm.removeItem(at: temp)
            throw error
        }
        for old in checkpoints().dropLast(keep) { try? fm.removeItem(at: old.url) }
        return final
    }

    /// Complete checkpoints, oldest first.
    public func checkpoints() -> [(step: Int, url: URL)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: checkpointsURL.path)) ?? []
        return names.compactMap { n -> (Int, URL)? in
            guard n.hasPrefix("step-"), let s = Int(n.dropFirst(5)) else { return nil }
            return (s, checkpointsURL.appendingPathComponent(n, isDirectory: true))
        }.sorted { $0.0 < $1.0 }
    }

    /// Removes leftovers of checkpoints whose writing was interrupted.
    public func removeIncompleteCheckpoints() {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: checkpointsURL.path)) ?? []
        for n in names where n.hasPrefix(".") && n.hasSuffix(".tmp") {
            try? FileManager.default.removeItem(at: checkpointsURL.appendingPathComponent(n))
        }
    }
}

private func syncDirectory(_ path: String) {
    let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if fd >= 0 { fsync(fd); close(fd) }
}

extension Hub {
    public func jobsDirectory(tenant: String) -> URL {
        tenantsDirectory.appendingPathComponent(tenant, isDirectory: true).appendingPathComponent("jobs", isDirectory: true)
    }

    /// Creates a new job directory for `tenant` with a fresh, unguessable id (`ftjob-` and 24
    /// hex digits) and its `config.json`.
    public func createJob(tenant: String, config: Data) throws -> JobDirectory {
        try AdapterID.validate(tenant, what: "tenant")
        for _ in 0..<10 {
            var bytes = [UInt8](repeating: 0, count: 12)
            for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255) }
            let id = "ftjob-" + bytes.map { String(format: "%02x", $0) }.joined()
            let url = jobsDirectory(tenant: tenant).appendingPathComponent(id, isDirectory: true)
            if FileManager.default.fileExists(atPath: url.path) { continue }
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
            let job = JobDirectory(tenant: tenant, id: id, url: url)
            try job.write("config.json", config)
            // Listing orders jobs by this time; the file system's own clock ticks too coarsely
            // to order jobs created a few milliseconds apart.
            try FileManager.default.setAttributes([.modificationDate: Date()], ofItemAtPath: job.configURL.path)
            return job
        }
        throw HubError.io(path: jobsDirectory(tenant: tenant).path, message: "could not create a job id")
    }

    /// Every job, optionally of one tenant, oldest first (ids are random, so by the time the
    /// config file was written).
    public func listJobs(tenant: String? = nil) -> [JobDirectory] {
        let fm = FileManager.default
        let tenants = tenant.map { [$0] } ?? ((try? fm.contentsOfDirectory(atPath: tenantsDirectory.path)) ?? []).sorted()
        var jobs: [(Date, JobDirectory)] = []
        for t in tenants {
            let dir = jobsDirectory(tenant: t)
            for id in (try? fm.contentsOfDirectory(atPath: dir.path)) ?? [] where id.hasPrefix("ftjob-") {
                let job = JobDirectory(tenant: t, id: id, url: dir.appendingPathComponent(id, isDirectory: true))
                let date = (try? fm.attributesOfItem(atPath: job.configURL.path)[.modificationDate] as? Date) ?? .distantPast
                jobs.append((date, job))
            }
        }
        return jobs.sorted { $0.0 < $1.0 }.map(\.1)
    }

    /// The job with this id, of any tenant (or of `tenant` only).
    public func job(_ id: String, tenant: String? = nil) throws -> JobDirectory {
        let fm = FileManager.default
        let tenants = tenant.map { [$0] } ?? ((try? fm.contentsOfDirectory(atPath: tenantsDirectory.path)) ?? []).sorted()
        // Ids are looked up by path (the daemon does this on every poll), so only well-formed
        // ones: no separators, nothing that could leave the jobs directory.
        if id.hasPrefix("ftjob-"), id.count > 6, id.dropFirst(6).allSatisfy(\.isHexDigit) {
            for t in tenants {
                let url = jobsDirectory(tenant: t).appendingPathComponent(id, isDirectory: true)
                var isDirectory: ObjCBool = false
                if fm.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue {
                    return JobDirectory(tenant: t, id: id, url: url)
                }
            }
        }
        throw JobNotFound(description: "no job \(id)" + (tenant.map { " for tenant \($0)" } ?? "") + " in the hub")
    }
}

public struct JobNotFound: Error, CustomStringConvertible {
    public var description: String
}
