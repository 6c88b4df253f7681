import CapdiagDiagnosis
import CapdiagFlow
import CapdiagWire

/// What a ticket report holds: the summary with its diagnosis, the flagged flows to draw, the
/// per-flow pcap files written by `--export`, and whether credentials were masked.
public struct TicketReport: Sendable {
    public var summary: SummaryRecord
    public var flows: [FlowRecord]
    /// Flow id → exported file, relative to the report.
    public var exports: [Int: String]
    public var redacted: Bool
    /// Ladders drawn for at most this many flows.
    public var ladderLimit = 10

    public init(summary: SummaryRecord, flows: [FlowRecord], exports: [Int: String] = [:], redacted: Bool) {
        self.summary = summary
        self.flows = flows
        self.exports = exports
        self.redacted = redacted
    }

    var diagnosis: Conclusions? { summary.diagnosis }

    /// At most this many affected upstreams are described (the worst first); JSON has all.
    public static let upstreamLimit = 20

    var affectedUpstreams: [UpstreamConclusion] {
        Array((diagnosis?.upstreams.filter { !$0.causes.isEmpty } ?? []).prefix(Self.upstreamLimit))
    }

    var upstreamsNotShown: Int {
        max(0, (diagnosis?.upstreams.filter { !$0.causes.isEmpty }.count ?? 0) - Self.upstreamLimit)
    }
    var listeners: Set<String> { Set(diagnosis?.gateways.map(\.listener) ?? []) }

    /// The flows to draw: the most severe first, one per upstream and verdict before repeats.
    var topFlows: [FlowRecord] {
        let order = ["high": 0, "medium": 1, "low": 2, "info": 3, "none": 4]
        let sorted = flows.filter { $0.diagnosis?.healthy == false }.sorted {
            (order[$0.diagnosis?.severity ?? "none"] ?? 4, $0.firstFrame) < (order[$1.diagnosis?.severity ?? "none"] ?? 4, $1.firstFrame)
        }
        // Upstream legs first, one flow per upstream and verdict before repeats; client legs
        // (which only show the gateway's answer) last.
        let upstreamLeg = sorted.filter { !listeners.contains(endpoint($0.responder)) }
        let clientLeg = sorted.filter { listeners.contains(endpoint($0.responder)) }
        var seen = Set<String>()
        let firsts = upstreamLeg.filter { seen.insert("\(endpoint($0.responder)) \(mainFinding($0)?.code ?? "")").inserted }
        let rest = upstreamLeg.filter { flow in !firsts.contains { $0.id == flow.id } } + clientLeg
        return Array((firsts + rest).prefix(ladderLimit))
    }

    func mainFinding(_ flow: FlowRecord) -> FindingRecord? {
        let order = ["high": 0, "medium": 1, "low": 2, "info": 3]
        return flow.diagnosis?.findings.min { (order[$0.severity] ?? 4) < (order[$1.severity] ?? 4) }
    }

    /// Names of the two ends of a flow: gateway/upstream, or client/gateway on a client leg.
    func roles(_ flow: FlowRecord) -> (left: String, right: String) {
        listeners.contains(endpoint(flow.responder)) ? ("client", "gateway") : ("gateway", "upstream")
    }

    /// tshark display filters that select the flow's packets: one for the capture, or with
    /// several inputs one per file the flow's frames came from, numbered as in that file.
    func displayFilters(_ flow: FlowRecord) -> [(file: String?, filter: String)] {
        let ip = flow.originator.address.contains(":") ? "ipv6" : "ip"
        let endpoints = "\(ip).addr == \(flow.originator.address) && tcp.port == \(flow.originator.port) && \(ip).addr == \(flow.responder.address)"
            + " && tcp.port == \(flow.responder.port)"
        func frames(_ first: Int, _ last: Int) -> String { " && frame.number >= \(first) && frame.number <= \(last)" }
        guard let sources = flow.sources, !sources.isEmpty else { return [(nil, endpoints + frames(flow.firstFrame, flow.lastFrame))] }
        return sources.map { ($0.path, endpoints + frames($0.firstFrame, $0.lastFrame)) }
    }

    /// "tshark: `FILTER`", or per file "tshark on `FILE`: `FILTER`".
    func displayFilterItems(_ flow: FlowRecord, _ style: Style) -> [String] {
        displayFilters(flow).map { file, filter in
            (file.map { "tshark on \(style.code(PathText.lastComponent($0))): " } ?? "tshark: ") + style.code(filter)
        }
    }

    /// A table's time: `14:25:02.677` (UTC, milliseconds), with the date in front when it is
    /// not the capture's first day. The JSON keeps nanoseconds; HTML puts them in a tooltip.
    func clock(_ iso: String) -> String {
        let characters = Array(iso.utf8)
        guard characters.count >= 23, characters[10] == UInt8(ascii: "T") else { return iso }
        let time = String(decoding: characters[11..<23], as: UTF8.self)
        let day = iso.prefix(10)
        return summary.capture.firstPacket?.hasPrefix(day) == true ? time : "\(day) \(time)"
    }

    /// Said where ladders are drawn from several inputs.
    static let severalInputsNote = "Ladder frames count across all the inputs merged by time; each tshark line gives the file and its own frame numbers."

    /// The flows drawn in full (their ladders): tables link to them instead of repeating them.
    var drawnFlows: Set<Int> { Set(topFlows.map(\.id)) }

    /// "flow #5", linked to its ladder when the report draws it.
    func flowReference(_ id: Int, _ style: Style) -> String {
        drawnFlows.contains(id) ? style.link("flow #\(id)", "#flow-\(id)") : "flow #\(id)"
    }

    /// How a renderer marks up text from the capture, code, and emphasis.
    public struct Style: Sendable {
        var text: @Sendable (String) -> String
        var code: @Sendable (String) -> String
        var strong: @Sendable (String) -> String
        /// A link to an anchor of the same report (text already marked up).
        var link: @Sendable (String, String) -> String

        static let markdown = Style(
            text: Markup.markdown, code: { "`\(Markup.codeBlock($0))`" }, strong: { "**\($0)**" }, link: { "[\($0)](\($1))" })
        static let html = Style(
            text: Markup.html, code: { "<code>\(Markup.html($0))</code>" }, strong: { "<strong>\($0)</strong>" },
            link: { "<a href=\"\($1)\">\($0)</a>" })
    }

    /// "Capture: FILES, FIRST to LAST (SPAN). Credentials in the capture are masked …"
    func captureSentence(_ style: Style) -> String {
        let capture = summary.capture
        var text = "Capture: " + capture.inputs.map { style.code($0.path) }.joined(separator: ", ")
        if let first = capture.firstPacket, let last = capture.lastPacket {
            text += ", \(first) to \(last) (\(formatDuration(capture.durationNs)))"
        }
        return text + ". Credentials in the capture are "
            + (redacted ? "masked (REDACTED)." : "\(style.strong("shown")) (\(style.code("--no-redact"))).")
    }

    /// The capture facts, one item each: inputs and how reading ended, what was not decoded
    /// and why, snaplen cuts, kernel drops, flows, capture loss.
    func captureFacts(_ style: Style) -> [String] {
        let capture = summary.capture
        var facts: [String] = []
        for input in capture.inputs {
            var fact = "\(style.code(input.path)): \(style.text(input.linkTypeName)), snaplen \(input.snaplen), \(input.packetsRead) packets, "
            fact += input.stop == "end_of_file" ? "read to the end" : "stopped: \(style.text(input.stop))\(input.error.map { " (\(style.text($0)))" } ?? "")"
            facts.append(fact)
        }
        let packets = capture.packets
        facts.append("Packets: \(packets.read) read, \(packets.decoded) decoded (TCP \(packets.tcp), UDP \(packets.udp), ICMP \(packets.icmp)), \(packets.skipped) not decoded")
        for skip in capture.skipped { facts.append("\(skip.count) not decoded: \(skip.layer) \(style.text(skip.reason))") }
        if packets.snaplenCut > 0 { facts.append("\(packets.snaplenCut) packets cut by the snapshot length (payload partly missing)") }
        if let kernel = capture.kernel {
            let dropped = kernel.dropped + kernel.interfaceDropped > 0
            facts.append(
                "Kernel: \(kernel.received) received, \(kernel.dropped) dropped, \(kernel.interfaceDropped) dropped by the interface"
                    + (dropped ? " — " + style.strong("conclusions may be incomplete") : ""))
        }
        let counts = summary.flows
        facts.append(
            "TCP flows: \(counts.total), \(counts.flagged) with a verdict above info"
                + (counts.evicted > 0 ? ", \(counts.evicted) evicted (flow table full)" : ""))
        let lost = flows.map { $0.orig.ackedUnseenBytes + $0.resp.ackedUnseenBytes }.reduce(0, +)
        if lost > 0 { facts.append("Capture loss: \(lost) bytes acknowledged by the peers but missing from the capture (in the flows listed)") }
        return facts
    }

    /// Client impact first: what clients saw, then the upstream cause behind it. A failure no
    /// client saw does not make the title.
    var headline: String {
        let cause = diagnosis?.upstreams.first(where: { !$0.causes.isEmpty }).flatMap { upstream in
            upstream.causes.first.map { "\($0.title) at \(upstream.upstream)" }
        }
        let impacts = diagnosis?.clientImpact ?? []
        let failed = impacts.reduce(0) { $0 + $1.failed }
        if impacts.contains(where: { $0.listener != nil }) {
            let requests = impacts.reduce(0) { $0 + $1.requests }
            guard failed > 0 else {
                return "no client request failed (\(requests) requests)" + (cause.map { "; upstream retried: \($0)" } ?? "")
            }
            return "\(failed) of \(requests) client requests failed" + (cause.map { ": \($0)" } ?? "")
        }
        return cause ?? "no failures between gateway and upstream"
    }
}

func endpoint(_ endpoint: EndpointRecord) -> String { EndpointText.join(address: endpoint.address, port: endpoint.port) }

/// `--report FILE.md`: the conclusion first, then the affected upstreams, the client-side
/// failures, ladder diagrams of the top flows, the capture facts and the thresholds. Renders
/// on GitHub and GitLab; every captured string is escaped (see `Markup`).
public enum MarkdownReport {
    public static func render(_ report: TicketReport) -> String {
        let md = Markup.markdown
        // capdiag's own sentences (fixes, titles, inferences) may use `code` on purpose; they
        // hold no captured text but endpoints, so only control characters are neutralised.
        let own = Markup.visible
        var out = "# capdiag report: \(own(report.headline))\n\n"
        out += report.captureSentence(.markdown) + "\n\n"
        for caveat in report.summary.capture.caveats { out += "> **Limits of this capture:** \(md(caveat))\n\n" }
        for impact in report.diagnosis?.clientImpact ?? [] { out += "**\(own(impact.sentence))**\n\n" }

        out += "## Conclusion\n\n"
        let affected = report.affectedUpstreams
        if affected.isEmpty {
            out += "No failed connections or requests between gateway and upstream were seen"
            out += " (worst verdict: \(report.diagnosis?.worstSeverity ?? "none")).\n\n"
        }
        for note in report.diagnosis?.handshakeNotes ?? [] { out += "\(own(note))\n\n" }
        for upstream in affected {
            guard let cause = upstream.causes.first else { continue }
            out += "- **\(own(upstream.upstream))**: \(own(cause.title)) (`\(cause.code)`), \(counted(cause.count, "time")), "
            out += "\(cause.sharePercent)% of its problems, \(report.clock(cause.first)) to \(report.clock(cause.last)) UTC, confidence \(cause.confidence)"
            out += cause.examples.isEmpty ? ".  \n" : "; for example \(cause.examples.prefix(3).map { report.flowReference($0.flow, .markdown) }.joined(separator: ", ")).  \n"
            out += "  Fix: \(own(cause.fix)).\n"
            if let words = TextReport.gatewayWords(cause.code) { out += "  Gateways log: \(md(words)).\n" }
            for inference in upstream.inferences { out += "  - \(own(inference.text))\n" }
        }
        if report.upstreamsNotShown > 0 { out += "- … and \(report.upstreamsNotShown) more affected upstreams (see `-T json`)\n" }
        if !affected.isEmpty { out += "\n" }

        if !affected.isEmpty {
            out += "## Affected upstreams\n\n"
            out += "| Upstream | Requests / attempts | Failures | Causes (count) | First (UTC) | Last (UTC) |\n|---|---|---|---|---|---|\n"
            for upstream in affected {
                let causes = upstream.causes.map { "`\($0.code)` (\($0.count))" }.joined(separator: ", ")
                let first = report.clock(upstream.causes.map(\.first).min() ?? "")
                let last = report.clock(upstream.causes.map(\.last).max() ?? "")
                out += "| \(own(upstream.upstream)) | \(upstream.requests) / \(upstream.flows) connections | \(upstream.failures) | \(causes) | \(first) | \(last) |\n"
            }
            out += "\n"
        }

        if let failures = report.diagnosis?.clientFailures, !failures.isEmpty {
            out += "## Client-side failures and their upstream cause\n\n"
            out += "| Time (UTC) | Request | Status | Upstream attempt | Verdict | Frames |\n|---|---|---|---|---|---|\n"
            for failure in failures.prefix(50) {
                let request = md([failure.method, failure.target].compactMap { $0 }.joined(separator: " "))
                let attempt = failure.upstreamAttempts.last { $0.code != nil } ?? failure.upstreamAttempts.last
                out += "| \(report.clock(failure.time)) | \(request) | \(failure.status.map(String.init) ?? "no answer") | "
                out += attempt.map { "\(own($0.upstream)) \(report.flowReference($0.flow, .markdown))" } ?? "none captured"
                out += " | " + (attempt?.code.map { "`\($0)`" } ?? "") + " | " + (attempt.map { frameRange($0.firstFrame, $0.lastFrame) } ?? "") + " |\n"
            }
            if failures.count > 50 { out += "\n… \(failures.count - 50) more in the JSON output.\n" }
            out += "\n"
        }

        out += gatewayLogSection(report)

        let healthy = report.diagnosis?.healthyUpstreams ?? []
        if !healthy.isEmpty {
            out += "## Healthy upstreams\n\n| Upstream | Requests / connections | Statuses | First byte p50 / p90 / p99 |\n|---|---|---|---|\n"
            for upstream in healthy.prefix(20) {
                out += "| \(own(upstream.upstream)) | \(upstream.requests) / \(upstream.flows) | \(upstream.statusMix) | \(upstream.latencyPercentiles) |\n"
            }
            out += "\n"
        }

        let top = report.topFlows
        if !top.isEmpty {
            out += "## Evidence: the top flows\n\n"
            out += "Rows marked `*` are packets a verdict cites. Offsets are from the flow's first packet."
            out += report.summary.capture.inputs.count > 1 ? " " + TicketReport.severalInputsNote : ""
            out += "\n\n"
        }
        for flow in top {
            let roles = report.roles(flow)
            let main = report.mainFinding(flow)
            out += "<a id=\"flow-\(flow.id)\"></a>\n\n### Flow #\(flow.id): \(endpoint(flow.originator)) → \(endpoint(flow.responder))"
            out += main.map { " — `\($0.code)`" } ?? ""
            out += "\n\n"
            for finding in flow.diagnosis?.findings ?? [] where finding.severity != "info" {
                out += "- **\(finding.code)** (\(finding.severity)\(finding.proxyStatus.map { ", Proxy-Status `\($0)`" } ?? "")): \(md(finding.summary))\n"
            }
            let scores = flow.diagnosis?.scores
            if let scores {
                out += "- Scores: reset \(scores.reset), handshake \(scores.handshake), timeout \(scores.timeout), "
                out += "invalid response \(scores.invalidResponse), network quality \(scores.networkQuality)\n"
            }
            if let http2 = flow.http2 { out += "- \(md(http2.summary))\n" }
            if let file = report.exports[flow.id] { out += "- Packets: [\(md(file))](\(linkTarget(file)))\n" }
            out += logLinesOfFlow(report, flow.id)
            for item in report.displayFilterItems(flow, .markdown) { out += "- \(item)\n" }
            out += "\n"
            out += "```text\n"
            out += Ladder.text(
                Ladder.rows(flow), left: "\(roles.left) \(endpoint(flow.originator))", right: "\(roles.right) \(endpoint(flow.responder))")
            out += "```\n\n"
        }

        if !report.exports.isEmpty {
            out += "## Exported flows\n\n"
            for (id, file) in report.exports.sorted(by: { $0.key < $1.key }) { out += "- \(report.flowReference(id, .markdown)): [\(md(file))](\(linkTarget(file)))\n" }
            out += "\n"
        }
        out += "## Capture facts\n\n"
        for fact in report.captureFacts(.markdown) { out += "- \(fact)\n" }
        if let thresholds = report.diagnosis?.thresholds {
            out += "\n## Thresholds\n\n"
            out += "- Connect timeout \(formatDuration(thresholds.connectTimeoutNs)) (`--connect-timeout`), read timeout "
            out += "\(formatDuration(thresholds.readTimeoutNs)) (`--read-timeout`), response header buffer \(thresholds.maxHeaderSize) bytes (`--max-header-size`)\n"
        }
        out += "\n_Generated by capdiag \(capdiagVersion)._\n"
        return out
    }

    /// A relative link with the characters Markdown link targets cannot hold escaped.
    static func linkTarget(_ file: String) -> String {
        var out = ""
        for byte in file.utf8 {
            if (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || "-._/".utf8.contains(byte) {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                let hex = String(byte, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return out
    }
}

public let capdiagVersion = "0.2.0"

/// "45–46", or "73" for a single frame.
func frameRange(_ first: Int, _ last: Int) -> String { first == last ? "\(first)" : "\(first)–\(last)" }
