import ChatFormat
import CompletionsFormat
import ImplicitPreferenceFormat
import InstructionFormat
import OpenAIPreferenceFormat
import PromptPreferenceFormat
import QAFormat
import TextFormat
import Training

/// The training plugins the programs know: the one place they are registered.
public enum TrainingPlugins {
    /// SFT dataset formats, in detection order.
    public static let datasetFormats: [any DatasetFormat] = [
        ChatFormat(), CompletionsFormat(), QAFormat(), InstructionFormat(), TextFormat(),
    ]
    /// Preference formats, in detection order (OpenAI's spelling first: it also has no `prompt`).
    public static let preferenceFormats: [any PreferenceFormat] = [
        OpenAIPreferenceFormat(), PromptPreferenceFormat(), ImplicitPreferenceFormat(),
    ]
    /// Objectives by method name.
    public static let methods = ["sft", "dpo"]
}
