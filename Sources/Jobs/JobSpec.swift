import Crypto
import Foundation
import Hub
import Training

/// Why a job cannot be set up or run, in words for the user.
public struct JobError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A dataset file as a job records it: where it is, its SHA-256, and the name messages use.
public struct DatasetFile: Codable, Equatable, Sendable {
    public var path: String
    public var sha256: String
    /// The name errors cite (file:line); the path's last component when nil.
    public var displayName: String?

    public init(path: String, displayName: String? = nil) throws {
        let url = URL(fileURLWithPath: path).standardizedFileURL
        guard let data = FileManager.default.contents(atPath: url.path) else { throw JobError("cannot read \(path)") }
        self.path = url.path
        self.displayName = displayName
        sha256 = Self.hash(data)
    }

    public var name: String { displayName ?? (path as NSString).lastPathComponent }

    static func hash(_ data: Data) -> String { SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined() }

    /// The file's bytes, checked against the recorded hash.
    public func read() throws -> Data {
        guard let data = FileManager.default.contents(atPath: path) else { throw JobError("cannot read \(name)") }
        let hash = Self.hash(data)
        guard hash == sha256 else { throw JobError("\(name) changed since the job started (SHA-256 \(hash), was \(sha256))") }
        return data
    }
}

/// What a job created through the API adds to its spec: the request's references, as the
/// OpenAI job object reports them.
public struct APIJobRequest: Codable, Equatable, Sendable {
    public var trainingFile: String
    public var validationFile: String?
    public var suffix: String?
    public var metadata: [String: String]?
    /// Unix seconds.
    public var createdAt: Int

    public init(trainingFile: String, validationFile: String?, suffix: String?, metadata: [String: String]?, createdAt: Int) {
        self.trainingFile = trainingFile; self.validationFile = validationFile; self.suffix = suffix
        self.metadata = metadata; self.createdAt = createdAt
    }
}

/// What a job's `config.json` holds: everything needed to run it again from scratch.
public struct JobSpec: Codable, Sendable {
    public var config: TrainingConfig
    public var tenant: String
    public var name: String
    public var data: DatasetFile
    public var validation: DatasetFile?
    public var baseModel: String
    public var baseModelSHA256: String
    public var api: APIJobRequest?

    public init(config: TrainingConfig, tenant: String, name: String, data: DatasetFile, validation: DatasetFile?,
                baseModel: String, baseModelSHA256: String, api: APIJobRequest? = nil) {
        self.config = config; self.tenant = tenant; self.name = name; self.data = data; self.validation = validation
        self.baseModel = baseModel; self.baseModelSHA256 = baseModelSHA256; self.api = api
    }

    public static func read(_ job: JobDirectory) throws -> JobSpec {
        try JSONDecoder().decode(JobSpec.self, from: Data(contentsOf: job.configURL))
    }

    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }
}

/// A job's status. The first six are OpenAI's; `interrupted` is a job the CLI stopped
/// (Ctrl-C) that `graft train --resume` continues.
public enum JobStatus: String, Codable, Sendable {
    case validatingFiles = "validating_files", queued, running, succeeded, failed, cancelled, interrupted

    public var isFinal: Bool { self == .succeeded || self == .failed || self == .cancelled }
}

/// `state.json`: where the job stands, replaced atomically on every change.
public struct JobState: Codable, Sendable {
    public var status: JobStatus
    public var step: Int
    public var totalSteps: Int
    /// The published adapter's id, once succeeded.
    public var adapter: String?
    public var error: String?
    /// OpenAI's error code (`invalid_training_file`...) and the request field at fault.
    public var errorCode: String?
    public var errorParam: String?
    public var trainedTokens: Int?
    public var finishedAt: Date?
    /// Estimated end, while running.
    public var estimatedFinish: Date?
    public var updated = Date()

    public init(status: JobStatus, step: Int = 0, totalSteps: Int = 0) {
        self.status = status; self.step = step; self.totalSteps = totalSteps
    }

    public static func read(_ job: JobDirectory) -> JobState? {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return (try? Data(contentsOf: job.stateURL)).flatMap { try? decoder.decode(JobState.self, from: $0) }
    }

    public func write(to job: JobDirectory) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        var s = self
        s.updated = Date()
        try job.write("state.json", try encoder.encode(s))
    }
}
