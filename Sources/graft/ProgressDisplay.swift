import Foundation
import Training

/// Training progress on standard error: a bar redrawn in place on a terminal, one line per
/// step otherwise (logs, pipes).
final class ProgressDisplay {
    let interactive = isatty(2) != 0
    private var drawn = false

    func update(_ r: StepReport, validation: Evaluation?, elapsed: Double) {
        let remaining = elapsed / Double(r.step) * Double(r.totalSteps - r.step)
        var parts = [
            "step \(r.step)/\(r.totalSteps)",
            String(format: "epoch %.2f", r.epoch),
            String(format: "loss %.4f", r.trainLoss),
        ]
        // Preference runs: how often the chosen answer wins, and by how much.
        let named = Dictionary(r.metrics.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
        if let acc = named["rewards/accuracies"], let margin = named["rewards/margins"] {
            parts.append(String(format: "acc %.2f  margin %.3f", acc, margin))
        }
        if let validation {
            parts.append(String(format: "val %.4f", validation.loss))
            if let acc = validation.metrics?.first(where: { $0.name == "rewards/accuracies" }) {
                parts.append(String(format: "val acc %.2f", acc.value))
            }
        }
        parts.append(String(format: "lr %.2e", r.learningRate))
        parts.append(String(format: "%.0f tok/s", r.tokensPerSecond))
        parts.append("ETA \(duration(remaining))")
        if interactive {
            let width = 24, filled = width * r.step / max(r.totalSteps, 1)
            let bar = "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "]"
            FileHandle.standardError.write(Data(("\r\u{1B}[2K" + bar + " " + parts.joined(separator: "  ")).utf8))
            drawn = true
        } else {
            Terminal.note(parts.joined(separator: "  "))
        }
    }

    func finish() {
        if drawn { FileHandle.standardError.write(Data("\n".utf8)); drawn = false }
    }
}

func duration(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "?" }
    let s = Int(seconds.rounded())
    return s >= 3600 ? "\(s / 3600)h\(s % 3600 / 60)m" : s >= 60 ? "\(s / 60)m\(s % 60)s" : "\(s)s"
}
