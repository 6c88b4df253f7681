import CapdiagFlow
import CapdiagProtocols
import CapdiagWire

/// The connection was made but the upstream closed or reset it before the gateway sent a
/// byte: the upstream (or something in between) is dropping fresh connections.
struct ConnectionClosedBeforeRequestRule: DiagnosisRule {
    static let id = "closed_before_request"

    func evaluate(_ facts: FlowFacts, options: DiagnosisOptions) -> [Finding] {
        // A close in the SYN-ACK's own packet (a crafted all-flags segment) is no accepted connection.
        guard let synAck = facts.synAck, let close = facts.responderClose, close.mark.packet.time >= synAck.time,
            close.mark.packet.frame != synAck.frame,
            facts.resp.payloadBytes == 0, facts.orig.payloadBytes == 0 || facts.firstOriginatorDataAfter(close.mark.packet.time),
            // The side that closed first decides: a responder answering the originator's own
            // close did not drop anything.
            !facts.originatorClosedFirst
        else { return [] }
        let after = close.mark.packet.time - synAck.time
        let evidence = [Evidence(synAck, .responder, "SYN-ACK", flowStart: facts.first.time), facts.closeEvidence(close, .responder, request: nil)]
        if facts.orig.ackedUnseenBytes > 0 {
            // The gateway did send a request: the upstream acknowledged bytes the capture lost.
            let code = close.byRST ? "upstream_reset_after_request" : "upstream_closed_before_response"
            return [
                finding(
                    code, proxyStatus: "connection_terminated", .high, .reset, score: close.byRST ? 80 : 70,
                    at: close.mark.packet.time,
                    "\(facts.responder) \(close.byRST ? "reset" : "closed") the connection without answering after acknowledging \(facts.orig.ackedUnseenBytes) bytes from the gateway that the capture missed (the request itself was not captured)",
                    evidence: evidence)
            ]
        }
        let code = close.byRST ? "upstream_reset_before_request" : "upstream_closed_before_request"
        // A connection opened ahead of need and closed by the upstream after a while unused
        // is its idle timeout at work; only a quick close (or a reset) is dropping connections.
        let idleClose = !close.byRST && after >= 1_000_000_000
        if idleClose {
            return [
                finding(
                    "upstream_idle_close", proxyStatus: nil, .info, .reset, score: 0, at: close.mark.packet.time,
                    "\(facts.responder) closed an unused connection (FIN) after \(Phrase.duration(after)) idle",
                    evidence: [facts.closeEvidence(close, .responder, request: nil)]
                ).measured { $0.idleBefore = after }
            ]
        }
        return [
            finding(
                code, proxyStatus: "connection_terminated", .medium, .reset, score: close.byRST ? 70 : 50,
                at: close.mark.packet.time,
                "\(facts.responder) accepted the connection and \(close.byRST ? "reset" : "closed") it \(Phrase.duration(after)) later, before any request",
                evidence: evidence)
        ]
    }
}

extension FlowFacts {
    /// Whether the originator's data (if any) all came after `time`: no request preceded it.
    /// Any payload counts, HTTP, TLS or not (FTP, SMTP and custom protocols send data too).
    func firstOriginatorDataAfter(_ time: Timestamp) -> Bool {
        let request: Timestamp? = exchanges?.first?.requestStart
        guard let first = orig.firstPayload?.time ?? request ?? tls?.clientHello?.time else {
            // Payload the capture lost still was payload.
            return orig.payloadBytes == 0 && orig.ackedUnseenBytes == 0
        }
        return first > time
    }

    /// The originator sent the first FIN or RST of the connection.
    var originatorClosedFirst: Bool {
        guard let mine = originatorClose else { return false }
        guard let theirs = responderClose else { return true }
        return mine.mark.packet.time < theirs.mark.packet.time
            || (mine.mark.packet.time == theirs.mark.packet.time && mine.mark.packet.frame < theirs.mark.packet.frame)
    }
}

/// The upstream closed a kept-alive connection after it sat idle: normal, but the idle time
/// is the upstream's keep-alive timeout, which the keep-alive race inference needs.
struct IdleCloseRule: DiagnosisRule {
    static let id = "upstream_idle_close"

    func evaluate(_ facts: FlowFacts, options: DiagnosisOptions) -> [Finding] {
        // Inside a tunnel the connection no longer idles between HTTP/1 exchanges.
        // A connection that the last exchange said would close (Connection: close, HTTP/1.0)
        // ends as agreed: that is no idle timeout.
        guard !facts.tunnelled, let exchanges = facts.exchanges, let last = exchanges.last, !last.closesConnection,
            let done = last.responseComplete,
            let close = facts.responderClose, close.mark.packet.time > done,
            facts.originatorClose.map({ $0.mark.packet.time >= close.mark.packet.time }) ?? true,
            exchanges.count == facts.exchangeCount
        else { return [] }
        let idle = close.mark.packet.time - done
        return [
            finding(
                "upstream_idle_close", proxyStatus: nil, .info, .reset, score: close.byRST ? 10 : 0, at: close.mark.packet.time,
                "\(facts.responder) closed the kept-alive connection (\(close.byRST ? "RST" : "FIN")) after \(Phrase.duration(idle)) idle",
                evidence: [facts.closeEvidence(close, .responder, request: nil)]
            ).measured { $0.idleBefore = idle }
        ]
    }
}

/// Network quality: retransmissions, zero windows, path-MTU and other ICMP errors. Capture
/// loss (bytes the peer acknowledged that the capture never saw) is reported apart: the
/// network delivered them, the capture dropped them.
struct NetworkQualityRule: DiagnosisRule {
    static let id = "network_quality"

    func evaluate(_ facts: FlowFacts, options: DiagnosisOptions) -> [Finding] {
        var findings: [Finding] = []
        let packets = facts.orig.packets + facts.resp.packets
        let retransmissions = facts.orig.retransmissions + facts.resp.retransmissions
        if retransmissions > 0 {
            let score = min(100, retransmissions * 300 / max(packets, 10))
            findings.append(
                finding(
                    "retransmissions", proxyStatus: nil, score >= 30 ? .low : .info, .networkQuality, score: score,
                    at: facts.last.time,
                    "\(counted(retransmissions, "retransmitted segment")) in \(packets) packets (gateway \(facts.orig.retransmissions), upstream \(facts.resp.retransmissions))",
                    evidence: []))
        }
        let zeroWindows = facts.orig.zeroWindows + facts.resp.zeroWindows
        if zeroWindows > 0 {
            let who = facts.resp.zeroWindows >= facts.orig.zeroWindows ? "the upstream" : "the gateway"
            findings.append(
                finding(
                    "zero_window", proxyStatus: nil, .low, .networkQuality, score: min(60, 20 * zeroWindows), at: facts.last.time,
                    "\(counted(zeroWindows, "zero-window advertisement")), mostly from \(who): a receiver stopped reading", evidence: []))
        }
        if let icmp = facts.icmpError, !ICMPText.isUnreachable(icmp) || ICMPText.isFragmentationNeeded(icmp) {
            findings.append(
                finding(
                    "icmp_error", proxyStatus: nil, .low, .networkQuality, score: 40, at: icmp.packet.time,
                    "\(counted(facts.icmpErrorCount, "ICMP error")): \(ICMPText.name(icmp)) from \(icmp.reporter)",
                    evidence: [Evidence(icmp.packet, .network, "ICMP \(ICMPText.name(icmp))", flowStart: facts.first.time)]))
        }
        // What the capture did, not the network: counted, never a failure (score 0).
        func captureNote(_ code: String, _ summary: String) -> Finding {
            finding(code, proxyStatus: nil, .info, .networkQuality, score: 0, at: facts.last.time, summary, evidence: [])
        }
        let duplicates = facts.orig.duplicateFrames + facts.resp.duplicateFrames
        if duplicates > 0 {
            findings.append(captureNote(
                "capture_duplicates",
                "\(duplicates == 1 ? "1 frame was" : "\(duplicates) frames were") captured twice (same segment and IP identification within microseconds: `-i any` on a bridge or router, or a mirror port); the copies are not retransmissions and were not analysed again"))
        }
        let captureLoss = facts.orig.ackedUnseenBytes + facts.resp.ackedUnseenBytes
        if captureLoss > 0 {
            findings.append(captureNote(
                "capture_loss",
                "the capture missed \(counted(captureLoss, "byte")) that the peer acknowledged: lost by the capture, not by the network"))
        }
        return findings
    }
}
