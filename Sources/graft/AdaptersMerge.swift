import AdapterFormat
import ArgumentParser
import Foundation
import Hub
import LlamaModel

extension MergeOptions.MajoritySign: ExpressibleByArgument {}

struct AdaptersMerge: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge", abstract: "Merge adapters into a new one.",
        discussion: "Methods: " + MergePlugins.all.map { "\($0.name) (\($0.summary))" }.joined(separator: "; "))

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "The new adapter, tenant/name.") var into: String
    @Option(help: "Merge method.") var method: String
    @Option(help: "Rank of the result (svd).") var rank: Int?
    @Option(help: "Fraction of values kept (ties, dare).") var density: Float = 0.5
    @Option(help: "Seed of dare's random drop.") var seed: UInt64 = 0
    @Option(name: .customLong("majority-sign"), help: "ties sign election: total or frequency.") var majoritySign: MergeOptions.MajoritySign = .total
    @Argument(help: "Inputs, tenant/name[@version][:weight].") var inputs: [String]

    func run() throws {
        guard let plugin = MergePlugins.all.first(where: { $0.name == method }) else {
            throw MergeError.unknownMethod(method, available: MergePlugins.all.map(\.name))
        }
        guard !inputs.isEmpty else { throw MergeError.noInputs }
        let target = try AdapterID(parsing: into)
        let hub = modelOptions.registryOptions.hub
        let base = try BaseModel(modelOptions)
        var weighted: [WeightedAdapter] = []
        var names: [String] = []
        for text in inputs {
            let spec = try AdapterOptions.parse(text)
            var (id, adapter, _) = try readAdapter(hub, spec.source)
            try adapter.validate(against: base.config)
            adapter.metadata["name"] = id.description
            weighted.append(WeightedAdapter(adapter, weight: spec.weight))
            names.append("\(id):\(spec.weight)")
        }
        let options = MergeOptions(rank: rank, density: density, seed: seed, majoritySign: majoritySign)
        var merged = try plugin.merge(weighted, options: options)
        try merged.validate(against: base.config)
        merged.metadata["merge_method"] = method
        merged.metadata["merge_inputs"] = names.joined(separator: ",")
        let info = AdapterInfo(baseModel: base.name, baseModelSHA256: base.sha256, tenant: target.tenant, name: target.name)
        let id = try hub.publishAdapter(try GraftFile.encode(merged, info: info), tenant: target.tenant, name: target.name)
        print("merged \(names.joined(separator: " + ")) with \(method) into \(id) (rank \(merged.rank), \(merged.pairs.count) pairs)")
    }
}
