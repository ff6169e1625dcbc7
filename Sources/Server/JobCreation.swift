import Foundation
import Hub
import Jobs
import LlamaModel
import Training

extension GraftServer {
    /// `POST /v1/fine_tuning/jobs`: checks the request (files of this tenant, the base model or
    /// one of the tenant's adapters, hyperparameters in range, `"auto"` resolved to the
    /// trainer's defaults), records the job and answers at once with `validating_files`.
    func createJob(_ body: JSONBody, tenant: String) throws -> JobDirectory {
        let modelName = try body.requiredString("model")
        var initAdapter: String?
        if modelName != configuration.baseModelName {
            guard let id = try? AdapterID(parsing: modelName), let stored = try? hub.resolveAdapter(id, as: tenant) else {
                throw APIError(.notFound, "no model '\(modelName)' to fine-tune: use the base model "
                               + "'\(configuration.baseModelName)' or one of your adapters", param: "model",
                               code: "model_not_found")
            }
            initAdapter = stored.id.description
        }
        let trainingFile = try fileReference(try body.requiredString("training_file"), tenant: tenant, param: "training_file")
        let validation = try body.string("validation_file").map {
            try fileReference($0, tenant: tenant, param: "validation_file")
        }
        let suffix = try body.string("suffix")
        if let suffix {
            do { try AdapterID.validate(suffix, what: "suffix") } catch {
                throw APIError.badRequest("\(error)", param: "suffix")
            }
        }
        let seed = try body.int("seed", in: 0...2_147_483_647) ?? Int.random(in: 0...2_147_483_647)
        var metadata: [String: String]?
        if let m = try body.object("metadata") {
            guard m.values.count <= 16, let strings = m.values as? [String: String] else {
                throw APIError.badRequest("'metadata' must map at most 16 keys to strings", param: "metadata")
            }
            metadata = strings
        }
        if let integrations = try body.array("integrations"), !integrations.isEmpty {
            throw APIError.badRequest("integrations are not supported; follow the job with its events instead",
                                      param: "integrations")
        }

        // The method: given, or detected from the training file (preference pairs: DPO).
        var type = "supervised"
        var hyper = try body.object("hyperparameters")
        if let method = try body.object("method") {
            type = try method.requiredString("type")
            guard type == "supervised" || type == "dpo" else {
                throw APIError.badRequest("method.type '\(type)' is not supported; use supervised or dpo", param: "method.type")
            }
            if let h = try method.object(type)?.object("hyperparameters") { hyper = h }
        } else if let data = FileManager.default.contents(atPath: hub.contentURL(of: trainingFile, tenant: tenant).path),
                  looksLikePreferences(data) {
            type = "dpo"
        }
        var c = TrainingConfig.defaults(method: type == "dpo" ? "dpo" : "sft")
        if let h = hyper {
            if let n = try h.auto("n_epochs", { try $0.int("n_epochs", in: 1...50) }) { c.epochs = n }
            if let n = try h.auto("batch_size", { try $0.int("batch_size", in: 1...256) }) { c.batchSize = n }
            if let m = try h.auto("learning_rate_multiplier", { try $0.number("learning_rate_multiplier", in: 1e-6...1000) }) {
                c.learningRate *= m
            }
            if let b = try h.auto("beta", { try $0.number("beta", in: 1e-6...2) }) {
                guard type == "dpo" else { throw APIError.badRequest("beta applies to the dpo method", param: h.name("beta")) }
                c.preference?.beta = b
            }
        }
        if let lora = try body.object("lora") {
            if let r = try lora.int("rank", in: 1...512) {
                c.lora.rank = r
                c.lora.alpha = Float(2 * r)
            }
            if let a = try lora.number("alpha", in: 1e-6...1e6) { c.lora.alpha = Float(a) }
            if let d = try lora.number("dropout", in: 0...0.99) { c.lora.dropout = Float(d) }
            if lora.has("target_modules") {
                let names = try lora.strings("target_modules", max: 7)
                do { c.lora.targets = try Projection.parseList(names.joined(separator: ",")) } catch {
                    throw APIError.badRequest("\(error)", param: lora.name("target_modules"))
                }
            }
            if let id = try lora.string("init_adapter") {
                guard initAdapter == nil else {
                    throw APIError.badRequest("give the adapter to start from as 'model' or as 'lora.init_adapter', not both",
                                              param: lora.name("init_adapter"))
                }
                guard let parsed = try? AdapterID(parsing: id), let stored = try? hub.resolveAdapter(parsed, as: tenant) else {
                    throw APIError.notFound("no adapter '\(id)'", param: lora.name("init_adapter"))
                }
                initAdapter = stored.id.description
            }
        }
        if let full = try body.object("graft_config") {
            // Graft's CLI sends every training setting it was given, as `graft train` takes them.
            do {
                c = try JSONDecoder().decode(TrainingConfig.self, from: JSONSerialization.data(withJSONObject: full.values))
            } catch {
                throw APIError.badRequest("'graft_config' is not a training configuration: \(error)", param: "graft_config")
            }
            if let id = c.initAdapter, initAdapter == nil {
                guard let parsed = try? AdapterID(parsing: id), let stored = try? hub.resolveAdapter(parsed, as: tenant) else {
                    throw APIError.notFound("no adapter '\(id)'", param: "graft_config.initAdapter")
                }
                initAdapter = stored.id.description
            }
        }
        if body.has("seed") || !body.has("graft_config") { c.seed = UInt64(seed) }
        c.initAdapter = initAdapter
        if model.tokenizer.chatTemplate == nil { c.chatTemplate = false }
        do { try c.validate() } catch { throw APIError.badRequest("\(error)") }

        let waiting = self.training.waitingJobs(tenant: tenant)
        if waiting >= configuration.maxQueuedJobsPerTenant {
            throw APIError(.tooManyRequests, "tenant '\(tenant)' already has \(waiting) jobs waiting, its limit; "
                           + "wait for one to start or cancel one", code: "too_many_queued_jobs", shouldRetry: false)
        }
        let spec = JobSpec(
            config: c, tenant: tenant, name: suffix ?? "ft-" + randomHex(bytes: 4),
            data: try DatasetFile(path: hub.contentURL(of: trainingFile, tenant: tenant).path, displayName: trainingFile.filename),
            validation: try validation.map {
                try DatasetFile(path: hub.contentURL(of: $0, tenant: tenant).path, displayName: $0.filename)
            },
            baseModel: configuration.baseModelName, baseModelSHA256: configuration.baseModelSHA256 ?? "",
            api: APIJobRequest(trainingFile: trainingFile.id, validationFile: validation?.id, suffix: suffix, metadata: metadata,
                               createdAt: Int(Date().timeIntervalSince1970)))
        let job = try hub.createJob(tenant: tenant, config: try spec.encoded())
        try JobState(status: .validatingFiles).write(to: job)
        try JobRunner.appendEvent(to: job, ["type": "message", "level": "info",
                                            "message": "Validating training file: \(trainingFile.id) (\(trainingFile.filename))"])
        self.training.submit(job)
        return job
    }

    private func fileReference(_ id: String, tenant: String, param: String) throws -> StoredFile {
        guard let file = try? hub.file(id, tenant: tenant) else { throw APIError.notFound("no file \(id)", param: param) }
        guard file.purpose == "fine-tune" else {
            throw APIError.badRequest("file \(id) has purpose '\(file.purpose)'; fine-tuning needs purpose 'fine-tune'",
                                      param: param)
        }
        return file
    }
}

extension JSONBody {
    /// A hyperparameter that may be `"auto"` (nil: the trainer's default).
    func auto<T>(_ key: String, _ read: (JSONBody) throws -> T?) throws -> T? {
        if (try? string(key)) == "auto" { return nil }
        return try read(self)
    }
}
