import Foundation
import Hub
import Hummingbird
import Jobs
import LlamaModel
import Training

/// OpenAI's fine-tuning API: create, list, retrieve, cancel, events, checkpoints. A tenant
/// sees only its own jobs; another tenant's ids are not found.
func registerJobRoutes(_ routes: RouteBook, _ server: GraftServer) {
    routes.add(.post, "/v1/fine_tuning/jobs") { request, context in
        let body = try JSONBody.parse(try await request.readBody(limit: server.configuration.maxBodyBytes))
        let job = try server.createJob(body, tenant: try context.principal.acting(for: try body.string("tenant")))
        return jsonResponse(try server.jobJSON(job))
    }
    routes.add(.get, "/v1/fine_tuning/jobs") { request, context in
        try server.listJobs(request, tenant: context.principal.acting(for: tenantParameter(request)))
    }
    routes.add(.get, "/v1/fine_tuning/jobs/{id}") { _, context in
        jsonResponse(try server.jobJSON(try server.job(context)))
    }
    routes.add(.post, "/v1/fine_tuning/jobs/{id}/cancel") { _, context in
        let job = try server.job(context)
        if let s = JobState.read(job), s.status.isFinal {
            throw APIError(.conflict, "job \(job.id) already \(s.status.rawValue); only a job not yet finished can be cancelled",
                           code: "job_finished", shouldRetry: false)
        }
        try await server.training.cancel(job)
        return jsonResponse(try server.jobJSON(job))
    }
    routes.add(.get, "/v1/fine_tuning/jobs/{id}/events") { request, context in
        try server.listed(Array(eventsJSON(try server.job(context)).reversed()), request, defaultLimit: 20, ids: false)
    }
    routes.add(.get, "/v1/fine_tuning/jobs/{id}/checkpoints") { request, context in
        let job = try server.job(context)
        return try server.listed(checkpointsJSON(job, spec: try? JobSpec.read(job)), request, defaultLimit: 10, ids: true)
    }
}

/// `metadata[key]=value` query parameters (the SDK's `jobs.list(metadata=...)`).
private func metadataFilter(_ request: Request) -> [String: String]? {
    var out: [String: String] = [:]
    for (key, value) in request.uri.queryParameters where key.hasPrefix("metadata[") && key.hasSuffix("]") {
        out[String(key.dropFirst(9).dropLast())] = String(value)
    }
    return out.isEmpty ? nil : out
}

/// A listed item with its id, for pagination.
struct Listed {
    var id: String
    var json: [String: Any]
}

/// The job's events as OpenAI shapes them, oldest first.
func eventsJSON(_ job: JobDirectory) -> [Listed] {
    job.events().enumerated().compactMap { i, line in
        guard let e = (try? JSONSerialization.jsonObject(with: line)) as? [String: Any] else { return nil }
        let id = e["id"] as? String ?? "ftevent-\(job.id.dropFirst(6))-\(i)"
        let kind = e["type"] as? String ?? "message"
        var message = e["message"] as? String ?? kind
        var data: Any = NSNull()
        if kind == "step" {
            let step = e["step"] as? Int ?? 0
            message = "Step \(step)" + ((e["total_steps"] as? Int).map { "/\($0)" } ?? "")
                + String(format: ": training loss=%.4f", e["train_loss"] as? Double ?? 0)
                + ((e["valid_loss"] as? Double).map { String(format: ", validation loss=%.4f", $0) } ?? "")
            var d = e
            d["id"] = nil; d["type"] = nil
            data = d
        }
        return Listed(id: id, json: [
            "id": id, "object": "fine_tuning.job.event", "created_at": Int(e["time"] as? Double ?? 0),
            "level": e["level"] as? String ?? "info", "message": message, "type": kind == "step" ? "metrics" : "message",
            "data": data,
        ])
    }
}

/// The job's checkpoints, newest first, with the metrics of their step.
func checkpointsJSON(_ job: JobDirectory, spec: JobSpec?) -> [Listed] {
    var metricsAt: [Int: [String: Any]] = [:]
    for line in job.events() {
        guard let e = (try? JSONSerialization.jsonObject(with: line)) as? [String: Any], e["type"] as? String == "step",
              let step = e["step"] as? Int else { continue }
        var m: [String: Any] = ["step": step]
        for key in ["train_loss", "train_mean_token_accuracy", "valid_loss", "valid_mean_token_accuracy",
                    "full_valid_loss", "full_valid_mean_token_accuracy"] {
            if let v = e[key] { m[key] = v }
        }
        metricsAt[step] = m
    }
    return job.checkpoints().reversed().map { c in
        let id = "ftckpt-\(job.id.dropFirst(6))-\(c.step)"
        let created = (try? FileManager.default.attributesOfItem(atPath: c.url.path))?[.modificationDate] as? Date
        return Listed(id: id, json: [
            "id": id, "object": "fine_tuning.job.checkpoint", "created_at": Int(created?.timeIntervalSince1970 ?? 0),
            "fine_tuned_model_checkpoint": "\(spec?.tenant ?? job.tenant)/\(spec?.name ?? "?"):\(job.id):ckpt-step-\(c.step)",
            "fine_tuning_job_id": job.id, "step_number": c.step, "metrics": metricsAt[c.step] ?? ["step": c.step],
        ])
    }
}

extension GraftServer {
    func listJobs(_ request: Request, tenant: String) throws -> Response {
        var jobs: [JobDirectory] = Array(hub.listJobs(tenant: tenant).reversed())
        if let filter = metadataFilter(request) {
            jobs = jobs.filter { job in
                let metadata = (try? JobSpec.read(job))?.api?.metadata ?? [:]
                return filter.allSatisfy { metadata[$0.key] == $0.value }
            }
        }
        let (after, limit) = pageParameters(request)
        let page = try paginate(jobs, id: \JobDirectory.id, after: after, limit: limit, defaultLimit: 20)
        var data: [[String: Any]] = []
        for job in page.items { data.append(try jobJSON(job)) }
        let body: [String: Any] = ["object": "list", "data": data, "has_more": page.hasMore]
        return jsonResponse(body)
    }

    /// A cursor page of `items` (with `first_id`/`last_id` when `ids`).
    func listed(_ items: [Listed], _ request: Request, defaultLimit: Int, ids: Bool) throws -> Response {
        let (after, limit) = pageParameters(request)
        let page = try paginate(items, id: \Listed.id, after: after, limit: limit, defaultLimit: defaultLimit)
        let data: [[String: Any]] = page.items.map { $0.json }
        var body: [String: Any] = ["object": "list", "data": data, "has_more": page.hasMore]
        if ids {
            body["first_id"] = page.items.first?.id ?? NSNull()
            body["last_id"] = page.items.last?.id ?? NSNull()
        }
        return jsonResponse(body)
    }

    func job(_ context: GraftContext) throws -> JobDirectory {
        let id = context.parameters.get("id") ?? ""
        let p = context.principal
        guard id.hasPrefix("ftjob-"), let job = try? hub.job(id, tenant: p.isAdmin ? nil : p.tenant) else {
            throw APIError.notFound("no fine-tuning job \(id)", param: "fine_tuning_job_id")
        }
        return job
    }

    /// The job object as OpenAI's SDK reads it, plus Graft's `lora`, `adapter_name` and
    /// `progress` fields.
    func jobJSON(_ job: JobDirectory) throws -> [String: Any] {
        let spec = try JobSpec.read(job)
        let state = JobState.read(job) ?? JobState(status: .validatingFiles)
        let c = spec.config
        let created = spec.api?.createdAt ?? Int(((try? FileManager.default.attributesOfItem(atPath: job.configURL.path))?[
            .modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)
        let base = TrainingConfig.defaults(method: c.method).learningRate
        let hyper: [String: Any] = ["n_epochs": c.epochs, "batch_size": c.batchSize,
                                    "learning_rate_multiplier": c.learningRate / base]
        let type = c.method == "dpo" ? "dpo" : "supervised"
        var methodHyper = hyper
        if let p = c.preference { methodHyper["beta"] = p.beta }
        let status: String = state.status == .interrupted ? "cancelled" : state.status.rawValue
        var error: Any = NSNull()
        if state.status == .failed {
            error = ["code": state.errorCode ?? "training_error", "message": state.error ?? "the job failed",
                     "param": state.errorParam ?? NSNull()] as [String: Any]
        }
        return [
            "id": job.id, "object": "fine_tuning.job", "created_at": created, "error": error,
            "fine_tuned_model": state.adapter ?? NSNull(),
            "finished_at": state.finishedAt.map { Int($0.timeIntervalSince1970) } ?? NSNull(),
            "hyperparameters": hyper, "model": spec.baseModel, "organization_id": "org-\(spec.tenant)",
            "result_files": [String](), "seed": Int(c.seed), "status": status,
            "trained_tokens": state.status.isFinal ? (state.trainedTokens ?? 0) : NSNull(),
            "training_file": spec.api?.trainingFile ?? spec.data.name,
            "validation_file": spec.api?.validationFile ?? NSNull(),
            "estimated_finish": state.status == .running ? state.estimatedFinish.map { Int($0.timeIntervalSince1970) } ?? NSNull()
                                                         : NSNull(),
            "integrations": [Any](), "metadata": spec.api?.metadata ?? NSNull(), "suffix": spec.api?.suffix ?? NSNull(),
            "method": ["type": type, type: ["hyperparameters": methodHyper]],
            "lora": ["rank": c.lora.rank, "alpha": Double(c.lora.alpha), "dropout": Double(c.lora.dropout),
                     "target_modules": c.lora.targets.map(\.rawValue), "init_adapter": c.initAdapter ?? NSNull()] as [String: Any],
            "adapter_name": "\(spec.tenant)/\(spec.name)",
            "progress": ["step": state.step, "total_steps": state.totalSteps],
        ]
    }
}
