#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TensorKit

/// One training sequence: its tokens and, per position, the token that position must predict
/// (normally the next token) or -1 where no loss is taken (prompt, padding-free ends).
public struct TrainingSequence: Sendable, Equatable {
    public var tokens: [Int]
    public var targets: [Int]
    /// The gradient weight of this sequence's summed negative log-likelihood (1 / label tokens
    /// of the accumulation window for SFT; DPO sets its own per sequence).
    public var weight: Float

    public init(tokens: [Int], targets: [Int], weight: Float = 1) {
        precondition(tokens.count == targets.count, "one target per token")
        self.tokens = tokens; self.targets = targets; self.weight = weight
    }

    /// Positions that carry a label.
    public var labelCount: Int { targets.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) } }
}

/// What the forward pass measured on one sequence.
public struct SequenceLoss: Sendable, Equatable {
    /// Σ of the negative log-likelihoods of the labelled positions (in Double).
    public var nll: Double
    public var tokens: Int
    /// Positions whose most likely token is the label.
    public var correct: Int
    public init(nll: Double = 0, tokens: Int = 0, correct: Int = 0) { self.nll = nll; self.tokens = tokens; self.correct = correct }
}

extension LlamaModel {
    /// Runs a batch of whole sequences forward (each from position 0, no padding) with the LoRA
    /// factors being trained, and, when `backward`, adds ∂(Σ_s weight_s · NLL_s)/∂θ to
    /// `lora.gradients`. The frozen weights are read as stored; the output head runs only at
    /// labelled positions, in chunks. `dropoutKey` seeds the LoRA dropout masks (ignored when
    /// the dropout rate is 0; a pass without `backward` evaluates and drops nothing). Returns
    /// each sequence's loss.
    ///
    /// Objectives whose gradient depends on the losses themselves (DPO: the derivative of its
    /// loss with respect to each sequence's log-likelihood) pass `lossWeights`: it is called
    /// after the forward with the measured losses, and its result replaces each sequence's
    /// `weight`. The head's gradient is linear in the weights, so this costs no second pass.
    ///
    /// `pause`, when given, is called on this thread between layers and between chunks of the
    /// output head, where the pass holds no pool job: a caller sharing the model can run its own
    /// forward passes there (the daemon serves requests in the middle of a training step).
    public func trainingPass(_ batch: [TrainingSequence], lora: TrainableLoRA?, backward: Bool,
                             dropoutKey: UInt64 = 0, pause: (() -> Void)? = nil,
                             lossWeights: (([SequenceLoss]) -> [Float])? = nil) throws -> [SequenceLoss] {
        precondition(!backward || lora != nil, "a backward pass needs trainable factors")
        let c = config
        var segments: [Range<Int>] = []
        var T = 0
        for seq in batch {
            guard !seq.tokens.isEmpty else { throw ModelError.emptyInput }
            guard seq.tokens.count <= c.contextLength else {
                throw ModelError.contextFull(needed: seq.tokens.count, limit: c.contextLength)
            }
            for t in seq.tokens where t < 0 || t >= c.vocabularySize { throw ModelError.badToken(t, vocabularySize: c.vocabularySize) }
            for t in seq.targets where t >= c.vocabularySize { throw ModelError.badToken(t, vocabularySize: c.vocabularySize) }
            segments.append(T..<T + seq.tokens.count)
            T += seq.tokens.count
        }
        guard T > 0 else { throw ModelError.emptyInput }
        return pool.exclusive {
            let pass = TrainingPassState(model: self, lora: lora, rows: T, segments: segments,
                                         dropout: backward ? lora.map { $0.shape.dropout } ?? 0 : 0, dropoutKey: dropoutKey)
            defer { pass.release() }
            lora?.prepare()
            var row = 0
            for seq in batch {
                for t in 0..<seq.tokens.count { weights.tokenEmbedding.decodeRow(seq.tokens[t], into: pass.tape.x(0) + (row + t) * c.dim) }
                row += seq.tokens.count
            }
            if c.embeddingScale != 1 { let x = pass.tape.x(0); for i in 0..<T * c.dim { x[i] *= c.embeddingScale } }
            for l in 0..<c.layers { pass.forwardLayer(l); pause?() }
            var labelled: [LabelledRow] = []
            for (s, seq) in batch.enumerated() {
                for (t, target) in seq.targets.enumerated() where target >= 0 {
                    labelled.append(LabelledRow(row: segments[s].lowerBound + t, target: target, sequence: s,
                                                weight: lossWeights == nil ? seq.weight : 1))
                }
            }
            var losses = [SequenceLoss](repeating: SequenceLoss(), count: batch.count)
            pass.head(labelled, losses: &losses, backward: backward, pause: pause)
            if backward, let lossWeights {
                let w = lossWeights(losses)
                precondition(w.count == batch.count, "one weight per sequence")
                for (s, seg) in segments.enumerated() {
                    let d = pass.dres + seg.lowerBound * c.dim
                    for i in 0..<seg.count * c.dim { d[i] *= w[s] }
                }
            }
            if backward {
                for l in (0..<c.layers).reversed() { pass.backwardLayer(l); pause?() }
            }
            return losses
        }
    }
}

struct LabelledRow {
    var row: Int
    var target: Int
    var sequence: Int
    var weight: Float
}

/// Activations kept from the forward for the backward, per layer: the residual input x, q and
/// k after RoPE, v, the attention output, the residual after attention, gate and up (before
/// the activation), each LoRA target's u = drop(x)·Aᵀ, and where the architecture has them q
/// and k before their per-head norms and the two block outputs before their post-norms. Norm
/// outputs and the activation's product are recomputed. One allocation.
final class TrainingTape {
    let rows: Int
    let c: LlamaConfig
    let perLayer: Int
    let uWidth: Int  // floats of u per row for all targets of a layer
    let storage: UnsafeMutablePointer<Float>

    init(rows T: Int, config c: LlamaConfig, uWidth: Int) {
        rows = T
        self.c = c
        self.uWidth = uWidth
        let extra = (c.queryKeyNorm ? c.qDim + c.kvDim : 0) + (c.postNorms ? 2 * c.dim : 0)
        perLayer = T * (2 * c.dim + 2 * c.qDim + 2 * c.kvDim + 2 * c.ffnDim + uWidth + extra)
        storage = .allocate(capacity: perLayer * c.layers + T * c.dim)
    }

    func release() { storage.deallocate() }

    /// The residual stream entering layer l (l == layers: the final hidden state).
    func x(_ l: Int) -> UnsafeMutablePointer<Float> { l == c.layers ? storage + perLayer * c.layers : storage + l * perLayer }
    func q(_ l: Int) -> UnsafeMutablePointer<Float> { x(l) + rows * c.dim }
    func k(_ l: Int) -> UnsafeMutablePointer<Float> { q(l) + rows * c.qDim }
    func v(_ l: Int) -> UnsafeMutablePointer<Float> { k(l) + rows * c.kvDim }
    func attention(_ l: Int) -> UnsafeMutablePointer<Float> { v(l) + rows * c.kvDim }
    func mid(_ l: Int) -> UnsafeMutablePointer<Float> { attention(l) + rows * c.qDim }
    func gate(_ l: Int) -> UnsafeMutablePointer<Float> { mid(l) + rows * c.dim }
    func up(_ l: Int) -> UnsafeMutablePointer<Float> { gate(l) + rows * c.ffnDim }
    func u(_ l: Int) -> UnsafeMutablePointer<Float> { up(l) + rows * c.ffnDim }
    private func extra(_ l: Int) -> UnsafeMutablePointer<Float> { u(l) + rows * uWidth }
    /// q and k before their per-head norms (`queryKeyNorm`).
    func qPreNorm(_ l: Int) -> UnsafeMutablePointer<Float> { extra(l) }
    func kPreNorm(_ l: Int) -> UnsafeMutablePointer<Float> { qPreNorm(l) + rows * c.qDim }
    /// The attention and feed-forward outputs before their post-norms (`postNorms`).
    func attentionOut(_ l: Int) -> UnsafeMutablePointer<Float> { extra(l) + (c.queryKeyNorm ? rows * (c.qDim + c.kvDim) : 0) }
    func ffnOut(_ l: Int) -> UnsafeMutablePointer<Float> { attentionOut(l) + rows * c.dim }
}
