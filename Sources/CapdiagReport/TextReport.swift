import CapdiagFlow
import CapdiagProtocols
import CapdiagWire

/// The human-readable summary printed on stdout by default.
public enum TextReport {
    public static func render(summary: SummaryRecord, builder: ReportBuilder) -> String {
        var out = ""
        if let diagnosis = summary.diagnosis { out += render(diagnosis, caveats: summary.capture.caveats) + "\n" }
        if let logs = summary.gatewayLogs { out += render(logs) + "\n" }
        let capture = summary.capture
        out += "Capture\n"
        for input in capture.inputs {
            var stop: String
            switch input.stop {
            case "read_error": stop = "read error after \(input.packetsRead) packets: \(input.error ?? "unknown")"
            case "packet_limit": stop = "stopped at the -c limit"
            case "interrupted": stop = "stopped by a signal (Ctrl-C)"
            case "duration": stop = "stopped after --duration"
            default: stop = "end of file"
            }
            out += "  \(input.path): \(input.linkTypeName), snaplen \(input.snaplen), "
            out += "\(input.packetsRead) packets read, \(stop)\n"
        }
        if let filter = capture.filter { out += "  filter: \(filter)\n" }
        if let kernel = capture.kernel {
            out += "  kernel: \(kernel.received) packets received, \(kernel.dropped) dropped by the kernel, "
            out += "\(kernel.interfaceDropped) by the interface\n"
            if kernel.dropped + kernel.interfaceDropped > 0 {
                out += "  WARNING: packets were dropped before capdiag saw them; conclusions may be incomplete\n"
            }
        }
        if let first = capture.firstPacket, let last = capture.lastPacket {
            out += "  time span: \(first) to \(last) (\(formatDuration(capture.durationNs)))\n"
        }
        let packets = capture.packets
        out += "  packets: \(packets.read) read, \(packets.decoded) decoded "
        out += "(TCP \(packets.tcp), UDP \(packets.udp), ICMP \(packets.icmp)), \(packets.skipped) skipped\n"
        for skip in capture.skipped {
            out += "    skipped \(skip.count): \(skip.layer) \(skip.reason)\n"
        }
        if packets.snaplenCut > 0 {
            out += "  \(packets.snaplenCut) packets were cut by the snapshot length (payload partly missing)\n"
        }
        let reassembly = capture.reassembly
        if reassembly.memcapHits > 0 {
            out += "  reassembly memcap (\(reassembly.memcapBytes / 1_048_576) MiB) hit \(reassembly.memcapHits) times: "
            out += "out-of-order data given up as gaps (raise --reassembly-memcap)\n"
        }
        if reassembly.directionCapHits > 0 {
            out += "  per-direction reassembly buffer (\(StreamReassembler.defaultMaximumBuffered / 1024) KiB) full "
            out += "\(reassembly.directionCapHits) times: out-of-order data given up as gaps\n"
        }
        if packets.icmpErrorsMatched + packets.icmpErrorsUnmatched > 0 {
            out += "  ICMP errors: \(packets.icmpErrorsMatched) tied to a TCP flow, "
            out += "\(packets.icmpErrorsUnmatched) for no tracked flow\n"
        }

        if let dns = summary.dns { out += render(dns) }

        let flows = summary.flows
        out += "\nTCP flows: \(flows.total)"
        out += " (at most \(flows.peakActive) open at once"
        out += flows.evicted > 0 ? ", \(flows.evicted) evicted because the flow table was full)\n" : ")\n"
        for state in ConnState.allCases {
            guard let count = flows.byConnState[state.rawValue] else { continue }
            out += "  \(pad(state.rawValue, 6)) \(pad(String(count), 7, left: true))  \(state.meaning)\n"
        }

        if flows.flagged > 0 {
            out += "\nFlagged flows: \(flows.flagged)\n"
            for record in builder.flagged { out += line(record) }
            if flows.flagged > builder.flagged.count {
                out += "  … \(flows.flagged - builder.flagged.count) more (use -T json or -T jsonl for all)\n"
            }
        }
        let others = flows.total - flows.flagged
        if others > 0 {
            out += "\nOther flows: \(others)\n"
            for record in builder.others { out += line(record) }
            if others > builder.others.count {
                out += "  … \(others - builder.others.count) more (use -T json or -T jsonl for all)\n"
            }
        }
        return out
    }

    /// One flow in one or two lines: identity, state, history, volumes and the events that matter.
    static func line(_ flow: FlowRecord) -> String {
        var text = "  #\(flow.id) \(pad(flow.connState, 6)) \(endpoint(flow.originator)) -> \(endpoint(flow.responder))"
        text += "  \(flow.history)  \(formatDuration(flow.durationNs))"
        text += "  frames \(flow.firstFrame)-\(flow.lastFrame)"
        if let sources = flow.sources {
            text += " (" + sources.map { "\(safe(PathText.lastComponent($0.path))) \($0.firstFrame)-\($0.lastFrame)" }.joined(separator: ", ") + ")"
        }
        text += "  orig \(flow.orig.packets)p/\(flow.orig.payloadBytes)B resp \(flow.resp.packets)p/\(flow.resp.payloadBytes)B"
        if flow.rolesInferred { text += "  (roles inferred)" }
        text += "\n"
        var events: [String] = []
        if flow.handshake.synRetransmitCount > 0 {
            let times = flow.handshake.synRetransmits.map { formatDuration($0.offsetNs) }.joined(separator: ", ")
            events.append("SYN sent \(flow.handshake.synRetransmitCount + 1) times (again at \(times))")
        }
        if flow.handshake.syn != nil && flow.handshake.synAck == nil { events.append("no SYN-ACK") }
        // FINs and RSTs in the order they were captured: who closed first decides a verdict, and
        // two closes a few microseconds apart print the same rounded time.
        var closes: [(frame: Int, text: String)] = []
        if let rst = flow.resp.firstRst { closes.append((rst.frame, "RST from responder at \(formatDuration(rst.offsetNs)) (frame \(rst.frame))")) }
        if let rst = flow.orig.firstRst { closes.append((rst.frame, "RST from originator at \(formatDuration(rst.offsetNs)) (frame \(rst.frame))")) }
        if let fin = flow.resp.firstFin { closes.append((fin.frame, "FIN from responder at \(formatDuration(fin.offsetNs)) (frame \(fin.frame))")) }
        if let fin = flow.orig.firstFin { closes.append((fin.frame, "FIN from originator at \(formatDuration(fin.offsetNs)) (frame \(fin.frame))")) }
        events += closes.sorted { $0.frame < $1.frame }.map(\.text)
        let retransmissions = flow.orig.retransmissions + flow.resp.retransmissions
        if retransmissions > 0 { events.append("\(retransmissions) retransmissions") }
        let lost = flow.orig.ackedUnseenBytes + flow.resp.ackedUnseenBytes
        if lost > 0 { events.append("\(lost) bytes ACKed but not captured") }
        if let icmp = flow.icmpError {
            events.append("ICMPv\(icmp.version == 4 ? "4" : "6") type \(icmp.type) code \(icmp.code) from \(icmp.reporter) (frame \(icmp.frame))")
        }
        if !flow.anomalies.isEmpty { events.append(flow.anomalies.joined(separator: ",")) }
        if !events.isEmpty { text += "      " + events.joined(separator: "; ") + "\n" }
        if let http2 = flow.http2 { text += "      \(safe(http2.summary))\n" }
        if let http = flow.http {
            for exchange in http.exchanges.prefix(exchangeLinesPerFlow) { text += "      " + line(exchange) + "\n" }
            if http.exchangeCount > exchangeLinesPerFlow {
                text += "      … \(http.exchangeCount - exchangeLinesPerFlow) more HTTP exchanges"
                text += " (\(http.problemCount) with a problem in all)\n"
            }
        }
        if let tls = flow.tls { text += "      " + line(tls) + "\n" }
        if let diagnosis = flow.diagnosis { text += findingLines(diagnosis) }
        if let dns = flow.dns {
            text += "      DNS over TCP: \(dns.queries) queries, \(dns.responses) responses, \(dns.unanswered) unanswered\n"
        }
        return text
    }

    /// The TLS handshake in one line.
    static func line(_ tls: TLSRecord) -> String {
        var parts: [String] = []
        var hello = "TLS"
        if let name = tls.serverName { hello += " SNI \(safe(name))" }
        if !tls.offeredVersions.isEmpty { hello += ", offered \(tls.offeredVersions.joined(separator: "/"))" }
        parts.append(hello)
        if let version = tls.version { parts.append("server chose \(version) \(tls.cipherSuite ?? "")") }
        parts.append(tls.handshakeCompleted ? "handshake completed" : "handshake not completed")
        for alert in tls.alerts {
            let level = alert.level == 2 ? "fatal " : alert.level == 1 ? "warning " : ""
            let what = alert.encrypted ? "encrypted alert" : "alert \(level)\(alert.description ?? "?")"
            parts.append("\(what) from \(alert.side) (frame \(alert.frame))")
        }
        if tls.alertAfterHandshakeWithoutData { parts.append("client alerted right after the handshake, no data sent") }
        if let reply = tls.plaintextHttpReply { parts.append("server answered with plain HTTP (frame \(reply.frame))") }
        if let violation = tls.serverViolation, tls.plaintextHttpReply == nil { parts.append("server: \(safe(violation))") }
        return parts.joined(separator: "; ")
    }

    static let exchangeLinesPerFlow = 5

    /// One line for `--interval`: what has been seen so far.
    public static func rollingLine(
        builder: ReportBuilder, packets: Int, openFlows: Int, drops: UInt64, causes: [String: Int] = [:]
    ) -> String {
        let verdicts = causes.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map { "\($0.value) \($0.key)" }
        let states = builder.byConnState.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        return "[\(Timestamp.now.iso8601)] \(packets) packets, \(openFlows) open flows, \(builder.total) ended"
            + (states.isEmpty ? "" : " (\(states))") + ", \(builder.flaggedCount) flagged, \(drops) kernel drops"
            + (verdicts.isEmpty ? "" : "; verdicts so far: " + verdicts.joined(separator: ", "))
    }

    static func render(_ dns: DNSRecord) -> String {
        var out = "\nDNS: \(dns.queries) queries, \(dns.responses) responses, \(dns.unanswered) unanswered"
        let codes = dns.rcodes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        if !codes.isEmpty { out += " (\(codes))" }
        out += "\n"
        for problem in dns.problems {
            out += "  \(problem.rcode ?? "no answer") for \(safe(problem.name)) type \(problem.queryType)"
            out += " from \(problem.server) (query frame \(problem.queryFrame))\n"
        }
        for change in dns.answerChanges {
            out += "  answer for \(safe(change.name)) changed from \(change.before.joined(separator: ","))"
            out += " to \(change.after.joined(separator: ",")) (frame \(change.frame))\n"
        }
        return out
    }

    /// One HTTP exchange: `HTTP GET /path -> 200 OK, 512 B body, first byte after 0.012s`.
    static func line(_ exchange: HTTPExchangeRecord) -> String {
        var text = "HTTP \(exchange.method ?? "?") \(safe(exchange.target ?? "?"))"
        if let status = exchange.status {
            text += " -> \(status) \(safe(exchange.reason ?? ""))"
            if !exchange.interimStatuses.isEmpty {
                text += " (after \(exchange.interimStatuses.map(String.init).joined(separator: ", ")))"
            }
            text += ", \(exchange.deliveredBodyBytes) B body"
        }
        if let ttfb = exchange.timeToFirstByteNs { text += ", first byte after \(formatDuration(ttfb))" }
        if let idle = exchange.idleBeforeNs { text += ", connection reused after \(formatDuration(idle)) idle" }
        if let problem = exchange.problem { text += "  [\(problem.code): \(safe(problem.detail))]" }
        return text
    }

    /// Captured text with control characters shown as escapes, so nothing from the wire can
    /// drive the terminal.
    static func safe(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            if scalar.value < 0x20 || scalar.value == 0x7F || (0x80..<0xA0).contains(scalar.value) {
                out += "\\x" + String(scalar.value, radix: 16)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    static func endpoint(_ endpoint: EndpointRecord) -> String {
        endpoint.address.contains(":") ? "[\(endpoint.address)]:\(endpoint.port)" : "\(endpoint.address):\(endpoint.port)"
    }

    static func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
        let padding = String(repeating: " ", count: max(0, width - text.count))
        return left ? padding + text : text + padding
    }
}
