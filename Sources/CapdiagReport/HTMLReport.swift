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
            out += "\(cause.sharePercent)% of its problems, \(time(report, cause.first)) to \(time(report, cause.last)), confidence \(h(cause.confidence))"
            out += cause.examples.isEmpty ? ".</p>\n" : "; for example \(cause.examples.prefix(3).map { report.flowReference($0.flow, .html) }.joined(separator: ", ")).</p>\n"
            out += "<p class=\"fix\">Fix: \(Markup.htmlProse(cause.fix)).</p>\n"
            if let words = TextReport.gatewayWords(cause.code) { out += "<p class=\"words\">Gateways log: \(h(words)).</p>\n" }
            if !upstream.inferences.isEmpty {
                out += "<ul>" + upstream.inferences.map { "<li>\(Markup.htmlProse($0.text))</li>" }.joined() + "</ul>\n"
            }
        }
        if report.upstreamsNotShown > 0 { out += "<p>… and \(report.upstreamsNotShown) more affected upstreams (see the JSON output).</p>\n" }
        // Healthy upstreams get lanes too: their steady traffic beside the failing one's is
        // part of the evidence.
        let lanes = Array((affected + (report.diagnosis?.healthyUpstreams ?? []).filter { $0.activity != nil }).prefix(TicketReport.upstreamLimit))
        if !lanes.isEmpty { out += "<h2>Requests and failures over time</h2>\n" + timeline(report, lanes) }
        if !affected.isEmpty {
            out += "<h2>Affected upstreams</h2>\n<table><tr><th>Upstream</th><th>Requests / connections</th><th>Failures</th><th>Causes</th><th>First (UTC)</th><th>Last (UTC)</th></tr>\n"
            for upstream in affected {
                let causes = upstream.causes.map { "<code>\(h($0.code))</code> (\($0.count))" }.joined(separator: ", ")
                out += "<tr><td>\(h(upstream.upstream))</td><td>\(upstream.requests) / \(upstream.flows)</td><td>\(upstream.failures)</td><td>\(causes)</td>"
                out += "<td>\(time(report, upstream.causes.map(\.first).min() ?? ""))</td><td>\(time(report, upstream.causes.map(\.last).max() ?? ""))</td></tr>\n"
            }
            out += "</table>\n"
        }
        if let failures = report.diagnosis?.clientFailures, !failures.isEmpty {
            out += "<h2>Client-side failures and their upstream cause</h2>\n<table><tr><th>Time (UTC)</th><th>Request</th><th>Status</th><th>Upstream attempt</th><th>Verdict</th><th>Frames</th></tr>\n"
            for failure in failures.prefix(50) {
                let attempt = failure.upstreamAttempts.last { $0.code != nil } ?? failure.upstreamAttempts.last
                out += "<tr><td>\(time(report, failure.time))</td><td>\(h([failure.method, failure.target].compactMap { $0 }.joined(separator: " ")))</td>"
                out += "<td>\(failure.status.map(String.init) ?? "no answer")</td><td>\(attempt.map { "\(h($0.upstream)) \(report.flowReference($0.flow, .html))" } ?? "none captured")</td>"
                out += "<td>\(attempt?.code.map { "<code>\(h($0))</code>" } ?? "")</td><td>\(attempt.map { frameRange($0.firstFrame, $0.lastFrame) } ?? "")</td></tr>\n"
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
        if !top.isEmpty {
            out += "<h2>Evidence: the top flows</h2>\n<p>Bold rows are packets a verdict cites. Offsets are from the flow's first packet."
            out += report.summary.capture.inputs.count > 1 ? " " + TicketReport.severalInputsNote : ""
            out += "</p>\n"
        }
        for flow in top {
            let roles = report.roles(flow)
            out += "<h3 id=\"flow-\(flow.id)\">Flow #\(flow.id): \(h(endpoint(flow.originator))) → \(h(endpoint(flow.responder)))"
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
            for item in report.displayFilterItems(flow, .html) { out += "<li>\(item)</li>\n" }
            out += "</ul>\n"
            out += ladder(Ladder.rows(flow), left: "\(roles.left) \(endpoint(flow.originator))", right: "\(roles.right) \(endpoint(flow.responder))", id: flow.id)
        }
        if !report.exports.isEmpty {
            out += "<h2>Exported flows</h2>\n<ul>\n"
            for (id, file) in report.exports.sorted(by: { $0.key < $1.key }) {
                out += "<li>\(report.flowReference(id, .html)): <a href=\"\(h(MarkdownReport.linkTarget(file)))\">\(h(file))</a></li>\n"
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

    /// A table's time to the millisecond, the full nanoseconds on hover.
    static func time(_ report: TicketReport, _ iso: String) -> String {
        let h = Markup.html
        return "<time datetime=\"\(h(iso))\" title=\"\(h(iso))\">\(h(report.clock(iso)))</time>"
    }

    static let palette = ["#b00020", "#1f6fb2", "#a15c00", "#2e7d32", "#6a1b9a", "#00838f", "#555555"]

    /// One lane per upstream over the capture's wall-clock span: a grey bar per time bucket for
    /// the attempts (requests, or connections that carried none), its red part the failures, so
    /// the failure rate shows and not only the failures; below it a tick per failure coloured by
    /// cause (the first 200 of each).
    static func timeline(_ report: TicketReport, _ upstreams: [UpstreamConclusion]) -> String {
        let h = Markup.html
        let capture = report.summary.capture
        guard let start = capture.firstPacket.flatMap({ Timestamp(iso8601: $0) }) else { return "" }
        let span = max(capture.durationNs, 1)
        let width = 900, left = 190, lane = 40, bar = 22
        let plot = width - left - 20
        var codes: [String] = []
        for upstream in upstreams { for cause in upstream.causes where !codes.contains(cause.code) { codes.append(cause.code) } }
        let axis = 20 + lane * upstreams.count
        let height = axis + 52 + 18 * codes.count
        // Timestamps in a hostile or damaged capture may go backwards or lie past the span:
        // every position is clamped to the plot instead of trusting the arithmetic.
        func x(_ at: Timestamp) -> Int { left + Int(min(max(Double(at - start) / Double(span), 0), 1) * Double(plot)) }
        let tallest = max(1, upstreams.compactMap { $0.activity?.attempts.max() }.max() ?? 1)
        var svg = "<svg role=\"img\" aria-label=\"requests and failures over time\" class=\"timeline\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" font-size=\"12\" font-family=\"sans-serif\">\n"
        for (row, upstream) in upstreams.enumerated() {
            let base = 20 + lane * row + bar
            svg += "<text x=\"\(left - 8)\" y=\"\(base - 6)\" text-anchor=\"end\">\(h(upstream.upstream))</text>\n"
            svg += "<line x1=\"\(left)\" y1=\"\(base)\" x2=\"\(left + plot)\" y2=\"\(base)\" stroke=\"#ddd\"/>\n"
            if let activity = upstream.activity, let first = Timestamp(iso8601: activity.start) {
                for (index, attempts) in activity.attempts.enumerated() where attempts > 0 {
                    let from = first + Int64(index) * activity.bucketNs, to = first + Int64(index + 1) * activity.bucketNs
                    let x1 = x(from), x2 = max(x(to), x1 + 1)
                    let failed = index < activity.failures.count ? activity.failures[index] : 0
                    let total = max(1, attempts * bar / tallest), red = min(total, failed * bar / tallest + (failed > 0 ? 1 : 0))
                    svg += "<g class=\"bucket\"><title>\(report.clock(from.iso8601)) to \(report.clock(to.iso8601)): \(counted(attempts, "attempt")), \(failed) failed</title>"
                    svg += "<rect class=\"attempts\" x=\"\(x1)\" y=\"\(base - total)\" width=\"\(x2 - x1)\" height=\"\(total)\" fill=\"#b9c7d6\"/>"
                    if red > 0 { svg += "<rect class=\"failures\" x=\"\(x1)\" y=\"\(base - red)\" width=\"\(x2 - x1)\" height=\"\(red)\" fill=\"#b00020\"/>" }
                    svg += "</g>\n"
                }
            }
            for cause in upstream.causes {
                let color = palette[(codes.firstIndex(of: cause.code) ?? 0) % palette.count]
                for time in cause.times {
                    guard let at = Timestamp(iso8601: time) else { continue }
                    let tick = x(at)
                    svg += "<line class=\"failure\" x1=\"\(tick)\" y1=\"\(base + 2)\" x2=\"\(tick)\" y2=\"\(base + 10)\" stroke=\"\(color)\" stroke-width=\"2\"><title>\(h(cause.code)) at \(h(report.clock(time)))</title></line>\n"
                }
            }
        }
        // A wall-clock axis: five labels, with milliseconds when the span is short.
        svg += "<line x1=\"\(left)\" y1=\"\(axis)\" x2=\"\(left + plot)\" y2=\"\(axis)\" stroke=\"#888\"/>\n"
        for step in 0...4 {
            let at = start + span * Int64(step) / 4
            let anchor = step == 0 ? "start" : step == 4 ? "end" : "middle"
            let label = span < 10_000_000_000 ? report.clock(at.iso8601) : String(report.clock(at.iso8601).prefix(while: { $0 != "." }))
            svg += "<line x1=\"\(x(at))\" y1=\"\(axis)\" x2=\"\(x(at))\" y2=\"\(axis + 4)\" stroke=\"#888\"/>"
            svg += "<text class=\"clock\" x=\"\(x(at))\" y=\"\(axis + 16)\" text-anchor=\"\(anchor)\">\(h(label))</text>\n"
        }
        svg += "<text x=\"\(left)\" y=\"\(axis + 34)\">bars: attempts per interval (grey), failed (red); ticks: each failure by cause (UTC)</text>\n"
        for (index, code) in codes.enumerated() {
            let y = axis + 52 + 18 * index
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
