import ArgumentParser
import ChatFormat
import CompletionsFormat
import DPOObjective
import HTMLReport
import ImplicitPreferenceFormat
import InstructionFormat
import MarkdownReport
import OpenAIPreferenceFormat
import PromptPreferenceFormat
import QAFormat
import TextFormat
import Training

/// The dataset formats this program knows, in detection order: the one place they are
/// registered.
let datasetFormats: [any DatasetFormat] = [ChatFormat(), CompletionsFormat(), QAFormat(), InstructionFormat(), TextFormat()]

extension LRSchedule: ExpressibleByArgument {}
extension TruncationSide: ExpressibleByArgument {}
extension LossOn: ExpressibleByArgument {}

/// The preference formats, in detection order (OpenAI's spelling first: it also has no `prompt`).
let preferenceFormats: [any PreferenceFormat] = [OpenAIPreferenceFormat(), PromptPreferenceFormat(), ImplicitPreferenceFormat()]

/// The training objectives this program knows, by `--method` name.
let objectiveMethods = ["sft", "dpo"]

extension DPOLoss.Kind: ExpressibleByArgument {}

/// Report writers for `graft eval --report`, chosen by the file's extension.
let reportWriters: [any ReportWriter] = [HTMLReport(), MarkdownReport()]
