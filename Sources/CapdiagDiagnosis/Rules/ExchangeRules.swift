import CapdiagFlow
import CapdiagProtocols
import CapdiagWire

/// Evidence helpers for rules about one HTTP exchange.
extension FlowFacts {
    /// Exchanges the upstream never started answering.
    /// Parsed requests the upstream never started answering. Not on a one-sided capture,
    /// where the answers exist but were not captured.
    var unansweredExchanges: [HTTPExchange] {
        // The gateway acknowledged response bytes the capture never saw: the answer came,
        // the capture lost it (reported as capture_loss).
        guard !oneSided, resp.ackedUnseenBytes == 0 else { return [] }
        // A request whose head the capture cut (snapshot length) is still a request: what the
        // TCP headers prove about it (a RST, a FIN, silence) still counts.
        return (exchanges ?? []).filter { $0.requestStart != nil && ($0.method != nil || $0.requestCut) && $0.firstResponseByte == nil }
    }

    func requestEvidence(_ exchange: HTTPExchange) -> [Evidence] {
        guard let start = exchange.requestStart, let frame = exchange.requestFrame else { return [] }
        return [Evidence(PacketRef(frame: frame, time: start), .originator, Phrase.request(exchange), flowStart: first.time, request: start)]
    }

    func closeEvidence(_ close: (mark: ControlMark, byRST: Bool), _ actor: Actor, request: Timestamp?) -> Evidence {
        let what = close.byRST ? (close.mark.withAck ? "RST" : "RST (no ACK: no socket)") : "FIN"
        return Evidence(close.mark.packet, actor, what, flowStart: first.time, request: request)
    }

    /// The responder's close if it came after `time` minus `slack` (it concerns that request).
    func responderClose(after time: Timestamp, slack: Int64 = 0) -> (mark: ControlMark, byRST: Bool)? {
        guard let close = responderClose, close.mark.packet.time - time >= -slack else { return nil }
        return close
    }
}

/// The keep-alive race: the gateway reused an idle connection that the upstream had just
/// closed. Either the upstream's FIN came before the request or crossed it (within about one
/// round trip), or the upstream answered the request with a RST without ACK — the reply of a
/// host that no longer has a socket for the connection.
struct KeepAliveRaceRule: DiagnosisRule {
    static let id = "keepalive_race"

    func evaluate(_ facts: FlowFacts, options: DiagnosisOptions) -> [Finding] {
        // Never inside a tunnel: after CONNECT or 101 nothing is an HTTP/1 reuse.
        guard !facts.tunnelled else { return [] }
        return facts.unansweredExchanges.compactMap { exchange in
            // Reuse after idle: the previous exchange had ended (pipelined requests are not).
            guard exchange.index > 0, exchange.idleBefore != nil, let request = exchange.requestStart,
                let close = facts.responderClose, !facts.originatorClosedFirst
            else { return nil }
            let delta = close.mark.packet.time - request
            let finCrossed = !close.byRST && delta <= 2 * facts.roundTrip
            let socketGone = close.byRST && !close.mark.withAck && delta >= 0 && delta <= 4 * facts.roundTrip
            guard finCrossed || socketGone else { return nil }
            let idle = exchange.idleBefore.map { " after \(Phrase.duration($0)) idle" } ?? ""
            let how =
                finCrossed
                ? (delta < 0
                    ? "the upstream had closed it (FIN) \(Phrase.duration(-delta)) before the request"
                    : "the upstream's FIN crossed the request (\(Phrase.duration(delta)) after it)")
                : "the upstream answered with a RST without ACK \(Phrase.duration(delta)) later: it had already closed the connection"
            return finding(
                "keepalive_race", proxyStatus: "connection_terminated", .high, .reset, score: 90, at: close.mark.packet.time,
                "\(Phrase.request(exchange)) went out on a reused connection\(idle); \(how)",
                evidence: facts.requestEvidence(exchange) + [facts.closeEvidence(close, .responder, request: request)]
            ).about(exchange).measured {
                $0.idleBefore = exchange.idleBefore
                $0.closeAfterRequest = delta
            }
        }
    }
}

/// The upstream hung up after the request, before any response byte: a RST
/// (`upstream_reset_after_request`) or a FIN (`upstream_closed_before_response`).
struct UpstreamHungUpRule: DiagnosisRule {
    static let id = "upstream_hung_up"

    func evaluate(_ facts: FlowFacts, options: DiagnosisOptions) -> [Finding] {
        facts.unansweredExchanges.compactMap { exchange in
            guard let request = exchange.requestStart, let close = facts.responderClose(after: request),
                !facts.originatorClosedFirst
            else { return nil }
            let delta = close.mark.packet.time - request
            let (code, score, summary) =
                close.byRST
                ? ("upstream_reset_after_request", 90,
                    "\(facts.responder) reset the connection \(Phrase.duration(delta)) after \(Phrase.request(exchange)), before any response byte")
                : ("upstream_closed_before_response", 80,
                    "\(facts.responder) closed the connection (FIN) \(Phrase.duration(delta)) after \(Phrase.request(exchange)) without answering")
            return finding(
                code, proxyStatus: "connection_terminated", .high, .reset, score: score, at: close.mark.packet.time, summary,
                evidence: facts.requestEvidence(exchange) + [facts.closeEvidence(close, .responder, request: request)]
            ).about(exchange).measured { $0.closeAfterRequest = delta; $0.idleBefore = exchange.idleBefore }
        }
    }
}

/// The upstream stopped sending in the middle of a response, and the gateway, not the
/// upstream, ended the connection: a stall the gateway timed out (nginx "upstream timed out
/// … while reading upstream"). The silence is measured from the last new byte the upstream
/// sent. A close that follows the upstream's last byte too closely for any timeout is the
/// client walking away mid-transfer. A flow that went quiet while the capture went on (it
/// left the table idle) stalled too, unless the capture itself ended during the silence.
struct ResponseStalledRule: DiagnosisRule {
    static let id = "response_stalled"

    func evaluate(_ facts: FlowFacts, options: DiagnosisOptions) -> [Finding] {
        guard !facts.oneSided, let exchanges = facts.exchanges else { return [] }
        return exchanges.compactMap { exchange in
            // Without the request's method the response's framing is unknown (a HEAD response
            // has headers only), so a missing body proves nothing.
            guard let first = exchange.firstResponseByte, exchange.responseComplete == nil, exchange.method != nil,
                exchange.problem.map({ ["response_cut_short", "request_without_response"].contains($0.code) }) ?? true,
                exchange.index == exchanges.last?.index || exchanges.last.map({ $0.firstResponseByte == nil }) == true
            else { return nil }
            // The upstream's last new byte; not earlier than the response's first.
            let lastByte = max(facts.resp.lastNewPayload?.time ?? first, first)
            let lastFrame = facts.resp.lastNewPayload.map { $0.time >= first ? $0 : PacketRef(frame: exchange.responseFrame ?? 0, time: first) }
            var evidence = facts.requestEvidence(exchange)
            if let frame = exchange.responseFrame {
                evidence.append(Evidence(PacketRef(frame: frame, time: first), .responder, "HTTP \(exchange.status.map(String.init) ?? "response") begins", flowStart: facts.first.time, request: exchange.requestStart))
            }
            if let lastFrame, lastFrame.frame != exchange.responseFrame {
                evidence.append(Evidence(lastFrame, .responder, "last byte from the upstream", flowStart: facts.first.time, request: exchange.requestStart))
            }
            let received = exchange.declaredBodyBytes.map { "\(exchange.deliveredBodyBytes) of \($0) body bytes" } ?? "\(exchange.deliveredBodyBytes) body bytes"
            if facts.originatorClosedFirst, let close = facts.originatorClose, close.mark.packet.time >= first {
                let silence = close.mark.packet.time - lastByte
                evidence.append(facts.closeEvidence(close, .originator, request: exchange.requestStart))
                guard silence >= ResponseTimeoutRule.minimumTimeout else {
                    return finding(
                        "closed_by_client_mid_response", proxyStatus: nil, .low, .timeout, score: 10, at: close.mark.packet.time,
                        "the originator closed (\(close.byRST ? "RST" : "FIN")) while the response to \(Phrase.request(exchange)) was still arriving (\(received), last byte \(Phrase.duration(silence)) before): the client stopped the transfer, not a timeout",
                        evidence: evidence
                    ).about(exchange).measured { $0.waited = silence; $0.status = exchange.status }
                }
                // Bytes the capture missed in this response: the upstream may have said more.
                let missed = facts.resp.ackedUnseenBytes + facts.resp.missingBytes
                let caveat = missed > 0 ? "; the capture also missed \(missed) bytes of the upstream's side, so part of the silence may be capture loss" : ""
                var result = finding(
                    "response_stalled", proxyStatus: "http_response_timeout", missed > 0 ? .medium : .high, .timeout,
                    score: missed > 0 ? 60 : 100, at: close.mark.packet.time,
                    "\(facts.responder) stopped sending in the middle of the response to \(Phrase.request(exchange)) (\(received)); after \(Phrase.duration(silence)) of silence the gateway gave up with \(close.byRST ? "RST" : "FIN") (its read timeout)\(caveat)",
                    evidence: evidence
                ).about(exchange).measured { $0.waited = silence; $0.status = exchange.status; $0.missingBytes = exchange.declaredBodyBytes.map { $0 - exchange.deliveredBodyBytes } }
                result.reason = "mid_response"
                return result
            }
            // Nobody closed, the capture went on, and the flow left the table idle.
            guard facts.originatorClose == nil, facts.responderClose == nil, facts.end == .idleTimeout || facts.end == .evicted else { return nil }
            let silence = facts.last.time - lastByte
            guard silence >= ResponseTimeoutRule.minimumTimeout else { return nil }
            var result = finding(
                "response_stalled", proxyStatus: "http_response_timeout", .medium, .timeout, score: 60, at: facts.last.time,
                "\(facts.responder) stopped sending in the middle of the response to \(Phrase.request(exchange)) (\(received)); no byte for \(Phrase.duration(silence)) while the capture went on, and nobody closed the connection",
                evidence: evidence
            ).about(exchange).measured { $0.waited = silence; $0.status = exchange.status }
            result.reason = "mid_response"
            return result
        }
    }
}

/// The response started but ended early: FIN or RST before the framing said it was complete.
struct ResponseCutShortRule: DiagnosisRule {
    static let id = "response_cut_short"

    func evaluate(_ facts: FlowFacts, options: DiagnosisOptions) -> [Finding] {
        (facts.exchanges ?? []).compactMap { exchange in
            // A response to a request that could not be parsed may be a HEAD response (no body).
            guard let problem = exchange.problem, problem.code == "response_cut_short", exchange.method != nil else { return nil }
            let close = facts.responderClose
            var evidence = facts.requestEvidence(exchange)
            if let frame = exchange.responseFrame, let first = exchange.firstResponseByte {
                evidence.append(Evidence(PacketRef(frame: frame, time: first), .responder, "HTTP \(exchange.status.map(String.init) ?? "response")", flowStart: facts.first.time, request: exchange.requestStart))
            }
            if let close { evidence.append(facts.closeEvidence(close, .responder, request: exchange.requestStart)) }
            let missing = exchange.declaredBodyBytes.map { $0 - exchange.deliveredBodyBytes }
            guard close != nil else {
                // The gateway had closed before the answer began: it gave up waiting, and the
                // late answer met a closed socket (the read timeout rule says so).
                if let gaveUp = facts.originatorClose, let first = exchange.firstResponseByte, gaveUp.mark.packet.time < first { return nil }
                // Nobody closed: the capture stopped while the response was still arriving.
                return finding(
                    "response_unfinished_at_capture_end", proxyStatus: nil, .low, .invalidResponse, score: 10,
                    at: facts.last.time,
                    "the response to \(Phrase.request(exchange)) from \(facts.responder) was still arriving when the capture ended",
                    evidence: evidence
                ).about(exchange).measured { $0.missingBytes = missing; $0.status = exchange.status }
            }
            var result = finding(
                "response_cut_short", proxyStatus: "http_response_incomplete", .high, .invalidResponse, score: 90,
                at: close?.mark.packet.time ?? facts.last.time,
                "the response to \(Phrase.request(exchange)) from \(facts.responder) was cut short: \(problem.detail)",
                evidence: evidence
            ).about(exchange).measured { $0.missingBytes = missing; $0.status = exchange.status }
            // The upstream reset (or closed) mid-response.
            result.reason = close?.byRST == true ? "reset_mid_response" : "closed_mid_response"
            return result
        }
    }
}

/// A response the gateway cannot parse: not HTTP, a bad status or header line, conflicting
/// framing, a bad chunk size.
struct InvalidResponseRule: DiagnosisRule {
    static let id = "invalid_response"
    static let codes: Set<String> = [
        "not_http", "bad_status_line", "bad_header_line", "conflicting_content_length_transfer_encoding",
        "bad_content_length", "bad_transfer_encoding", "bad_chunk_size",
    ]

    func evaluate(_ facts: FlowFacts, options: DiagnosisOptions) -> [Finding] {
        (facts.exchanges ?? []).compactMap { exchange in
            guard let problem = exchange.problem, Self.codes.contains(problem.code) else { return nil }
            let time = exchange.firstResponseByte ?? facts.last.time
            var evidence = facts.requestEvidence(exchange)
            if let frame = exchange.responseFrame {
                evidence.append(Evidence(PacketRef(frame: frame, time: time), .responder, problem.code.replacingUnderscores, flowStart: facts.first.time, request: exchange.requestStart))
            }
            // No request was seen for these bytes: the capture joined mid-stream, or the server
            // spoke first. Nothing tells what they answer, so they are not judged.
            if exchange.requestStart == nil && (facts.syn == nil || exchange.index == 0) {
                return finding(
                    "unparsed_mid_stream", proxyStatus: nil, .info, .invalidResponse, score: 0, at: time,
                    "\(facts.responder) sent bytes that are no HTTP/1 message start with no request seen for them (\(problem.detail)): the capture joined mid-stream or the server spoke first",
                    evidence: evidence
                ).about(exchange)
            }
            // Bytes after a complete response, with no request for them: the previous response
            // sent more than its framing said (nginx: "upstream sent more data than specified").
            // Only after a real HTTP/1 request: an HTTP/0.9 exchange has no framing to exceed.
            if exchange.requestStart == nil && exchange.index > 0 {
                guard (facts.exchanges ?? []).contains(where: { $0.index < exchange.index && $0.method != nil }) else { return nil }
                return finding(
                    "unexpected_response_data", proxyStatus: "http_protocol_error", .medium, .invalidResponse, score: 50,
                    at: time, "\(facts.responder) sent bytes after a complete response, with no request for them (\(problem.detail))",
                    evidence: evidence
                ).about(exchange)
            }
            // The request was never read as HTTP/1 (no version: HTTP/0.9, or junk): a reply
            // without a status line is the right answer to it, and no gateway sends such a
            // request upstream. A request cut by the capture still was HTTP/1 only if its method
            // was seen; without it, say nothing.
            guard exchange.method != nil else {
                return finding(
                    "http09_exchange", proxyStatus: nil, .info, .invalidResponse, score: 0, at: time,
                    "\(facts.responder) answered a request that is not HTTP/1.x (no version: HTTP/0.9, or unparsed) without a status line (\(problem.detail)); not a gateway's upstream exchange",
                    evidence: evidence
                ).about(exchange)
            }
            // Refused by both nginx 1.22 and HAProxy 2.6: high. By only one: medium, and the
            // summary says which, since the capture does not say which gateway is in front.
            let onlySome = problem.rejectedBy.map { names in
                names.contains("nginx") ? "nginx 1.22 refuses it, HAProxy 2.6 passes it on" : "HAProxy 2.6 refuses it, nginx 1.22 passes it on"
            }
            var result = finding(
                "invalid_response", proxyStatus: "http_protocol_error", onlySome == nil ? .high : .medium, .invalidResponse,
                score: onlySome == nil ? 100 : 60, at: time,
                "\(facts.responder) answered \(Phrase.request(exchange)) with an invalid response (\(problem.code)): \(problem.detail)"
                    + (onlySome.map { " (\($0))" } ?? ""),
                evidence: evidence
            ).about(exchange)
            result.reason = problem.code
            return result
        }
    }
}

/// A response header section larger than the gateway's buffer (`--max-header-size`).
struct ResponseHeaderTooLargeRule: DiagnosisRule {
    static let id = "response_header_too_large"

    func evaluate(_ facts: FlowFacts, options: DiagnosisOptions) -> [Finding] {
        (facts.exchanges ?? []).compactMap { exchange in
            let unfinished = exchange.problem?.code == "header_section_too_large"
            guard unfinished || (exchange.responseHeaderBytes ?? 0) > options.maxHeaderSize else { return nil }
            let size = exchange.responseHeaderBytes
            let sizeText = size.map { "\($0) bytes" } ?? "over \(options.maxHeaderSize) bytes"
            // The gateway refusing it shows as the gateway dropping the connection after the
            // response arrived: a RST (nginx), or a FIN before the upstream closed its side.
            let abort = facts.originatorClose.flatMap { close -> (mark: ControlMark, byRST: Bool)? in
                guard let first = exchange.firstResponseByte, close.mark.packet.time >= first,
                    close.byRST || (facts.responderClose.map { $0.mark.packet.time > close.mark.packet.time } ?? true),
                    exchange.index == (facts.exchanges?.last?.index ?? exchange.index)
                else { return nil }
                return close
            }
            var evidence = facts.requestEvidence(exchange)
            if let frame = exchange.responseFrame, let first = exchange.firstResponseByte {
                evidence.append(Evidence(PacketRef(frame: frame, time: first), .responder, "response headers (\(sizeText))", flowStart: facts.first.time, request: exchange.requestStart))
            }
            if let abort { evidence.append(facts.closeEvidence(abort, .originator, request: exchange.requestStart)) }
            let summary =
                "\(facts.responder) sent a \(sizeText) response header section for \(Phrase.request(exchange)), over the \(options.maxHeaderSize)-byte limit"
                + (abort.map { "; the gateway then dropped the connection (\($0.byRST ? "RST" : "FIN")) without another request" } ?? "")
            return finding(
                "response_header_too_large", proxyStatus: "http_response_header_section_size", abort != nil || unfinished ? .high : .low,
                .invalidResponse, score: abort != nil || unfinished ? 100 : 40,
                at: abort?.mark.packet.time ?? exchange.firstResponseByte ?? facts.last.time, summary, evidence: evidence
            ).about(exchange).measured { $0.headerBytes = size }
        }
    }
}

/// The gateway gave up waiting: it closed (FIN) or reset the connection after the request
/// and before the response arrived. The wait is the gateway's read timeout.
struct ResponseTimeoutRule: DiagnosisRule {
    static let id = "response_timeout"
    static let minimumTimeout: Int64 = 500_000_000

    func evaluate(_ facts: FlowFacts, options: DiagnosisOptions) -> [Finding] {
        guard let close = facts.originatorClose, !facts.oneSided else { return [] }
        return (facts.exchanges ?? []).compactMap { exchange in
            if exchange.requestStart == nil { return lostRequest(exchange, close, facts) }
            // The gateway acknowledged response bytes the capture never saw: the answer came.
            guard facts.resp.ackedUnseenBytes == 0 else { return nil }
            guard let request = exchange.requestStart, exchange.method != nil, close.mark.packet.time > request,
                exchange.firstResponseByte.map({ $0 > close.mark.packet.time }) ?? true,
                facts.originatorClosedFirst
            else { return nil }
            // Silence from the last byte the upstream sent after the request (a 100 Continue,
            // say), else from the request.
            let lastHeard = max(request, exchange.firstResponseByte == nil ? (facts.resp.lastNewPayload?.time ?? request) : request)
            let waited = close.mark.packet.time - lastHeard
            var evidence = facts.requestEvidence(exchange) + [facts.closeEvidence(close, .originator, request: request)]
            // Gateways wait at least about a second; closing sooner is a client half-closing
            // after its request or aborting, not a read timeout.
            guard waited >= Self.minimumTimeout else {
                return finding(
                    "closed_by_client_before_response", proxyStatus: nil, .low, .timeout, score: 20, at: close.mark.packet.time,
                    "the originator closed (\(close.byRST ? "RST" : "FIN")) only \(Phrase.duration(waited)) after \(Phrase.request(exchange)), before any answer: too soon for a gateway timeout (a half-close or an abort)",
                    evidence: evidence
                ).about(exchange).measured { $0.waited = waited }
            }
            var late = ""
            if let first = exchange.firstResponseByte, let frame = exchange.responseFrame {
                late = "; the upstream answered \(exchange.status.map(String.init) ?? "") only \(Phrase.duration(first - request)) after the request, too late"
                evidence.append(Evidence(PacketRef(frame: frame, time: first), .responder, "late response", flowStart: facts.first.time, request: request))
            }
            return finding(
                "response_timeout", proxyStatus: "http_response_timeout", .high, .timeout, score: 100, at: close.mark.packet.time,
                "no response from \(facts.responder) to \(Phrase.request(exchange)); the gateway gave up after \(Phrase.duration(waited)) of silence with \(close.byRST ? "RST" : "FIN")\(late)",
                evidence: evidence
            ).about(exchange).measured { $0.waited = waited }
        }
    }
}

extension ResponseTimeoutRule {
    /// The request was lost by the capture (the upstream acknowledged bytes never seen), the
    /// gateway closed, and the answer came only after that: still a timeout, timed from the
    /// handshake since the request's own time is unknown.
    func lostRequest(_ exchange: HTTPExchange, _ close: (mark: ControlMark, byRST: Bool), _ facts: FlowFacts) -> Finding? {
        guard facts.orig.ackedUnseenBytes > 0, let first = exchange.firstResponseByte, first > close.mark.packet.time,
            let connected = facts.handshakeAck ?? facts.synAck
        else { return nil }
        let waited = close.mark.packet.time - connected.time
        var evidence = [facts.closeEvidence(close, .originator, request: nil)]
        if let frame = exchange.responseFrame {
            evidence.append(Evidence(PacketRef(frame: frame, time: first), .responder, "late response", flowStart: facts.first.time))
        }
        return finding(
            "response_timeout", proxyStatus: "http_response_timeout", .high, .timeout, score: 90, at: close.mark.packet.time,
            "the gateway sent a request the capture missed (\(facts.orig.ackedUnseenBytes) bytes acknowledged, not seen), gave up \(Phrase.duration(waited)) after connecting with \(close.byRST ? "RST" : "FIN"), and \(facts.responder) answered only \(Phrase.duration(first - close.mark.packet.time)) later",
            evidence: evidence
        ).about(exchange).measured { $0.waited = waited }
    }
}

/// A request still unanswered when the flow or the capture ended.
struct UnansweredRequestRule: DiagnosisRule {
    static let id = "request_unanswered"

    func evaluate(_ facts: FlowFacts, options: DiagnosisOptions) -> [Finding] {
        facts.unansweredExchanges.compactMap { exchange in
            guard let request = exchange.requestStart else { return nil }
            // Measured to when the capture ended (or the flow left the table), not to the
            // flow's last packet: a capture that went on is waiting time too.
            let waited = (facts.endedAt.map { max($0, facts.last.time) } ?? facts.last.time) - request
            let overdue = waited >= options.readTimeout
            // The capture ending sooner than a gateway would time out proves nothing yet; a
            // flow that went quiet while the capture went on (idle timeout) does.
            let severity: Severity = overdue ? .high : facts.end == .endOfCapture ? .low : .medium
            return finding(
                "request_unanswered", proxyStatus: overdue ? "http_response_timeout" : nil, severity, .timeout,
                score: overdue ? 90 : severity == .low ? 20 : 50, at: facts.last.time,
                facts.end == .endOfCapture
                    ? "\(Phrase.request(exchange)) to \(facts.responder) had no response \(Phrase.duration(waited)) later, when the capture ended"
                    : "\(Phrase.request(exchange)) to \(facts.responder) had no response; nothing more was seen on the connection until it left the table (\(facts.end?.rawValue ?? "ended"))",
                evidence: facts.requestEvidence(exchange)
            ).about(exchange).measured { $0.waited = waited }
        }
    }
}

/// The server answered with a 5xx itself. Without any sign of a proxy it is the application's
/// own error, not a network fault. A 502/503/504 from a server that says it is a proxy or load
/// balancer (`Server: nginx`, `Via`, `Proxy-Status`, `x-envoy-*`) is that gateway's own answer:
/// the cause lies between it and its upstream, and the cross-flow join says whether that leg is
/// in the capture.
struct UpstreamErrorStatusRule: DiagnosisRule {
    static let id = "upstream_application_error"

    func evaluate(_ facts: FlowFacts, options: DiagnosisOptions) -> [Finding] {
        (facts.exchanges ?? []).compactMap { exchange in
            guard let status = exchange.status, (500...599).contains(status), let first = exchange.firstResponseByte else { return nil }
            var evidence = facts.requestEvidence(exchange)
            if let frame = exchange.responseFrame {
                evidence.append(Evidence(PacketRef(frame: frame, time: first), .responder, "HTTP \(status) \(exchange.reason ?? "")", flowStart: facts.first.time, request: exchange.requestStart))
            }
            let waited = exchange.requestStart.map { first - $0 }
            if (502...504).contains(status), let sign = exchange.gatewaySign {
                return finding(
                    "gateway_error_answer", proxyStatus: nil, .medium, .invalidResponse, score: 0, at: first,
                    "\(facts.responder) answered \(Phrase.request(exchange)) with \(status) \(exchange.reason ?? "")\(waited.map { " after \(Phrase.duration($0))" } ?? ""), and it is itself a gateway (\(sign)): the cause lies between it and its upstream",
                    evidence: evidence
                ).about(exchange).measured { $0.status = status; $0.waited = waited }
            }
            return finding(
                "upstream_application_error", proxyStatus: nil, .medium, .invalidResponse, score: 0, at: first,
                "\(facts.responder) answered \(Phrase.request(exchange)) with \(status) \(exchange.reason ?? ""): a valid HTTP error answer, not a network fault (an upstream's own error; on a client leg, the gateway's answer, explained by its upstream verdicts)",
                evidence: evidence
            ).about(exchange).measured { $0.status = status }
        }
    }
}

extension String {
    var replacingUnderscores: String { split(separator: "_").joined(separator: " ") }
}
