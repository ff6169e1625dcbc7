/// Settings shared by the merge methods; each method documents which it reads.
public struct MergeOptions: Sendable {
    /// Rank of the result where the method chooses one (svd; default: the inputs' rank).
    public var rank: Int?
    /// Fraction of values kept by ties / dare (0 < density <= 1).
    public var density: Float = 0.5
    /// Seed of dare's random drop.
    public var seed: UInt64 = 0
    /// How ties elects each value's sign: by the sum of values (`total`) or by count (`frequency`).
    public var majoritySign: MajoritySign = .total

    public enum MajoritySign: String, Sendable, CaseIterable { case total, frequency }

    public init(rank: Int? = nil, density: Float = 0.5, seed: UInt64 = 0, majoritySign: MajoritySign = .total) {
        self.rank = rank; self.density = density; self.seed = seed; self.majoritySign = majoritySign
    }
}

/// One input of a merge: an adapter and its weight.
public struct WeightedAdapter: Sendable {
    public var adapter: LoRAAdapter
    public var weight: Float
    public init(_ adapter: LoRAAdapter, weight: Float) { self.adapter = adapter; self.weight = weight }
}

/// A way of combining several adapters into one. Implementations live in Plugins/ and are
/// registered by the executables.
public protocol MergeMethod: Sendable {
    /// The name users select it by (`--method NAME`).
    var name: String { get }
    /// One line for help text.
    var summary: String { get }
    /// Merges `inputs` (at least one, all validated against the same base model).
    func merge(_ inputs: [WeightedAdapter], options: MergeOptions) throws -> LoRAAdapter
}

public enum MergeError: Error, CustomStringConvertible, Equatable {
    case noInputs
    case unknownMethod(String, available: [String])
    case incompatible(String)
    case badOption(String)

    public var description: String {
        switch self {
        case .noInputs: return "nothing to merge: give at least one adapter"
        case .unknownMethod(let m, let available): return "unknown merge method '\(m)' (available: \(available.joined(separator: ", ")))"
        case .incompatible(let s): return "adapters cannot be merged this way: \(s)"
        case .badOption(let s): return "bad merge option: \(s)"
        }
    }
}
