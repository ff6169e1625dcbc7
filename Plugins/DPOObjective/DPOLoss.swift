import Foundation
import Training

/// The DPO loss of one preference pair as TRL defines it, from δ = (log π(y_w) − log π_ref(y_w))
/// − (log π(y_l) − log π_ref(y_l)).
public struct DPOLoss: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// −log σ(βδ)·(1 − ε) − log σ(−βδ)·ε (ε: label smoothing, conservative DPO).
        case sigmoid
        /// (δ − 1/(2β))², on length-averaged log-probabilities.
        case ipo
        /// max(0, 1 − βδ).
        case hinge
    }

    public var beta: Double
    public var kind: Kind
    public var labelSmoothing: Double

    public init(beta: Double = 0.1, kind: Kind = .sigmoid, labelSmoothing: Double = 0) {
        self.beta = beta; self.kind = kind; self.labelSmoothing = labelSmoothing
    }

    /// Whether log-probabilities are averaged over the completion's tokens (IPO) rather than summed.
    public var averagesLogProbabilities: Bool { kind == .ipo }

    /// The loss at δ and its derivative dℓ/dδ.
    public func loss(delta: Double) -> (value: Double, derivative: Double) {
        let z = beta * delta
        switch kind {
        case .sigmoid:
            let e = labelSmoothing
            let value = -logSigmoid(z) * (1 - e) - logSigmoid(-z) * e
            // d/dz −log σ(z) = −σ(−z); d/dz −log σ(−z) = σ(z).
            return (value, beta * (-(1 - e) * sigmoid(-z) + e * sigmoid(z)))
        case .ipo:
            let d = delta - 1 / (2 * beta)
            return (d * d, 2 * d)
        case .hinge:
            return z < 1 ? (1 - z, -beta) : (0, 0)
        }
    }

    /// log σ(x) without overflow.
    func logSigmoid(_ x: Double) -> Double { x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x)) }
    func sigmoid(_ x: Double) -> Double { x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)) }
}

/// TRL's batch metrics for preference pairs: means over the pairs.
public struct PreferenceMetrics: Sendable, Equatable {
    public var pairs = 0
    public var loss = 0.0
    public var chosenRewards = 0.0, rejectedRewards = 0.0, accurate = 0.0
    public var chosenLogps = 0.0, rejectedLogps = 0.0

    public init() {}

    /// Adds one pair: policy and reference log-probabilities (as the loss uses them).
    public mutating func add(policy: (chosen: Double, rejected: Double), reference: (chosen: Double, rejected: Double),
                             loss: DPOLoss) -> Double {
        let rc = loss.beta * (policy.chosen - reference.chosen), rr = loss.beta * (policy.rejected - reference.rejected)
        let (value, derivative) = loss.loss(delta: (policy.chosen - reference.chosen) - (policy.rejected - reference.rejected))
        pairs += 1
        self.loss += value
        chosenRewards += rc; rejectedRewards += rr
        accurate += rc > rr ? 1 : 0
        chosenLogps += policy.chosen; rejectedLogps += policy.rejected
        return derivative
    }

    public var meanLoss: Double { loss / Double(max(pairs, 1)) }

    /// The metrics under TRL's names, as means over the pairs.
    public var metrics: [Metric] {
        let n = Double(max(pairs, 1))
        return [
            Metric("rewards/chosen", chosenRewards / n), Metric("rewards/rejected", rejectedRewards / n),
            Metric("rewards/accuracies", accurate / n), Metric("rewards/margins", (chosenRewards - rejectedRewards) / n),
            Metric("logps/chosen", chosenLogps / n), Metric("logps/rejected", rejectedLogps / n),
        ]
    }
}
