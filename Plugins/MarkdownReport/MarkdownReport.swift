import Foundation
import Training

/// The evaluation report as Markdown: summary table (adapter beside the base when measured),
/// preference metrics, then every row worst first.
public struct MarkdownReport: ReportWriter {
    public init() {}
    public var name: String { "markdown" }
    public var fileExtensions: [String] { ["md", "markdown"] }

    public func render(_ r: EvalReport) -> String {
        var out = "# Evaluation of \(r.adapterID)\n\n"
        out += "Base model \(r.baseModel); data `\(r.file)`, \(r.rowCount) rows" + (r.job.map { "; trained by job \($0)" } ?? "") + ".\n\n"
        if let a = r.adapter {
            out += "| metric | adapter |" + (r.base != nil ? " base |" : "") + "\n|---|---|" + (r.base != nil ? "---|" : "") + "\n"
            func line(_ name: String, _ f: (EvalReport.Summary) -> Double?, _ format: String) {
                guard let v = f(a) else { return }
                out += "| \(name) | \(String(format: format, v)) |" + (r.base.map { " \(f($0).map { String(format: format, $0) } ?? "-") |" } ?? "") + "\n"
            }
            line("loss", { $0.loss }, "%.4f")
            line("perplexity", { $0.perplexity }, "%.3f")
            line("mean token accuracy", { $0.meanTokenAccuracy }, "%.3f")
            line("exact match", { $0.exactMatch }, "%.3f")
            line("contains key words", { $0.mustContain }, "%.3f")
            out += "\n"
        }
        if let p = r.preference {
            out += "Preference metrics of the adapter against its reference (\(r.reference ?? "the base model")):\n\n| metric | value |\n|---|---|\n"
            for m in p { out += "| \(m.name) | \(String(format: "%.4f", m.value)) |\n" }
            out += "\n"
        }
        if let pairs = r.pairs, !pairs.isEmpty {
            out += "## Pairs, smallest reward margin first\n\n| line | prompt | chosen | rejected | chosen reward | rejected reward | margin |\n"
            out += "|---|---|---|---|---|---|---|\n"
            for p in pairs {
                out += "| \(p.line) | \(cell(p.prompt)) | \(cell(p.chosen)) | \(cell(p.rejected)) | "
                    + String(format: "%.4f | %.4f | %@ %.4f |\n", p.chosenReward, p.rejectedReward, p.right ? "✅" : "❌", p.margin)
            }
            out += "\n"
        }
        if let curve = r.curve {
            out += "Training loss: \(curve.train.count) steps, from \(String(format: "%.4f", curve.train.first!.loss)) to \(String(format: "%.4f", curve.train.last!.loss))"
            if let v = curve.validation.last { out += String(format: "; last validation loss %.4f at step %d", v.loss, v.step) }
            out += ".\n\n```\n" + curve.text() + "```\n\n"
        }
        if !r.rows.isEmpty {
            out += "## Rows, worst first\n\n| line | prompt | target | " + (r.base != nil ? "base answer | " : "") + "adapter answer |\n"
            out += "|---|---|---|" + (r.base != nil ? "---|" : "") + "---|\n"
            for row in r.rows {
                out += "| \(row.line) | \(cell(row.prompt)) | \(cell(row.target)) | "
                if let b = row.base { out += "\(mark(b)) \(cell(b.text)) | " }
                out += "\(mark(row.adapter)) \(cell(row.adapter.text)) |\n"
            }
        }
        return out
    }

    func mark(_ a: EvalReport.Answer) -> String { a.right ? "✅" : "❌" }

    /// Table-safe text: pipes escaped, line breaks as <br>, long prompts shortened from the start.
    func cell(_ s: String) -> String {
        var t = s.trimmingCharacters(in: .whitespacesAndNewlines)
        if t.count > 300 { t = "…" + t.suffix(300) }
        return t.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: "<br>")
    }
}
