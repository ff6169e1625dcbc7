import Foundation
import Training

/// The evaluation report as one self-contained HTML page: inline CSS, the loss curve as
/// inline SVG, no scripts and nothing fetched.
public struct HTMLReport: ReportWriter {
    public init() {}
    public var name: String { "html" }
    public var fileExtensions: [String] { ["html", "htm"] }

    public func render(_ r: EvalReport) -> String {
        var out = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>Evaluation of \(esc(r.adapterID))</title>
        <style>
        body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 72em; padding: 0 1em; color: #222; }
        table { border-collapse: collapse; margin: 1em 0; } th, td { border: 1px solid #ccc; padding: .35em .6em; vertical-align: top; text-align: left; }
        th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
        .right { background: #eaf7ea; } .wrong { background: #fbeaea; } .prompt { max-width: 28em; white-space: pre-wrap; color: #555; font-size: 13px; }
        .better { font-weight: bold; } caption { text-align: left; font-weight: bold; padding: .3em 0; }
        </style></head><body>
        <h1>Evaluation of \(esc(r.adapterID))</h1>
        <p>Base model \(esc(r.baseModel)); data <code>\(esc(r.file))</code>, \(r.rowCount) rows\(r.job.map { "; trained by job <code>\(esc($0))</code>" } ?? "").</p>

        """
        if let a = r.adapter {
            out += "<table><caption>Summary</caption><tr><th>metric</th><th>adapter</th>" + (r.base != nil ? "<th>base</th>" : "") + "</tr>\n"
            func row(_ name: String, _ f: (EvalReport.Summary) -> Double?, _ format: String, higherIsBetter: Bool) {
                guard let v = f(a) else { return }
                let b = r.base.flatMap(f)
                let better = b.map { higherIsBetter ? v > $0 : v < $0 } ?? false
                out += "<tr><td>\(name)</td><td class=\"num\(better ? " better" : "")\">\(String(format: format, v))</td>"
                if r.base != nil { out += "<td class=\"num\">\(b.map { String(format: format, $0) } ?? "–")</td>" }
                out += "</tr>\n"
            }
            row("loss", { $0.loss }, "%.4f", higherIsBetter: false)
            row("perplexity", { $0.perplexity }, "%.3f", higherIsBetter: false)
            row("mean token accuracy", { $0.meanTokenAccuracy }, "%.3f", higherIsBetter: true)
            row("exact match", { $0.exactMatch }, "%.3f", higherIsBetter: true)
            row("contains key words", { $0.mustContain }, "%.3f", higherIsBetter: true)
            out += "</table>\n"
        }
        if let p = r.preference {
            out += "<table><caption>Preference metrics against the reference (\(esc(r.reference ?? "the base model")))</caption><tr><th>metric</th><th>value</th></tr>\n"
            for m in p { out += "<tr><td>\(esc(m.name))</td><td class=\"num\">\(String(format: "%.4f", m.value))</td></tr>\n" }
            out += "</table>\n"
        }
        if let pairs = r.pairs, !pairs.isEmpty {
            out += "<h2>Pairs, smallest reward margin first</h2>\n<table><tr><th>line</th><th>prompt</th><th>chosen</th><th>rejected</th>"
                + "<th>chosen reward</th><th>rejected reward</th><th>margin</th></tr>\n"
            for p in pairs {
                out += "<tr><td class=\"num\">\(p.line)</td><td class=\"prompt\">\(esc(shorten(p.prompt)))</td><td>\(esc(p.chosen))</td>"
                    + "<td>\(esc(p.rejected))</td>"
                    + String(format: "<td class=\"num\">%.4f</td><td class=\"num\">%.4f</td>", p.chosenReward, p.rejectedReward)
                    + String(format: "<td class=\"num %@\">%@ %.4f</td></tr>\n", p.right ? "right" : "wrong", p.right ? "✔" : "✘", p.margin)
            }
            out += "</table>\n"
        }
        if let curve = r.curve {
            out += "<h2>Training loss</h2>\n" + curve.svg(title: r.adapterID + (r.job.map { " — \($0)" } ?? "")) + "\n"
        }
        if !r.rows.isEmpty {
            out += "<h2>Rows, worst first</h2>\n<table><tr><th>line</th><th>prompt</th><th>target</th>"
                + (r.base != nil ? "<th>base answer</th>" : "") + "<th>adapter answer</th></tr>\n"
            for row in r.rows {
                out += "<tr><td class=\"num\">\(row.line)</td><td class=\"prompt\">\(esc(shorten(row.prompt)))</td><td>\(esc(row.target))</td>"
                if let b = row.base { out += answer(b) }
                out += answer(row.adapter) + "</tr>\n"
            }
            out += "</table>\n"
        }
        return out + "</body></html>\n"
    }

    func answer(_ a: EvalReport.Answer) -> String {
        "<td class=\"\(a.right ? "right" : "wrong")\">\(a.right ? "✔" : "✘") \(esc(a.text))"
            + String(format: "<br><small>loss %.3f</small></td>", a.loss)
    }

    func shorten(_ s: String) -> String {
        let t = s.trimmingCharacters(in: .whitespacesAndNewlines)
        return t.count > 400 ? "…" + t.suffix(400) : t
    }

    func esc(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
