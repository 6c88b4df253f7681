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

/// TLS alerts: who rejected whom, and why. Includes the TLS 1.2 pattern where the handshake
/// completes and the client then sends an encrypted alert and closes without a request — a
/// gateway that verified the upstream's certificate after the handshake and refused it.
struct TLSAlertRule: DiagnosisRule {
    static let id = "tls_alert"
    /// Alert descriptions about certificates (RFC 8446 §6.2).
    static let certificateAlerts: Set<UInt8> = [42, 43, 44, 45, 46, 48, 116]

    func evaluate(_ facts: FlowFacts, options: DiagnosisOptions) -> [Finding] {
        guard let tls = facts.tls, tls.plaintextHTTPReply == nil else { return [] }
        let start = facts.first.time
        if let alert = tls.alerts.first(where: { !$0.encrypted && ($0.description ?? 0) != 0 }) {
            let name = alert.descriptionName ?? "unknown"
            let fromUpstream = alert.side == .server
            let certificate = Self.certificateAlerts.contains(alert.description ?? 0)
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
        if tls.alertAfterHandshakeWithoutData, let alert = tls.alerts.first(where: { $0.side == .client && $0.encrypted }) {
            return [
                finding(
                    "tls_certificate_error", proxyStatus: "tls_certificate_error", .high, .handshake, score: 90,
                    at: alert.packet.time,
                    "the TLS handshake with \(facts.responder) completed, then the gateway sent an encrypted alert and closed without sending a request: it rejected the upstream's certificate (or name)",
                    evidence: evidence(tls, start: start) + [Evidence(alert.packet, .originator, "encrypted TLS alert", flowStart: start)])
            ]
        }
        return []
    }

    private func evidence(_ tls: TLSFacts, start: Timestamp) -> [Evidence] {
        tls.clientHello.map { [Evidence($0, .originator, "TLS ClientHello" + (tls.serverName.map { " (SNI \($0))" } ?? ""), flowStart: start)] } ?? []
    }
}

/// ClientHello sent, no ServerHello, no alert: the handshake stalled. Whoever closed says what
/// happened: the gateway's handshake (connect) timeout, or the upstream hanging up.
struct TLSHandshakeStalledRule: DiagnosisRule {
    static let id = "tls_handshake_stalled"

    func evaluate(_ facts: FlowFacts, options: DiagnosisOptions) -> [Finding] {
        guard let tls = facts.tls, let hello = tls.clientHello, !tls.handshakeCompleted, tls.plaintextHTTPReply == nil,
            !tls.alerts.contains(where: { ($0.description ?? 1) != 0 })
        else { return [] }
        let start = facts.first.time
        let stage = tls.version == nil ? "no ServerHello" : "the handshake did not finish"
        var evidence = [Evidence(hello, .originator, "TLS ClientHello", flowStart: start)]
        if let close = facts.originatorClose, facts.responderClose.map({ $0.mark.packet.time >= close.mark.packet.time }) ?? true {
            let waited = close.mark.packet.time - hello.time
            evidence.append(Evidence(close.mark.packet, .originator, close.byRST ? "RST" : "FIN", flowStart: start))
            return [
                finding(
                    "tls_handshake_timeout", proxyStatus: "connection_timeout", .high, .timeout, score: 100,
                    at: close.mark.packet.time,
                    "\(stage) from \(facts.responder); the gateway gave up after \(Phrase.duration(waited)) (its connect/handshake timeout)",
                    evidence: evidence
                ).measured { $0.waited = waited }
            ]
        }
        if let close = facts.responderClose {
            evidence.append(Evidence(close.mark.packet, .responder, close.byRST ? "RST" : "FIN", flowStart: start))
            return [
                finding(
                    "tls_handshake_aborted", proxyStatus: "tls_protocol_error", .high, .handshake, score: 100,
                    at: close.mark.packet.time,
                    "\(stage): \(facts.responder) closed the connection (\(close.byRST ? "RST" : "FIN")) during the TLS handshake",
                    evidence: evidence)
            ]
        }
        // Nobody closed: past the gateway's connect timeout it is a timeout all the same.
        let waited = facts.last.time - hello.time
        if waited >= options.connectTimeout {
            return [
                finding(
                    "tls_handshake_timeout", proxyStatus: "connection_timeout", .high, .timeout, score: 90, at: facts.last.time,
                    "\(stage) from \(facts.responder) \(Phrase.duration(waited)) after the ClientHello, longer than the gateway's connect timeout",
                    evidence: evidence
                ).measured { $0.waited = waited }
            ]
        }
        return [
            finding(
                "tls_handshake_unfinished", proxyStatus: nil, .low, .handshake, score: 30, at: facts.last.time,
                "\(stage) from \(facts.responder) before the capture ended", evidence: evidence)
        ]
    }
}
