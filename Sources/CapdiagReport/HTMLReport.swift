import CapdiagDiagnosis
import CapdiagWire

/// `--report FILE.html`: the Markdown report's content in one self-contained page (inline CSS,
/// no scripts, no external assets) with pictures: a timeline of failures per upstream and the
/// ladder diagrams as SVG. Every captured string goes through `Markup.html`.
public enum HTMLReport {
    public static func render(_ report: TicketReport) -> String {
        let h = Markup.html
        var out = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
            <title>capdiag report: \(h(report.headline))</title>
            <style>
            body{font-family:system-ui,sans-serif;margin:2em auto;max-width:70em;color:#222;line-height:1.4}
            table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
            code,pre{font-family:ui-monospace,monospace;font-size:90%}.fix{background:#eef6ee;padding:.4em .6em;border-radius:4px}
            .high{color:#b00020;font-weight:bold}.medium{color:#a15c00}.low{color:#555}svg{max-width:100%;height:auto}
            </style></head><body>

            """
        out += "<h1>capdiag report: \(h(report.headline))</h1>\n"
        out += "<p>" + report.captureSentence(.html) + "</p>\n"
        for caveat in report.summary.capture.caveats { out += "<p class=\"medium\"><strong>Limits of this capture:</strong> \(h(caveat))</p>\n" }
        for impact in report.diagnosis?.clientImpact ?? [] { out += "<p><strong>\(h(impact.sentence))</strong></p>\n" }

        out += "<h2>Conclusion</h2>\n"
        let affected = report.affectedUpstreams
        if affected.isEmpty {
            out += "<p>No failed connections or requests between gateway and upstream were seen (worst verdict: \(h(report.diagnosis?.worstSeverity ?? "none"))).</p>\n"
        }
        for note in report.diagnosis?.handshakeNotes ?? [] { out += "<p>\(Markup.htmlProse(note))</p>\n" }
        for upstream in affected {
            guard let cause = upstream.causes.first else { continue }
            out += "<p><strong>\(h(upstream.upstream))</strong>: \(h(cause.title)) (<code>\(h(cause.code))</code>), \(counted(cause.count, "time")), "
            out += "\(cause.sharePercent)% of its problems, \(h(cause.first)) to \(h(cause.last)), confidence \(h(cause.confidence)).</p>\n"
            out += "<p class=\"fix\">Fix: \(Markup.htmlProse(cause.fix)).</p>\n"
            if let words = TextReport.gatewayWords(cause.code) { out += "<p class=\"words\">Gateways log: \(h(words)).</p>\n" }
            if !upstream.inferences.isEmpty {
                out += "<ul>" + upstream.inferences.map { "<li>\(Markup.htmlProse($0.text))</li>" }.joined() + "</ul>\n"
            }
        }
        if report.upstreamsNotShown > 0 { out += "<p>… and \(report.upstreamsNotShown) more affected upstreams (see the JSON output).</p>\n" }
        if !affected.isEmpty {
            out += "<h2>Failures over time</h2>\n" + timeline(report, affected)
            out += "<h2>Affected upstreams</h2>\n<table><tr><th>Upstream</th><th>Requests / connections</th><th>Failures</th><th>Causes</th><th>First</th><th>Last</th></tr>\n"
            for upstream in affected {
                let causes = upstream.causes.map { "<code>\(h($0.code))</code> (\($0.count))" }.joined(separator: ", ")
                out += "<tr><td>\(h(upstream.upstream))</td><td>\(upstream.requests) / \(upstream.flows)</td><td>\(upstream.failures)</td><td>\(causes)</td>"
                out += "<td>\(h(upstream.causes.map(\.first).min() ?? ""))</td><td>\(h(upstream.causes.map(\.last).max() ?? ""))</td></tr>\n"
            }
            out += "</table>\n"
        }
        if let failures = report.diagnosis?.clientFailures, !failures.isEmpty {
            out += "<h2>Client-side failures and their upstream cause</h2>\n<table><tr><th>Time</th><th>Request</th><th>Status</th><th>Upstream attempt</th><th>Verdict</th><th>Frames</th></tr>\n"
            for failure in failures.prefix(50) {
                let attempt = failure.upstreamAttempts.last { $0.code != nil } ?? failure.upstreamAttempts.last
                out += "<tr><td>\(h(failure.time))</td><td>\(h([failure.method, failure.target].compactMap { $0 }.joined(separator: " ")))</td>"
                out += "<td>\(failure.status.map(String.init) ?? "no answer")</td><td>\(attempt.map { "\(h($0.upstream)) flow #\($0.flow)" } ?? "none captured")</td>"
                out += "<td>\(attempt?.code.map { "<code>\(h($0))</code>" } ?? "")</td><td>\(attempt.map { "\($0.firstFrame)–\($0.lastFrame)" } ?? "")</td></tr>\n"
            }
            out += "</table>\n"
        }
        out += gatewayLogSection(report)
        let healthy = report.diagnosis?.healthyUpstreams ?? []
        if !healthy.isEmpty {
            out += "<h2>Healthy upstreams</h2>\n<table><tr><th>Upstream</th><th>Requests / connections</th><th>Statuses</th><th>First byte p50 / p90 / p99</th></tr>\n"
            for upstream in healthy.prefix(20) {
                out += "<tr><td>\(h(upstream.upstream))</td><td>\(upstream.requests) / \(upstream.flows)</td><td>\(h(upstream.statusMix))</td><td>\(h(upstream.latencyPercentiles))</td></tr>\n"
            }
            out += "</table>\n"
        }
        let top = report.topFlows
        if !top.isEmpty { out += "<h2>Evidence: the top flows</h2>\n<p>Bold rows are packets a verdict cites. Offsets are from the flow's first packet.</p>\n" }
        for flow in top {
            let roles = report.roles(flow)
            out += "<h3>Flow #\(flow.id): \(h(endpoint(flow.originator))) → \(h(endpoint(flow.responder)))"
            out += report.mainFinding(flow).map { " — <code>\(h($0.code))</code>" } ?? ""
            out += "</h3>\n<ul>\n"
            for finding in flow.diagnosis?.findings ?? [] where finding.severity != "info" {
                out += "<li><span class=\"\(h(finding.severity))\">\(h(finding.code))</span> (\(h(finding.severity))"
                out += finding.proxyStatus.map { ", Proxy-Status <code>\(h($0))</code>" } ?? ""
                out += "): \(h(finding.summary))</li>\n"
            }
            if let http2 = flow.http2 { out += "<li>\(h(http2.summary))</li>\n" }
            if let file = report.exports[flow.id] { out += "<li>Packets: <a href=\"\(h(MarkdownReport.linkTarget(file)))\">\(h(file))</a></li>\n" }
            out += logLinesOfFlow(report, flow.id)
            out += "<li>tshark: <code>\(h(report.displayFilter(flow)))</code></li>\n</ul>\n"
            out += ladder(Ladder.rows(flow), left: "\(roles.left) \(endpoint(flow.originator))", right: "\(roles.right) \(endpoint(flow.responder))", id: flow.id)
        }
        if !report.exports.isEmpty {
            out += "<h2>Exported flows</h2>\n<ul>\n"
            for (id, file) in report.exports.sorted(by: { $0.key < $1.key }) {
                out += "<li>flow #\(id): <a href=\"\(h(MarkdownReport.linkTarget(file)))\">\(h(file))</a></li>\n"
            }
            out += "</ul>\n"
        }
        out += "<h2>Capture facts</h2>\n<ul>\n"
        for fact in report.captureFacts(.html) { out += "<li>\(fact)</li>\n" }
        out += "</ul>\n"
        if let thresholds = report.diagnosis?.thresholds {
            out += "<h2>Thresholds</h2>\n<p>Connect timeout \(formatDuration(thresholds.connectTimeoutNs)), read timeout \(formatDuration(thresholds.readTimeoutNs)), "
            out += "response header buffer \(thresholds.maxHeaderSize) bytes.</p>\n"
        }
        out += "<p><em>Generated by capdiag \(capdiagVersion).</em></p>\n</body></html>\n"
        return out
    }

    static let palette = ["#b00020", "#1f6fb2", "#a15c00", "#2e7d32", "#6a1b9a", "#00838f", "#555555"]

    /// One lane per upstream over the capture's time span; a tick per failure, coloured by cause.
    static func timeline(_ report: TicketReport, _ upstreams: [UpstreamConclusion]) -> String {
        let h = Markup.html
        let capture = report.summary.capture
        guard let start = capture.firstPacket.flatMap({ Timestamp(iso8601: $0) }) else { return "" }
        let span = max(capture.durationNs, 1)
        let width = 900, left = 170, lane = 28
        var codes: [String] = []
        for upstream in upstreams { for cause in upstream.causes where !codes.contains(cause.code) { codes.append(cause.code) } }
        let height = 40 + lane * upstreams.count + 18 * codes.count
        var svg = "<svg role=\"img\" aria-label=\"failures over time\" class=\"timeline\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" font-size=\"12\" font-family=\"sans-serif\">\n"
        let plot = width - left - 20
        svg += "<line x1=\"\(left)\" y1=\"\(20 + lane * upstreams.count)\" x2=\"\(left + plot)\" y2=\"\(20 + lane * upstreams.count)\" stroke=\"#888\"/>\n"
        svg += "<text x=\"\(left)\" y=\"\(34 + lane * upstreams.count)\">0 s</text>"
        svg += "<text x=\"\(left + plot)\" y=\"\(34 + lane * upstreams.count)\" text-anchor=\"end\">\(formatDuration(span))</text>\n"
        for (row, upstream) in upstreams.enumerated() {
            let y = 20 + lane * row + lane / 2
            svg += "<text x=\"\(left - 8)\" y=\"\(y + 4)\" text-anchor=\"end\">\(h(upstream.upstream))</text>\n"
            svg += "<line x1=\"\(left)\" y1=\"\(y)\" x2=\"\(left + plot)\" y2=\"\(y)\" stroke=\"#eee\"/>\n"
            for cause in upstream.causes {
                let color = palette[(codes.firstIndex(of: cause.code) ?? 0) % palette.count]
                for time in cause.times {
                    guard let at = Timestamp(iso8601: time) else { continue }
                    // Timestamps in a hostile or damaged capture may go backwards or lie past the
                    // span: clamp the share to the plot instead of trusting the arithmetic.
                    let share = min(max(Double(at - start) / Double(span), 0), 1)
                    let x = left + Int(share * Double(plot))
                    svg += "<line class=\"failure\" x1=\"\(x)\" y1=\"\(y - 9)\" x2=\"\(x)\" y2=\"\(y + 9)\" stroke=\"\(color)\" stroke-width=\"2\"><title>\(h(cause.code)) at \(h(time))</title></line>\n"
                }
            }
        }
        for (index, code) in codes.enumerated() {
            let y = 48 + lane * upstreams.count + 18 * index
            svg += "<rect x=\"\(left)\" y=\"\(y - 9)\" width=\"10\" height=\"10\" fill=\"\(palette[index % palette.count])\"/><text x=\"\(left + 16)\" y=\"\(y)\">\(h(code))</text>\n"
        }
        return svg + "</svg>\n"
    }

    /// A sequence diagram: two vertical lifelines, one arrow per packet.
    /// - Parameter id: the flow's id, to keep the diagram's element ids unique in the page.
    static func ladder(_ rows: [LadderRow], left: String, right: String, id: Int) -> String {
        let h = Markup.html
        let width = 860, leftX = 260, rightX = 760, top = 40, step = 26
        let gaps = rows.indices.filter { Ladder.idleBefore($0, in: rows) != nil }.count
        let height = top + step * (rows.count + gaps) + 20
        var svg = "<svg role=\"img\" aria-label=\"ladder diagram\" class=\"ladder\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" font-size=\"12\" font-family=\"sans-serif\">\n"
        svg += "<defs><marker id=\"arrow-\(id)\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#333\"/></marker></defs>\n"
        svg += "<text x=\"\(leftX)\" y=\"16\" text-anchor=\"middle\" font-weight=\"bold\">\(h(left))</text>"
        svg += "<text x=\"\(rightX)\" y=\"16\" text-anchor=\"middle\" font-weight=\"bold\">\(h(right))</text>\n"
        svg += "<text x=\"10\" y=\"16\">offset / frame</text>\n"
        svg += "<line x1=\"\(leftX)\" y1=\"24\" x2=\"\(leftX)\" y2=\"\(height - 10)\" stroke=\"#999\"/><line x1=\"\(rightX)\" y1=\"24\" x2=\"\(rightX)\" y2=\"\(height - 10)\" stroke=\"#999\"/>\n"
        var line = 0
        for (index, row) in rows.enumerated() {
            if let idle = Ladder.idleBefore(index, in: rows) {
                // The pause that tells the story, drawn as a gap in the lifelines' traffic.
                svg += "<text class=\"idle\" x=\"\((leftX + rightX) / 2)\" y=\"\(top + step * line - 4)\" text-anchor=\"middle\" fill=\"#666\" font-style=\"italic\">\(h(Ladder.idleText(idle)))</text>\n"
                line += 1
            }
            let y = top + step * line
            line += 1
            let weight = row.evidence ? " font-weight=\"bold\"" : ""
            let color = row.evidence ? "#b00020" : "#333"
            svg += "<text x=\"10\" y=\"\(y + 4)\"\(weight)>\(Ladder.milliseconds(row.offsetNs)) #\(row.frame)</text>\n"
            switch row.fromOriginator {
            case let fromLeft?:
                let (x1, x2) = fromLeft ? (leftX, rightX) : (rightX, leftX)
                svg += "<line class=\"packet\" x1=\"\(x1)\" y1=\"\(y)\" x2=\"\(x2)\" y2=\"\(y)\" stroke=\"\(color)\" marker-end=\"url(#arrow-\(id))\"/>\n"
            case nil:
                svg += "<line class=\"packet\" x1=\"\(rightX + 60)\" y1=\"\(y)\" x2=\"\(leftX)\" y2=\"\(y)\" stroke=\"\(color)\" stroke-dasharray=\"4 3\" marker-end=\"url(#arrow-\(id))\"/>\n"
            }
            svg += "<text x=\"\((leftX + rightX) / 2)\" y=\"\(y - 4)\" text-anchor=\"middle\" fill=\"\(color)\"\(weight)>\(h(String(row.label.prefix(60))))</text>\n"
        }
        return svg + "</svg>\n"
    }
}
