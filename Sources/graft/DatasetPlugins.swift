import ArgumentParser
import ChatFormat
import CompletionsFormat
import InstructionFormat
import QAFormat
import TextFormat
import Training

/// The dataset formats this program knows, in detection order: the one place they are
/// registered.
let datasetFormats: [any DatasetFormat] = [ChatFormat(), CompletionsFormat(), QAFormat(), InstructionFormat(), TextFormat()]

extension LRSchedule: ExpressibleByArgument {}
extension TruncationSide: ExpressibleByArgument {}
extension LossOn: ExpressibleByArgument {}
