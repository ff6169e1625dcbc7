import ArgumentParser
import Engine
import Foundation
import Hub
import Logging

/// The options of `graftd` and `graft serve`.
public struct ServeOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Hub directory (default: $GRAFT_REGISTRY, else ./Registry).", valueName: "dir"))
    public var registry: String?

    @Option(help: ArgumentHelp("Base model from the hub's catalog (default: the catalog's default), or a path to a .gguf file.",
                               valueName: "name|path"))
    public var model: String?

    @Option(help: ArgumentHelp("Unix socket to listen on (default: <registry>/graftd.sock).", valueName: "path"))
    public var socket: String?

    @Option(name: .customLong("socket-group"),
            help: ArgumentHelp("Let this group connect too (socket mode 0660 instead of 0600).", valueName: "group"))
    public var socketGroup: String?

    @Option(name: .customLong("max-active"), help: "Sequences decoded together in one batch.")
    public var maxActive = 16

    @Option(name: .customLong("max-queued"), help: "Requests that may wait for a slot before new ones get 429.")
    public var maxQueued = 64

    @Option(name: .customLong("max-tokens"), help: "Limit on prompt plus completion tokens per request.")
    public var maxTokens = 4096

    @Option(name: .customLong("prefill-tokens"),
            help: "Prompt tokens prefilled per step while other requests decode (smaller: shorter steps, slower prompts).")
    public var prefillTokens = EngineLimits().prefillTokensPerStep

    @Option(name: .customLong("prefix-cache-mb"),
            help: "Memory for the keys and values of recent prompts, reused by requests that start the same way with the same adapters, in MiB (0: off).")
    public var prefixCacheMB = EngineLimits().prefixCacheBytes >> 20

    @Option(name: .customLong("kv-budget-mb"), help: "Key/value cache memory for active sequences, in MiB.")
    public var kvBudgetMB = 2048

    @Option(name: .customLong("adapter-cache-mb"), help: "Memory for adapters kept loaded, in MiB.")
    public var adapterCacheMB = 512

    @Option(name: .customLong("max-body-mb"), help: "Largest request body accepted, in MiB.")
    public var maxBodyMB = 64

    @Option(name: .customLong("max-file-mb"), help: "Largest file accepted by POST /v1/files, in MiB.")
    public var maxFileMB = 512

    @Option(name: .customLong("training-slots"), help: "Fine-tuning jobs trained at the same time (others queue).")
    public var trainingSlots = 1

    @Option(name: .customLong("max-queued-jobs"), help: "Fine-tuning jobs one tenant may have waiting.")
    public var maxQueuedJobs = 8

    @Option(name: .customLong("drain-seconds"), help: "On SIGTERM/SIGINT, how long requests in flight may take to finish.")
    public var drainSeconds = 30.0

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    public var logLevel = "info"

    public init() {}

    public func validate() throws {
        guard maxActive >= 1, maxQueued >= 0, maxTokens >= 2, kvBudgetMB >= 1, adapterCacheMB >= 0, maxBodyMB >= 1,
              drainSeconds >= 0, maxFileMB >= 1, prefillTokens >= 1, prefixCacheMB >= 0, trainingSlots >= 1,
              maxQueuedJobs >= 1 else {
            throw ValidationError("limits must be positive")
        }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level '\(logLevel)'") }
    }

    public var settings: DaemonSettings {
        var s = DaemonSettings(registry: Hub.resolveRoot(explicit: registry))
        s.model = model
        s.socketPath = socket
        s.socketGroup = socketGroup
        s.limits.maxActive = maxActive
        s.limits.maxQueued = maxQueued
        s.limits.maxTotalTokens = maxTokens
        s.limits.kvBudgetBytes = kvBudgetMB << 20
        s.limits.prefillTokensPerStep = prefillTokens
        s.limits.prefixCacheBytes = prefixCacheMB << 20
        s.adapterCacheBytes = adapterCacheMB << 20
        s.maxBodyBytes = maxBodyMB << 20
        s.drainSeconds = drainSeconds
        s.maxFileBytes = maxFileMB << 20
        s.trainingSlots = trainingSlots
        s.maxQueuedJobsPerTenant = maxQueuedJobs
        return s
    }

    public var logger: Logger {
        var logger = Logger(label: "graftd")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        return logger
    }
}
