import CapdiagGatewayLogs
import CapdiagLogJoin
import CapdiagWire

extension TextReport {
    /// With `--gateway-log`: the files, how their clocks were placed, and each logged failure
    /// beside the flow it describes.
    static func render(_ logs: GatewayLogConclusions, listLimit: Int = 50) -> String {
        var out = "Gateway logs\n"
        for file in logs.files {
            let formats = file.formats.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            out += "  \(safe(file.path)): \(file.lines) lines (\(formats.isEmpty ? "none understood" : formats))"
            out += file.badLines > 0 ? ", \(file.badLines) not understood\n" : "\n"
            for example in file.badExamples.prefix(3) { out += "    not understood: \(safe(example))\n" }
            if let problem = file.problem { out += "    \(safe(problem))\n" }
        }
        for clock in logs.clocks {
            let zone = zoneText(clock.zoneOffsetSeconds) + (clock.zoneInferred ? " (inferred: the lines name no zone)" : "")
            out += "  clock of \(safe(clock.path)): \(zone), skew \(formatMilliseconds(clock.skewNs)) against the capture, "
            out += "from \(counted(clock.matchesUsed, "match", "matches")) by \(clock.method.replacing("_", with: " "))\n"
        }
        out += "  logged failures: \(logs.agree) agree with the wire, \(logs.disagree) disagree, \(logs.noTraffic) with no traffic, "
        out += "\(logs.unmatched) unmatched\n"
        for failure in logs.failures.prefix(listLimit) {
            out += "  - \(safe(failure.file)):\(failure.line) [\(failure.agreement)] \(safe(String(failure.raw.prefix(160))))\n"
            if let flow = failure.flow, let gatewaySide = failure.gatewaySide, let upstreamSide = failure.upstreamSide {
                out += "      flow #\(flow) \(gatewaySide) -> \(upstreamSide) (matched by \(failure.matchedBy?.replacing("_", with: " ") ?? "?"))"
                out += failure.verdict.map { ": \($0)" } ?? ""
                out += "\n"
            }
            out += wrap(safe(failure.note), indent: "      ") + "\n"
        }
        let more = max(0, logs.failures.count - listLimit) + logs.failuresNotListed
        if more > 0 { out += "  … and \(more) more logged failures (see -T json)\n" }
        return out
    }

    /// What the gateways log for a verdict code, one line: nginx's message, HAProxy's
    /// termination state, Envoy's flag.
    static func gatewayWords(_ code: String) -> String? {
        var parts: [String] = []
        for kind in GatewayKind.allCases {
            let words = GatewayVocabulary.phrases(for: code, gateway: kind).prefix(2).map(\.words)
            guard !words.isEmpty else { continue }
            parts.append("\(kind.rawValue) " + words.map { "'\($0)'" }.joined(separator: " or "))
        }
        return parts.isEmpty ? nil : parts.joined(separator: "; ")
    }

    static func zoneText(_ seconds: Int) -> String {
        let sign = seconds < 0 ? "-" : "+"
        let minutes = abs(seconds) / 60
        return "UTC\(sign)\(minutes / 60 < 10 ? "0" : "")\(minutes / 60):\(minutes % 60 < 10 ? "0" : "")\(minutes % 60)"
    }

    static func formatMilliseconds(_ nanoseconds: Int64) -> String {
        let milliseconds = Double(nanoseconds) / 1e6
        let rounded = (milliseconds * 10).rounded() / 10
        return "\(rounded) ms"
    }
}
