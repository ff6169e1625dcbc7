import AdapterFormat
import DPOObjective
import Foundation
import GGUF
import LlamaModel
import TestSupport
import Testing
import Training

/// DPO on the real model against TRL's definitions computed with PyTorch + PEFT: summed
/// log-probabilities of policy (base + the fixture adapter) and reference (adapter off), the
/// sigmoid loss and the reward metrics.
@Suite("SmolLM2 DPO values against the PyTorch reference", .enabled(if: TestData.runRealModelTests), .serialized)
struct DPOParityTests {
    struct Fixtures: Decodable {
        struct Triple: Decodable {
            var prompt_ids: [Int]
            var chosen_ids: [Int]
            var rejected_ids: [Int]
            var policy_chosen_logps: Double
            var policy_rejected_logps: Double
            var reference_chosen_logps: Double
            var reference_rejected_logps: Double
            var loss: Double
        }
        struct DPO: Decodable {
            var beta: Double
            var loss_type: String
            var label_smoothing: Double
            var triples: [Triple]
            var loss: Double
            var rewards: [String: Double]
            enum CodingKeys: String, CodingKey { case beta, loss_type, label_smoothing, triples, loss }
            init(from decoder: Decoder) throws {
                let c = try decoder.container(keyedBy: CodingKeys.self)
                beta = try c.decode(Double.self, forKey: .beta)
                loss_type = try c.decode(String.self, forKey: .loss_type)
                label_smoothing = try c.decode(Double.self, forKey: .label_smoothing)
                triples = try c.decode([Triple].self, forKey: .triples)
                loss = try c.decode(Double.self, forKey: .loss)
                // The batch metrics under their TRL names.
                let any = try decoder.container(keyedBy: AnyKey.self)
                rewards = [:]
                for key in any.allKeys where key.stringValue.hasPrefix("rewards/") {
                    rewards[key.stringValue] = try any.decode(Double.self, forKey: key)
                }
            }
        }
        var dpo: DPO
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    @Test("log-probabilities within 2e-3, loss and rewards within 1e-3 relative (or 1e-4 absolute)")
    func sigmoidBatch() throws {
        let model = try ParityTests.model.get()
        let dpo = try JSONDecoder().decode(Fixtures.self, from: Data(contentsOf: TestData.fixture("smollm2/fixtures.json"))).dpo
        let adapter = try PEFTAdapter.read(directory: TestData.fixture("smollm2/adapter"), config: model.config)
        let policy = try TrainableLoRA(adapter: adapter, config: model.config)
        let loss = DPOLoss(beta: dpo.beta, kind: try #require(DPOLoss.Kind(rawValue: dpo.loss_type)),
                           labelSmoothing: dpo.label_smoothing)
        let pairs = dpo.triples.enumerated().map { i, t in
            PreferenceExample(line: i + 1, prompt: t.prompt_ids, chosen: t.chosen_ids, rejected: t.rejected_ids)
        }
        // The objective's reference pass (adapter off) and its evaluation with the adapter on.
        var config = TrainingConfig()
        config.batchSize = 2
        let objective = DPOObjective(train: pairs, validation: pairs, loss: loss)
        let context = ObjectiveContext(model: model, lora: policy, config: config)
        try objective.prepare(context, reference: nil)
        let sequences = pairs.flatMap { [$0.chosenSequence, $0.rejectedSequence] }
        let policyLosses = try model.trainingPass(sequences, lora: policy, backward: false)
        var worstLogp = (what: "", diff: 0.0)
        var metrics = PreferenceMetrics()
        for (i, t) in dpo.triples.enumerated() {
            let ref = try #require(objective.reference[.train])[i]
            let got = [("policy chosen", -policyLosses[2 * i].nll, t.policy_chosen_logps),
                       ("policy rejected", -policyLosses[2 * i + 1].nll, t.policy_rejected_logps),
                       ("reference chosen", ref.chosen, t.reference_chosen_logps),
                       ("reference rejected", ref.rejected, t.reference_rejected_logps)]
            for (what, value, expected) in got {
                let d = abs(value - expected)
                #expect(d <= 2e-3, "triple \(i) \(what): \(value) vs \(expected)")
                if d > worstLogp.diff { worstLogp = ("triple \(i) \(what)", d) }
            }
            let before = metrics.loss
            _ = metrics.add(policy: (-policyLosses[2 * i].nll, -policyLosses[2 * i + 1].nll), reference: ref, loss: loss)
            #expect(abs((metrics.loss - before) - t.loss) <= max(1e-4, 1e-3 * t.loss), "triple \(i) loss")
        }
        var worstMetric = (what: "", diff: 0.0)
        func check(_ what: String, _ value: Double, _ expected: Double) {
            let d = abs(value - expected)
            #expect(d <= max(1e-4, 1e-3 * abs(expected)), "\(what): \(value) vs \(expected)")
            if d > worstMetric.diff { worstMetric = (what, d) }
        }
        check("loss", metrics.meanLoss, dpo.loss)
        let named = Dictionary(uniqueKeysWithValues: metrics.metrics.map { ($0.name, $0.value) })
        #expect(Set(dpo.rewards.keys).isSubset(of: Set(named.keys)))
        for (name, expected) in dpo.rewards.sorted(by: { $0.key < $1.key }) { check(name, try #require(named[name]), expected) }
        // The objective's own evaluation gives the same numbers.
        let evaluation = try #require(try objective.evaluate(.validation, limit: nil, context: context))
        #expect(abs(evaluation.loss - metrics.meanLoss) < 1e-9)
        print("DPO parity: worst log-prob difference \(worstLogp.diff) (\(worstLogp.what)), worst metric difference \(worstMetric.diff) (\(worstMetric.what))")
    }
}

/// The DPO gradient the objective feeds back through the training pass, against finite
/// differences of the same loss computed with the Double reference model.
@Suite("DPO gradients on a tiny model")
struct DPOGradientTests {
    static let pairs = [
        PreferenceExample(line: 1, prompt: [5, 40, 77, 12], chosen: [99, 3, 150, 61], rejected: [98, 7]),
        PreferenceExample(line: 2, prompt: [7, 201, 33], chosen: [80, 14, 2], rejected: [80, 15, 22, 9, 2]),
    ]

    @Test("sigmoid (with label smoothing), ipo and hinge: directional derivatives within 1e-3 relative",
          arguments: [DPOLoss(beta: 0.5, kind: .sigmoid, labelSmoothing: 0.1), DPOLoss(beta: 0.5, kind: .ipo),
                      DPOLoss(beta: 0.5, kind: .hinge)])
    func finiteDifferences(loss: DPOLoss) throws {
        let gguf = try GGUFFile(data: TinyModel.gguf(TrainingGradientTests.spec))
        let model = try LlamaModel(gguf: gguf)
        let reference = try ReferenceTraining(gguf: gguf)
        let lora = TrainingGradientTests.lora(model)
        var config = TrainingConfig()
        config.batchSize = 2
        let objective = DPOObjective(train: Self.pairs, validation: [], loss: loss)
        let context = ObjectiveContext(model: model, lora: lora, config: config)
        // Reference: the base model; the policy: factors with a nonzero B, so δ ≠ 0.
        try objective.prepare(context, reference: nil)
        lora.zeroGradients()
        let step = try objective.accumulate([[0], [1]], context: context) { UInt64($0) }
        let grad = (0..<lora.count).map { Double(lora.gradients[$0]) }
        let theta = (0..<lora.count).map { Double(lora.values[$0]) }
        let scale = Double(lora.shape.scale)

        func logp(_ seq: TrainingSequence, _ factors: ReferenceTraining.Factors) -> Double {
            var s = seq
            s.weight = 1
            let nll = reference.loss([s], lora: factors, scale: scale)
            return loss.averagesLogProbabilities ? -nll / Double(s.labelCount) : -nll
        }
        let base = ReferenceTraining.Factors()
        let refs = Self.pairs.map { (logp($0.chosenSequence, base), logp($0.rejectedSequence, base)) }
        func L(_ p: [Double]) -> Double {
            let f = TrainingGradientTests.factors(lora, p)
            return zip(Self.pairs, refs).reduce(0.0) { sum, e in
                let delta = (logp(e.0.chosenSequence, f) - e.1.0) - (logp(e.0.rejectedSequence, f) - e.1.1)
                return sum + loss.loss(delta: delta).value
            } / Double(Self.pairs.count)
        }
        let refLoss = L(theta)
        #expect(abs(step.loss - refLoss) <= 1e-5 * max(1, abs(refLoss)), "loss \(step.loss) vs reference \(refLoss)")
        var rng = SeededGenerator(seed: 5)
        let worst = TrainingGradientTests.directionalError(theta: theta, gradient: grad, rng: &rng, floor: 1e-8, loss: L)
        #expect(worst < 1e-3, "\(loss.kind): directional derivative relative error \(worst)")
        print("DPO \(loss.kind) gradient vs finite differences: worst directional relative error \(worst)")
    }

    @Test("the reference is the base, or the starting adapter frozen: its log-probs are computed once and reused")
    func reference() throws {
        let model = try TinyModel.model(TrainingGradientTests.spec)
        var config = TrainingConfig()
        config.batchSize = 2
        config.lora = LoRAShape(rank: 4, alpha: 8)
        config.learningRate = 0.01
        config.warmup = 0
        // Starting from an adapter: at step 0 the policy equals the reference, so no reward yet.
        let start = TrainingGradientTests.lora(model).adapter()
        let fromAdapter = DPOObjective(train: Self.pairs, validation: Self.pairs, loss: DPOLoss())
        let trainer = try Trainer(model: model, config: config, objective: fromAdapter, initial: start)
        let before = try #require(try trainer.evaluate())
        #expect(before.metrics?.allSatisfy { !$0.name.hasPrefix("rewards/") || $0.value == 0 } == true, "\(before.metrics ?? [])")
        let frozen = try #require(fromAdapter.reference[.train])
        _ = try trainer.step()
        let after = try #require(try trainer.evaluate())
        #expect(after.metrics?.first { $0.name == "rewards/margins" }.map { $0.value > 0 } == true, "\(after.metrics ?? [])")
        // The stored reference did not move with the policy.
        #expect(zip(frozen, try #require(fromAdapter.reference[.train])).allSatisfy { $0.0 == $0.1 })
        // From scratch the reference is the base: an adapter with nonzero factors already differs from it.
        let fromBase = DPOObjective(train: Self.pairs, validation: [], loss: DPOLoss())
        try fromBase.prepare(ObjectiveContext(model: model, lora: TrainableLoRA(adapter: start, config: model.config), config: config),
                             reference: nil)
        let base = try model.trainingPass(Self.pairs.flatMap { [$0.chosenSequence, $0.rejectedSequence] }, lora: nil, backward: false)
        #expect(try #require(fromBase.reference[.train])[1].rejected == -base[3].nll)
        #expect(frozen[1].rejected != -base[3].nll)
    }

    @Test("loss values and derivatives of the three loss types against closed forms")
    func lossFormulas() {
        let s = DPOLoss(beta: 0.2, kind: .sigmoid, labelSmoothing: 0.25)
        let z = 0.2 * 1.5
        let expected = -log(1 / (1 + exp(-z))) * 0.75 - log(1 / (1 + exp(z))) * 0.25
        #expect(abs(s.loss(delta: 1.5).value - expected) < 1e-12)
        let h = 1e-6
        for l in [s, DPOLoss(beta: 0.2, kind: .ipo), DPOLoss(beta: 0.2, kind: .hinge)] {
            for delta in [-3.0, 0.4, 2.0] {
                let fd = (l.loss(delta: delta + h).value - l.loss(delta: delta - h).value) / (2 * h)
                #expect(abs(l.loss(delta: delta).derivative - fd) < 1e-6, "\(l.kind) at \(delta)")
            }
        }
        #expect(DPOLoss(beta: 0.2, kind: .ipo).loss(delta: 2.5).value == 0)  // δ = 1/(2β)
        #expect(DPOLoss(beta: 0.2, kind: .hinge).loss(delta: 6).value == 0)
        #expect(abs(DPOLoss(beta: 0.2, kind: .hinge).loss(delta: 1).value - 0.8) < 1e-12)
        // Far out: no overflow.
        #expect(DPOLoss(beta: 1, kind: .sigmoid).loss(delta: -800).value.isFinite)
    }
}
