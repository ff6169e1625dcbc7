import LlamaModel

/// What the trainer hands an objective for one optimizer step or one evaluation: the model,
/// the factors being trained and the run's settings.
public struct ObjectiveContext {
    public let model: LlamaModel
    public let lora: TrainableLoRA
    public let config: TrainingConfig
    /// Passed on to every `trainingPass` (see there): where a caller sharing the model gets
    /// the threads back in the middle of a pass.
    public let pause: (() -> Void)?

    public init(model: LlamaModel, lora: TrainableLoRA, config: TrainingConfig, pause: (() -> Void)? = nil) {
        self.model = model; self.lora = lora; self.config = config; self.pause = pause
    }
}

/// A named metric value, in the order an objective reports them (e.g. `rewards/margins`).
public struct Metric: Sendable, Codable, Equatable {
    public var name: String
    public var value: Double
    public init(_ name: String, _ value: Double) { self.name = name; self.value = value }
}

/// What one optimizer step's forward and backward passes measured.
public struct ObjectiveStep: Sendable {
    /// The objective's loss over the step's examples (what the gradient is of).
    public var loss: Double
    /// Token accuracy over the labelled positions the loss is about.
    public var meanTokenAccuracy: Double
    /// Further metrics, named as the objective defines them.
    public var metrics: [Metric]
    /// Token positions processed (all sequences, all positions).
    public var tokens: Int
    /// Labelled positions.
    public var labels: Int

    public init(loss: Double, meanTokenAccuracy: Double, metrics: [Metric] = [], tokens: Int, labels: Int) {
        self.loss = loss; self.meanTokenAccuracy = meanTokenAccuracy; self.metrics = metrics
        self.tokens = tokens; self.labels = labels
    }
}

/// Which of an objective's example sets to use.
public enum ExampleSet: Sendable, Equatable {
    case train
    case validation
}

/// A training objective (supervised fine-tuning, preference optimization...) as a plugin: it
/// owns its tokenized examples, turns a step's micro-batches into gradients on the LoRA
/// factors, and evaluates. The trainer knows objectives only through this protocol: it draws
/// the data order, accumulates, clips, runs the optimizer and keeps the run's state.
public protocol Objective: AnyObject, Sendable {
    /// Short name, e.g. "sft" (recorded in the job and the adapter's metadata).
    var name: String { get }
    /// Number of examples in each set (an example is what the data order shuffles: a sequence,
    /// or a preference pair).
    func count(_ set: ExampleSet) -> Int
    /// Called once when the trainer is created, with the factors at their initial values and
    /// `reference` set when the run starts from an existing adapter (nil: the base model).
    /// Objectives that compare against a frozen reference compute what they need here.
    func prepare(_ context: ObjectiveContext, reference: TrainableLoRA?) throws
    /// Runs forward and backward over `microBatches` (indices into the training set) and adds
    /// the gradient of the step's loss to `context.lora.gradients` (already zeroed).
    /// `dropoutKey(i)` seeds micro-batch i's dropout.
    func accumulate(_ microBatches: [[Int]], context: ObjectiveContext, dropoutKey: (Int) -> UInt64) throws -> ObjectiveStep
    /// The current factors' loss and metrics on the first `limit` examples of `set` (all when
    /// nil); nil when the set is empty.
    func evaluate(_ set: ExampleSet, limit: Int?, context: ObjectiveContext) throws -> Evaluation?
}
