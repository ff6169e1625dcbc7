import ArgumentParser
import DPOObjective
import HTMLReport
import Jobs
import MarkdownReport
import Training

// The dataset formats and objectives are registered in `TrainingPlugins` (shared with the daemon).
var datasetFormats: [any DatasetFormat] { TrainingPlugins.datasetFormats }
var preferenceFormats: [any PreferenceFormat] { TrainingPlugins.preferenceFormats }

extension LRSchedule: ExpressibleByArgument {}
extension TruncationSide: ExpressibleByArgument {}
extension LossOn: ExpressibleByArgument {}
extension DPOLoss.Kind: ExpressibleByArgument {}

/// Report writers for `graft eval --report`, chosen by the file's extension.
let reportWriters: [any ReportWriter] = [HTMLReport(), MarkdownReport()]
