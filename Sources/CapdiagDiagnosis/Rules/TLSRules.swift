import CapdiagFlow
import CapdiagProtocols
import CapdiagWire

/// The gateway spoke TLS and the upstream answered in plain HTTP (the upstream port is not a
/// TLS port), or the gateway spoke HTTP and the upstream answered with a TLS record.
struct TLSProtocolMismatchRule: DiagnosisRule {
    static let id = "protocol_mismatch"

    func evaluate(_ facts: FlowFacts, options: DiagnosisOptions) -> [Finding] {
        if let tls = facts.tls, let reply = tls.plaintextHTTPReply {
            var evidence: [Evidence] = []
            if let hello = tls.clientHello { evidence.append(Evidence(hello, .originator, "TLS ClientHello", flowStart: facts.first.time)) }
            evidence.append(Evidence(reply, .responder, "plain HTTP response", flowStart: facts.first.time))
            return [
                finding(
                    "protocol_mismatch", proxyStatus: "tls_protocol_error", .high, .handshake, score: 100, at: reply.time,
                    "the gateway started TLS but \(facts.responder) answered in plain HTTP: the upstream port does not speak TLS",
                    evidence: evidence)
            ]
        }
        for exchange in facts.exchanges ?? [] {
            guard let problem = exchange.problem, problem.code == "not_http", problem.detail.hasPrefix("a TLS record") else { continue }
            let time = exchange.firstResponseByte ?? exchange.requestStart ?? facts.last.time
            var evidence: [Evidence] = []
            if let start = exchange.requestStart, let frame = exchange.requestFrame {
                evidence.append(Evidence(PacketRef(frame: frame, time: start), .originator, Phrase.request(exchange), flowStart: facts.first.time))
            }
            if let frame = exchange.responseFrame {
                evidence.append(Evidence(PacketRef(frame: frame, time: time), .responder, problem.detail, flowStart: facts.first.time, request: exchange.requestStart))
            }
            return [
                finding(
                    "protocol_mismatch", proxyStatus: "http_protocol_error", .high, .invalidResponse, score: 100, at: time,
                    "the gateway sent plain HTTP but \(facts.responder) answered with TLS: the upstream expects https",
                    evidence: evidence
                ).about(exchange)
            ]
        }
        return []
    }
}

/// TLS alerts: who rejected whom, and why. Includes the pattern where the handshake completes
/// and the client at once sends an alert and closes without a request — a gateway that checked
/// the upstream's certificate after the handshake (nginx `proxy_ssl_verify`) and refused it.
/// The same bytes sent after a pause are a client closing a spare connection it never used.
struct TLSAlertRule: DiagnosisRule {
    static let id = "tls_alert"
    /// Alert descriptions about certificates (RFC 8446 §6.2).
    static let certificateAlerts: Set<UInt8> = [42, 43, 44, 45, 46, 48, 116]
    /// A certificate check runs in the client's own process right after its Finished: nginx's
    /// alert follows within microseconds (lab: ≤ 1 ms). A spare connection closes after the
    /// client decided it had no use for it, tens of milliseconds or more later.
    static let rejectionDelay: Int64 = 10_000_000

    func evaluate(_ facts: FlowFacts, options: DiagnosisOptions) -> [Finding] {
        guard let tls = facts.tls, tls.plaintextHTTPReply == nil else { return [] }
        let start = facts.first.time
        // A warning-level alert (level 1) does not end the handshake (unrecognized_name in a
        // server's first flight is common): only fatal alerts reject, and user_canceled.
        if let alert = tls.alerts.first(where: { !$0.encrypted && ($0.description ?? 0) != 0 && ($0.level != 1 || $0.description == 90) }) {
            let name = alert.descriptionName ?? "unknown"
            let fromUpstream = alert.side == .server
            let certificate = Self.certificateAlerts.contains(alert.description ?? 0)
            // A warning-level user_canceled (90) is a client walking away, not a failure.
            if !fromUpstream && alert.description == 90 {
                return [
                    finding(
                        "tls_handshake_abandoned", proxyStatus: nil, .info, .handshake, score: 0, at: alert.packet.time,
                        "the client cancelled the TLS handshake with \(facts.responder) (alert user_canceled)",
                        evidence: evidence(tls, start: start) + [Evidence(alert.packet, .originator, "TLS alert \(name)", flowStart: start)])
                ]
            }
            let code = fromUpstream ? "tls_alert_received" : (certificate ? "tls_certificate_error" : "tls_protocol_error")
            let who =
                fromUpstream
                ? "\(facts.responder) rejected the gateway's TLS handshake with alert \(name)"
                : "the gateway rejected \(facts.responder)'s TLS handshake with alert \(name)"
                    + (certificate ? ": it does not trust the upstream's certificate" : "")
            return [
                finding(
                    code, proxyStatus: code, .high, .handshake, score: 100, at: alert.packet.time, who,
                    evidence: evidence(tls, start: start) + [
                        Evidence(alert.packet, fromUpstream ? .responder : .originator, "TLS alert \(name)", flowStart: start)
                    ])
            ]
        }
        if let alert = tls.clientAlertAfterHandshake, let done = tls.handshakeDone {
            let delay = alert.time - done.time
            let version = (tls.version ?? 0) >= 0x0304 ? "TLS 1.3" : "TLS"
            let what = (tls.version ?? 0) >= 0x0304 ? "one short encrypted record (an alert)" : "an encrypted alert"
            let alertEvidence = Evidence(alert, .originator, (tls.version ?? 0) >= 0x0304 ? "short encrypted record (alert)" : "encrypted TLS alert", flowStart: start)
            guard delay <= Self.rejectionDelay else {
                return [
                    finding(
                        "tls_connection_unused", proxyStatus: nil, .info, .handshake, score: 0, at: alert.time,
                        "the client completed the \(version) handshake with \(facts.responder), sent no request and closed the connection \(Phrase.duration(delay)) later (a spare connection it never used)",
                        evidence: [alertEvidence]
                    ).measured { $0.waited = delay }
                ]
            }
            return [
                finding(
                    "tls_certificate_error", proxyStatus: "tls_certificate_error", .high, .handshake, score: 90,
                    at: alert.time,
                    "the \(version) handshake with \(facts.responder) completed, then the gateway at once (\(Phrase.duration(delay)) later) sent \(what) and closed without sending a request: it rejected the upstream's certificate (or name)",
                    evidence: evidence(tls, start: start) + [alertEvidence]
                ).measured { $0.waited = delay }
            ]
        }
        return []
    }

    private func evidence(_ tls: TLSFacts, start: Timestamp) -> [Evidence] {
        tls.clientHello.map { [Evidence($0, .originator, "TLS ClientHello" + (tls.serverName.map { " (SNI \($0))" } ?? ""), flowStart: start)] } ?? []
    }
}

/// The handshake did not finish, with no alert. Whose turn it was decides: when the server's
/// whole flight had arrived, the client owed the next message and its close is its own choice
/// (a certificate it rejected silently, or a spare connection it abandoned); when the server
/// owed it, a client that waited at least the shortest plausible timeout gave up on a server
/// that stalled (a timeout), and a server that closed hung up during the handshake.
struct TLSHandshakeStalledRule: DiagnosisRule {
    static let id = "tls_handshake_stalled"
    /// The shortest wait called a gateway's handshake timeout: gateways are configured in whole
    /// seconds (nginx `proxy_connect_timeout`, HAProxy `timeout connect`), so a client leaving
    /// sooner chose to leave. Lower when `--connect-timeout` is lower.
    static let shortestTimeout: Int64 = 1_000_000_000

    func evaluate(_ facts: FlowFacts, options: DiagnosisOptions) -> [Finding] {
        guard let tls = facts.tls, let hello = tls.clientHello, !tls.handshakeCompleted, tls.plaintextHTTPReply == nil,
            !tls.alerts.contains(where: { ($0.description ?? 1) != 0 })
        else { return [] }
        let start = facts.first.time
        let clientClose = facts.originatorClose
        let serverClose = facts.responderClose
        let clientClosedFirst = clientClose.map { client in serverClose.map { $0.mark.packet.time >= client.mark.packet.time } ?? true } ?? false
        var evidence = [Evidence(hello, .originator, "TLS ClientHello", flowStart: start)]

        // The client's turn: the server's flight arrived, the client did not finish.
        if let flight = tls.serverFlightComplete, tls.clientFinished == nil || (tls.version ?? 0) >= 0x0304 {
            evidence.append(Evidence(flight, .responder, "server's handshake flight complete", flowStart: start))
            let end = clientClose?.mark.packet ?? serverClose?.mark.packet ?? facts.last
            let after = end.time - flight.time
            let how: String
            if clientClosedFirst, let clientClose {
                evidence.append(facts.closeEvidence(clientClose, .originator, request: nil))
                how = "the client closed (\(clientClose.byRST ? "RST" : "FIN")) \(Phrase.duration(after)) later without finishing it: it rejected the server (often its certificate) or abandoned a spare connection"
            } else if let serverClose {
                evidence.append(facts.closeEvidence(serverClose, .responder, request: nil))
                how = "the client never finished it and \(facts.responder) closed \(Phrase.duration(after)) later"
            } else {
                how = "the client had not finished it \(Phrase.duration(after)) later, when the \(facts.end == .endOfCapture ? "capture" : "flow") ended"
            }
            return [
                finding(
                    "tls_handshake_abandoned", proxyStatus: nil, .info, .handshake, score: 0, at: end.time,
                    "\(facts.responder) sent its whole TLS handshake flight; \(how)", evidence: evidence
                ).measured { $0.waited = after }
            ]
        }

        // The server's turn: no ServerHello yet, or (TLS 1.2) the client's Finished unanswered.
        let waitingSince = tls.clientFinished ?? hello
        let stage = tls.version == nil ? "no ServerHello" : "the handshake did not finish"
        let minimum = min(Self.shortestTimeout, options.connectTimeout)
        if clientClosedFirst, let close = clientClose {
            let waited = close.mark.packet.time - waitingSince.time
            evidence.append(facts.closeEvidence(close, .originator, request: nil))
            guard waited >= minimum else {
                return [
                    finding(
                        "tls_handshake_abandoned", proxyStatus: nil, .low, .handshake, score: 20, at: close.mark.packet.time,
                        "\(stage) from \(facts.responder); the client closed (\(close.byRST ? "RST" : "FIN")) after only \(Phrase.duration(waited)), too soon for a gateway's handshake timeout (\(Phrase.duration(minimum)) at least): it left by itself",
                        evidence: evidence
                    ).measured { $0.waited = waited }
                ]
            }
            return [
                finding(
                    "tls_handshake_timeout", proxyStatus: "connection_timeout", .high, .timeout, score: 100,
                    at: close.mark.packet.time,
                    "\(stage) from \(facts.responder); the gateway gave up after \(Phrase.duration(waited)) (its connect/handshake timeout)",
                    evidence: evidence
                ).measured { $0.waited = waited }
            ]
        }
        if let close = serverClose {
            evidence.append(facts.closeEvidence(close, .responder, request: nil))
            return [
                finding(
                    "tls_handshake_aborted", proxyStatus: "tls_protocol_error", .high, .handshake, score: 100,
                    at: close.mark.packet.time,
                    "\(stage): \(facts.responder) closed the connection (\(close.byRST ? "RST" : "FIN")) during the TLS handshake, when it owed the next message",
                    evidence: evidence)
            ]
        }
        // Nobody closed: past the gateway's connect timeout it is a timeout all the same.
        let waited = facts.last.time - waitingSince.time
        if waited >= options.connectTimeout {
            return [
                finding(
                    "tls_handshake_timeout", proxyStatus: "connection_timeout", .high, .timeout, score: 90, at: facts.last.time,
                    "\(stage) from \(facts.responder) \(Phrase.duration(waited)) after the client's last handshake message, longer than the gateway's connect timeout",
                    evidence: evidence
                ).measured { $0.waited = waited }
            ]
        }
        return [
            finding(
                "tls_handshake_unfinished", proxyStatus: nil, .low, .handshake, score: 30, at: facts.last.time,
                "\(stage) from \(facts.responder) before the \(facts.end == .endOfCapture ? "capture" : "flow") ended", evidence: evidence)
        ]
    }
}
