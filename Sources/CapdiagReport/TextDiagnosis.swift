import CapdiagDiagnosis
import CapdiagWire

extension TextReport {
    /// The diagnosis, first in the text output: one paragraph per affected upstream, its
    /// causes with counts and fixes, then the client-side failures joined to their upstream
    /// attempts. Captured text (targets, reasons) goes through `safe`.
    static func render(_ diagnosis: Conclusions, caveats: [String] = []) -> String {
        var out = "Diagnosis\n"
        for caveat in caveats { out += wrap("! " + safe(caveat), indent: "  ") + "\n" }
        // What clients saw comes first; the upstream causes explain it.
        for impact in diagnosis.clientImpact { out += wrap(impact.sentence, indent: "  ") + "\n" }
        let affected = diagnosis.upstreams.filter { !$0.causes.isEmpty }
        if affected.isEmpty {
            let count = diagnosis.upstreams.count
            out += count == 0
                ? "  No connection to an upstream was seen"
                : "  No failed connections or requests to \(count == 1 ? "the upstream" : "any of the \(count) upstreams")"
            // A verdict about a server that is no upstream (a client leg, a named exclusion).
            out += diagnosis.worstSeverity == "none" ? ".\n" : "; the worst verdict of any flow is \(diagnosis.worstSeverity) (see the flows below).\n"
        }
        // One line per affected upstream before the prose: where it fails, how often, why.
        if !affected.isEmpty {
            out += "\n"
            for upstream in affected.prefix(TicketReport.upstreamLimit) {
                let causes = upstream.causes.prefix(3).map { "\($0.code) ×\($0.count)" }.joined(separator: ", ")
                // Connection attempts when no request went out (a refusing port): never "2 of 0".
                let tried = upstream.requests > 0 ? "\(upstream.requests)" : counted(upstream.flows, "connection")
                out += "  \(pad(safe(upstream.upstream), 22)) \(upstream.failures) of \(tried) failed  \(causes)\n"
            }
        }
        for note in diagnosis.handshakeNotes { out += wrap(safe(note), indent: "  ") + "\n" }
        for upstream in affected.prefix(TicketReport.upstreamLimit) {
            out += "\n" + wrap(safe(upstream.conclusion), indent: "  ") + "\n"
            for cause in upstream.causes {
                let share = cause.sharePercent
                out += "    - \(cause.code) [\(cause.severity), \(cause.family)\(cause.proxyStatus.map { ", Proxy-Status \($0)" } ?? "")]"
                out += ": \(cause.count)x, \(share)%, \(cause.first) to \(cause.last), confidence \(cause.confidence)\n"
                for example in cause.examples.prefix(3) {
                    out += "        flow #\(example.flow) frames \(example.firstFrame)-\(example.lastFrame): \(safe(example.summary))\n"
                }
                // One fix per cause: the paragraph above already ends with the main cause's.
                if cause.code != upstream.causes.first?.code { out += wrap("fix: " + cause.fix, indent: "        ") + "\n" }
                if let words = gatewayWords(cause.code) { out += wrap("gateways log: " + words, indent: "        ") + "\n" }
            }
        }
        if affected.count > TicketReport.upstreamLimit {
            out += "\n  … and \(affected.count - TicketReport.upstreamLimit) more affected upstreams (see -T json)\n"
        }
        // A server that never answered a SYN is not healthy, only unjudged.
        let healthy = diagnosis.healthyUpstreams
        if !healthy.isEmpty {
            // A healthy upstream's traffic is evidence too ("it's not the network").
            out += "\n  Healthy upstreams:\n"
            for upstream in healthy.prefix(10) { out += wrap(upstream.healthLine, indent: "    ") + "\n" }
            if healthy.count > 10 { out += "    … and \(healthy.count - 10) more\n" }
        }
        let silent = diagnosis.upstreams.filter { $0.causes.isEmpty && $0.neverAnswered }
        if !silent.isEmpty {
            out += "\n  Never answered a SYN (waited too briefly for a verdict): " + silent.prefix(10).map(\.upstream).joined(separator: ", ")
            out += (silent.count > 10 ? " and \(silent.count - 10) more" : "") + "\n"
        }
        if !diagnosis.gateways.isEmpty {
            out += "\n  Gateway listeners (client leg): "
            out += diagnosis.gateways.map { "\($0.listener) (\($0.clientRequests) requests, by \($0.how))" }.joined(separator: ", ") + "\n"
        }
        if !diagnosis.clientFailures.isEmpty {
            out += "\n  Client-side failures joined to the upstream attempts behind them: \(diagnosis.clientFailures.count + diagnosis.clientFailuresNotListed)\n"
            for failure in diagnosis.clientFailures.prefix(20) {
                out += wrap("- " + safe(failure.explanation), indent: "    ") + "\n"
            }
            if diagnosis.clientFailures.count > 20 { out += "    … \(diagnosis.clientFailures.count - 20) more (see -T json)\n" }
        }
        for failure in diagnosis.dnsFailures {
            out += "\n  DNS: \(failure.rcode) for \(safe(failure.name)), \(failure.count)x (first query frame \(failure.firstFrame))\n"
            out += wrap("fix: " + CauseInfo.of("dns_failure").fix, indent: "    ") + "\n"
        }
        let thresholds = diagnosis.thresholds
        out += "\n  Thresholds: connect timeout \(formatDuration(thresholds.connectTimeoutNs)), "
        out += "read timeout \(formatDuration(thresholds.readTimeoutNs)), max response header \(thresholds.maxHeaderSize) bytes\n"
        return out
    }

    /// The verdicts of one flow, one line each with the frames that prove them.
    static func findingLines(_ diagnosis: FlowDiagnosisRecord) -> String {
        var text = ""
        for finding in diagnosis.findings where finding.severity != "info" {
            let frames = finding.evidence.map { "\($0.frame)" }.joined(separator: ",")
            text += "      => \(finding.code) [\(finding.severity)]: \(safe(finding.summary))"
            text += frames.isEmpty ? "\n" : " (frames \(frames))\n"
        }
        let scores = diagnosis.scores
        if !diagnosis.healthy {
            text += "      scores: reset \(scores.reset), handshake \(scores.handshake), timeout \(scores.timeout), "
            text += "invalid response \(scores.invalidResponse), network \(scores.networkQuality)\n"
        }
        return text
    }

    /// Wraps at 100 columns on spaces.
    static func wrap(_ text: String, indent: String) -> String {
        var lines: [String] = []
        var line = indent
        for word in text.split(separator: " ", omittingEmptySubsequences: false) {
            if line.count + word.count + 1 > 100 && line.count > indent.count {
                lines.append(line)
                line = indent + "  "
            }
            line += (line.count > indent.count && !line.hasSuffix("  ") || line.count > indent.count + 2 ? " " : "") + word
        }
        lines.append(line)
        return lines.joined(separator: "\n")
    }
}

extension UpstreamConclusion {
    /// "10.77.2.2:9012: 30 requests in 22 connections, 200 ×30; first byte p50 0.41 ms, p90 1.1 ms, p99 2.0 ms".
    public var healthLine: String {
        var line = "\(upstream): \(counted(requests, "request")) in \(counted(flows, "connection"))"
        if !statuses.isEmpty { line += ", " + statusMix }
        if let p50 = latencyP50Ns, let p90 = latencyP90Ns, let p99 = latencyP99Ns {
            line += "; first byte p50 \(latencyText(p50)), p90 \(latencyText(p90)), p99 \(latencyText(p99))"
        }
        return line
    }

    /// "200 ×28, 502 ×2".
    var statusMix: String { statuses.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", ") }

    /// "0.41 ms / 1.1 ms / 2.0 ms" (p50 / p90 / p99), or "".
    var latencyPercentiles: String {
        [latencyP50Ns, latencyP90Ns, latencyP99Ns].compactMap { $0.map(latencyText) }.joined(separator: " / ")
    }
}

/// A latency in the report's units: milliseconds below a second, seconds above.
func latencyText(_ nanoseconds: Int64) -> String {
    let milliseconds = Double(nanoseconds) / 1e6
    if milliseconds < 1 { return "\((milliseconds * 100).rounded() / 100) ms" }
    if milliseconds < 1000 { return "\((milliseconds * 10).rounded() / 10) ms" }
    return "\((milliseconds / 10).rounded() / 100) s"
}

extension Conclusions {
    /// Upstreams without a cause that did answer (one that never answered a SYN is not
    /// healthy, only unjudged).
    var healthyUpstreams: [UpstreamConclusion] { upstreams.filter { $0.causes.isEmpty && !$0.neverAnswered } }
}
