import CatMerge
import DareMerge
import LinearMerge
import LlamaModel
import SVDMerge
import TiesMerge

/// The merge methods this build offers; each comes from a target under Plugins/.
enum MergePlugins {
    static let all: [any MergeMethod] = [
        LinearMerge(), CatMerge(), SVDMerge(), TiesMerge(), DareLinearMerge(), DareTiesMerge(),
    ]
}
