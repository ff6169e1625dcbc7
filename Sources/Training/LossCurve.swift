import Foundation

/// Train and validation loss against step: as a standalone SVG file and as a text chart.
public struct LossCurve: Sendable {
    public var train: [(step: Int, loss: Double)] = []
    public var validation: [(step: Int, loss: Double)] = []

    public init(train: [(step: Int, loss: Double)] = [], validation: [(step: Int, loss: Double)] = []) {
        self.train = train; self.validation = validation
    }

    /// Reads `events.jsonl` lines (step events carry `train_loss`, evaluations `valid_loss`).
    public init(events: [Data]) {
        for line in events {
            guard let o = (try? JSONSerialization.jsonObject(with: line)) as? [String: Any], let step = o["step"] as? Int else { continue }
            if let l = o["train_loss"] as? Double { train.append((step, l)) }
            if let l = o["valid_loss"] as? Double { validation.append((step, l)) }
        }
    }

    private var bounds: (steps: ClosedRange<Double>, loss: ClosedRange<Double>)? {
        let all = train + validation
        guard let maxStep = all.map(\.step).max(), let lo = all.map(\.loss).min(), let hi = all.map(\.loss).max() else { return nil }
        return (0...Double(max(maxStep, 1)), (lo == hi ? lo - 0.5 : lo)...(lo == hi ? hi + 0.5 : hi))
    }

    /// A self-contained SVG (no scripts, no external references).
    public func svg(title: String = "loss") -> String {
        let w = 640.0, h = 360.0, left = 56.0, right = 16.0, top = 28.0, bottom = 40.0
        var out = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(w))" height="\(Int(h))" viewBox="0 0 \(Int(w)) \(Int(h))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(left)" y="18" font-size="14">\(escape(title))</text>

        """
        guard let b = bounds else { return out + "<text x=\"\(left)\" y=\"60\">no data yet</text>\n</svg>\n" }
        func x(_ s: Int) -> Double { left + (Double(s) - b.steps.lowerBound) / (b.steps.upperBound - b.steps.lowerBound) * (w - left - right) }
        func y(_ l: Double) -> Double { top + (b.loss.upperBound - l) / (b.loss.upperBound - b.loss.lowerBound) * (h - top - bottom) }
        out += "<line x1=\"\(left)\" y1=\"\(h - bottom)\" x2=\"\(w - right)\" y2=\"\(h - bottom)\" stroke=\"#444\"/>\n"
        out += "<line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(h - bottom)\" stroke=\"#444\"/>\n"
        for i in 0...4 {
            let l = b.loss.lowerBound + Double(i) / 4 * (b.loss.upperBound - b.loss.lowerBound)
            out += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.3f</text>\n", left - 4, y(l) + 4, l)
            let s = Int((b.steps.upperBound * Double(i) / 4).rounded())
            out += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%d</text>\n", x(s), h - bottom + 16, s)
        }
        out += "<text x=\"\((w + left) / 2)\" y=\"\(h - 6)\" text-anchor=\"middle\">step</text>\n"
        func polyline(_ points: [(step: Int, loss: Double)], _ color: String) -> String {
            let p = points.map { String(format: "%.1f,%.1f", x($0.step), y($0.loss)) }.joined(separator: " ")
            return "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\"\(p)\"/>\n"
        }
        if !train.isEmpty { out += polyline(train, "#1f77b4") }
        if !validation.isEmpty {
            out += polyline(validation, "#d62728")
            for v in validation { out += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#d62728\"/>\n", x(v.step), y(v.loss)) }
        }
        out += "<text x=\"\(w - 150)\" y=\"18\" fill=\"#1f77b4\">train</text><text x=\"\(w - 90)\" y=\"18\" fill=\"#d62728\">validation</text>\n"
        return out + "</svg>\n"
    }

    /// A text chart `width` x `height` characters: `*` train loss, `o` validation loss.
    public func text(width: Int = 60, height: Int = 12) -> String {
        guard let b = bounds else { return "(no steps yet)\n" }
        var grid = [[Character]](repeating: [Character](repeating: " ", count: width), count: height)
        func put(_ s: Int, _ l: Double, _ ch: Character) {
            let cx = Int((Double(s) / b.steps.upperBound * Double(width - 1)).rounded())
            let cy = Int(((b.loss.upperBound - l) / (b.loss.upperBound - b.loss.lowerBound) * Double(height - 1)).rounded())
            grid[min(max(cy, 0), height - 1)][min(max(cx, 0), width - 1)] = ch
        }
        for p in train { put(p.step, p.loss, "*") }
        for p in validation { put(p.step, p.loss, "o") }
        var out = ""
        for (i, row) in grid.enumerated() {
            let label = i == 0 ? String(format: "%8.3f", b.loss.upperBound) : i == height - 1 ? String(format: "%8.3f", b.loss.lowerBound) : String(repeating: " ", count: 8)
            out += label + " |" + String(row) + "\n"
        }
        out += String(repeating: " ", count: 9) + "+" + String(repeating: "-", count: width) + "\n"
        out += String(repeating: " ", count: 10) + "0" + String(repeating: " ", count: max(0, width - 1 - String(Int(b.steps.upperBound)).count)) + "\(Int(b.steps.upperBound)) step\n"
        out += "          * train loss   o validation loss\n"
        return out
    }

    private func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
