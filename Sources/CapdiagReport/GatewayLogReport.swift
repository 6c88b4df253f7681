import CapdiagLogJoin
import CapdiagWire

extension TicketReport {
    /// The logged failures shown in a report (the JSON has them all).
    static let gatewayLogRowLimit = 100

    var gatewayLogs: GatewayLogConclusions? { summary.gatewayLogs }

    /// The log lines joined to one flow.
    func logLines(for flow: Int) -> [LoggedFailureRecord] {
        gatewayLogs?.failures.filter { $0.flow == flow } ?? []
    }

    /// "file:line" with the file's name only (paths make the table wide).
    static func location(_ failure: LoggedFailureRecord) -> String {
        "\(PathText.lastComponent(failure.file)):\(failure.line)"
    }

    /// One sentence on how the logs were placed on the capture's clock.
    var gatewayLogSentence: String? {
        guard let logs = gatewayLogs else { return nil }
        var parts = ["logged failures: \(logs.agree) agree with the wire, \(logs.disagree) disagree, \(logs.noTraffic) had no traffic, \(logs.unmatched) found no flow"]
        for clock in logs.clocks {
            let zone = TextReport.zoneText(clock.zoneOffsetSeconds) + (clock.zoneInferred ? " (inferred)" : "")
            parts.append("\(PathText.lastComponent(clock.path)): \(zone), skew \(TextReport.formatMilliseconds(clock.skewNs)) from \(counted(clock.matchesUsed, "match", "matches")) by \(clock.method.replacing("_", with: " "))")
        }
        for file in logs.files where file.badLines > 0 {
            parts.append("\(PathText.lastComponent(file.path)): \(counted(file.badLines, "line")) not understood")
        }
        return parts.joined(separator: "; ") + "."
    }
}

extension MarkdownReport {
    /// Log line → verdict → flow → exported pcap.
    static func gatewayLogSection(_ report: TicketReport) -> String {
        guard let logs = report.gatewayLogs, let sentence = report.gatewayLogSentence else { return "" }
        let md = Markup.markdown
        var out = "## Gateway log lines and the wire\n\n\(md(sentence))\n\n"
        guard !logs.failures.isEmpty else { return out }
        out += "| Log line | Gateway's words | Wire verdict | Flow | Packets | Agreement |\n|---|---|---|---|---|---|\n"
        for failure in logs.failures.prefix(TicketReport.gatewayLogRowLimit) {
            let words = failure.words ?? failure.status.map { "status \($0)" } ?? ""
            let flow = failure.flow.map { report.flowReference($0, .markdown) } ?? "none"
            let packets = failure.flow.flatMap { report.exports[$0] }.map { "[\(md($0))](\(linkTarget($0)))" } ?? ""
            out += "| \(md(TicketReport.location(failure))) | \(md(String(words.prefix(120)))) | \(failure.verdict.map { "`\($0)`" } ?? "") | \(flow) | \(packets) | \(failure.agreement) |\n"
        }
        let more = max(0, logs.failures.count - TicketReport.gatewayLogRowLimit) + logs.failuresNotListed
        if more > 0 { out += "\n… \(more) more in the JSON output.\n" }
        let disagreements = logs.failures.filter { $0.agreement != "agrees" }.prefix(10)
        if !disagreements.isEmpty {
            out += "\n"
            for failure in disagreements { out += "- \(md(TicketReport.location(failure))): \(md(failure.note))\n" }
        }
        return out + "\n"
    }

    /// The log lines beside a flow's evidence.
    static func logLinesOfFlow(_ report: TicketReport, _ flow: Int) -> String {
        report.logLines(for: flow).prefix(4).map { failure in
            "- Gateway log \(Markup.markdown(TicketReport.location(failure))) (\(failure.agreement)): `\(Markup.codeBlock(String(failure.raw.prefix(200))))`\n"
        }.joined()
    }
}

extension HTMLReport {
    static func gatewayLogSection(_ report: TicketReport) -> String {
        guard let logs = report.gatewayLogs, let sentence = report.gatewayLogSentence else { return "" }
        let h = Markup.html
        var out = "<h2>Gateway log lines and the wire</h2>\n<p>\(h(sentence))</p>\n"
        guard !logs.failures.isEmpty else { return out }
        out += "<table><tr><th>Log line</th><th>Gateway's words</th><th>Wire verdict</th><th>Flow</th><th>Packets</th><th>Agreement</th></tr>\n"
        for failure in logs.failures.prefix(TicketReport.gatewayLogRowLimit) {
            let words = failure.words ?? failure.status.map { "status \($0)" } ?? ""
            let packets = failure.flow.flatMap { report.exports[$0] }.map { "<a href=\"\(h(MarkdownReport.linkTarget($0)))\">pcap</a>" } ?? ""
            out += "<tr title=\"\(h(failure.note))\"><td title=\"\(h(failure.raw))\">\(h(TicketReport.location(failure)))</td><td>\(h(String(words.prefix(120))))</td>"
            out += "<td>\(failure.verdict.map { "<code>\(h($0))</code>" } ?? "")</td><td>\(failure.flow.map { report.flowReference($0, .html) } ?? "none")</td>"
            out += "<td>\(packets)</td><td>\(h(failure.agreement))</td></tr>\n"
        }
        out += "</table>\n"
        let disagreements = logs.failures.filter { $0.agreement != "agrees" }.prefix(10)
        if !disagreements.isEmpty {
            out += "<ul>\n"
            for failure in disagreements { out += "<li>\(h(TicketReport.location(failure))): \(h(failure.note))</li>\n" }
            out += "</ul>\n"
        }
        return out
    }

    static func logLinesOfFlow(_ report: TicketReport, _ flow: Int) -> String {
        report.logLines(for: flow).prefix(4).map { failure in
            "<li>Gateway log \(Markup.html(TicketReport.location(failure))) (\(Markup.html(failure.agreement))): <code>\(Markup.html(String(failure.raw.prefix(200))))</code></li>\n"
        }.joined()
    }
}
