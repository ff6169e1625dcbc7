import LlamaModel

/// The merge methods this build offers; each comes from a target under Plugins/.
enum MergePlugins {
    static let all: [any MergeMethod] = []
}
