import CapdiagFlow
import CapdiagProtocols
import CapdiagWire

/// ICMP destination unreachable (IPv4 type 3, IPv6 type 1) about the gateway's packets: a
/// router or the upstream host said the connection cannot be made. Fragmentation-needed is
/// a path-MTU signal, left to `NetworkQualityRule`.
struct DestinationUnavailableRule: DiagnosisRule {
    static let id = "destination_unavailable"

    func evaluate(_ facts: FlowFacts, options: DiagnosisOptions) -> [Finding] {
        guard let icmp = facts.icmpError, icmp.aboutDirection == .originator, !ICMPText.isFragmentationNeeded(icmp),
            ICMPText.isUnreachable(icmp)
        else { return [] }
        var evidence: [Evidence] = []
        if let syn = facts.syn { evidence.append(Evidence(syn, .originator, "SYN", flowStart: facts.first.time)) }
        evidence.append(Evidence(icmp.packet, .network, "ICMP \(ICMPText.name(icmp)) from \(icmp.reporter)", flowStart: facts.first.time))
        let phase = facts.synAck == nil ? "while connecting" : "on an established connection"
        return [
            finding(
                "destination_unavailable", proxyStatus: "destination_unavailable", .high, .handshake, score: 100,
                at: icmp.packet.time,
                "\(icmp.reporter) answered the gateway's packet to \(facts.responder) with ICMP \(ICMPText.name(icmp)) \(phase)",
                evidence: evidence)
        ]
    }
}

/// SYN answered by RST: nothing listens on the upstream port (or a firewall rejects).
struct ConnectionRefusedRule: DiagnosisRule {
    static let id = "connection_refused"

    func evaluate(_ facts: FlowFacts, options: DiagnosisOptions) -> [Finding] {
        guard facts.synAck == nil, let syn = facts.syn, let rst = facts.resp.firstRST else { return [] }
        return [
            finding(
                "connection_refused", proxyStatus: "connection_refused", .high, .handshake, score: 100, at: rst.packet.time,
                "\(facts.responder) refused the connection: SYN answered by RST after \(Phrase.duration(rst.packet.time - syn.time))",
                evidence: [
                    Evidence(syn, .originator, "SYN", flowStart: facts.first.time),
                    Evidence(rst.packet, .responder, "RST", flowStart: facts.first.time),
                ])
        ]
    }
}

/// SYNs with no SYN-ACK, no RST and no ICMP: the SYNs are dropped (firewall, dead host, full
/// listen queue). The retransmission backoff is the evidence.
struct ConnectionTimeoutRule: DiagnosisRule {
    static let id = "connection_timeout"

    func evaluate(_ facts: FlowFacts, options: DiagnosisOptions) -> [Finding] {
        guard let syn = facts.syn, facts.synAck == nil, facts.resp.firstRST == nil, facts.icmpError == nil,
            facts.resp.packets == 0, !facts.oneSided
        else { return [] }
        let synTimes = [0] + facts.synRetransmits.map { $0.time - syn.time }
        // Until the capture ended (or the flow left the table), not only its last packet.
        let span = (facts.endedAt.map { max($0, facts.last.time) } ?? facts.last.time) - syn.time
        let gaveUp = facts.originatorClose
        // A timeout needs waiting: a retransmitted SYN, or at least a second of silence. One
        // SYN abandoned at once, or still pending when the capture ended, proves nothing yet.
        let waited = gaveUp.map { $0.mark.packet.time - syn.time } ?? span
        // An ordinary TCP stack retransmits an unanswered SYN after a second (Linux, Windows):
        // a lone SYN never repeated while the capture went on means the originator gave up
        // within that second (a sub-second connect timeout) or is no ordinary client (a
        // scanner, a crafted trace). Proven only with a retry, a long wait it announced by
        // closing, or a --connect-timeout that short.
        let retried = facts.synRetransmitCount > 0
        // Nothing more from the originator while the capture went on for a second or more.
        let idledOut = gaveUp == nil && (facts.end == .idleTimeout || span >= 1_000_000_000)
        let proven =
            (retried && (waited >= 900_000_000 || waited >= options.connectTimeout || idledOut))
            || (gaveUp != nil && waited >= 900_000_000)
            || (idledOut && options.connectTimeout < 1_000_000_000)
        if !proven && !retried && idledOut {
            var evidence = [Evidence(syn, .originator, "SYN", flowStart: facts.first.time)]
            evidence += facts.synRetransmits.map { Evidence($0, .originator, "SYN (retransmitted)", flowStart: facts.first.time) }
            return [
                finding(
                    "connection_timeout", proxyStatus: "connection_timeout", .medium, .handshake, score: 50, at: facts.last.time,
                    "no answer from \(facts.responder) to one SYN, never retransmitted although the capture went on: the originator gave up within a second (a connect timeout under 1 s) or is no ordinary TCP client (a scanner)",
                    evidence: evidence
                ).measured { $0.synTimes = [0] }
            ]
        }
        let times = synTimes.map { Phrase.duration($0) }.joined(separator: ", ")
        var summary = "no answer from \(facts.responder) to \(synTimes.count > 1 ? "\(facts.synRetransmitCount + 1) SYNs" : "the SYN") (sent at \(times))"
        if let gaveUp {
            summary += "; the gateway gave up with \(gaveUp.byRST ? "RST" : "FIN") after \(Phrase.duration(gaveUp.mark.packet.time - syn.time))"
        }
        var evidence = [Evidence(syn, .originator, "SYN", flowStart: facts.first.time)]
        evidence += facts.synRetransmits.map { Evidence($0, .originator, "SYN (retransmitted)", flowStart: facts.first.time) }
        if let gaveUp { evidence.append(Evidence(gaveUp.mark.packet, .originator, gaveUp.byRST ? "RST" : "FIN", flowStart: facts.first.time)) }
        let result = finding(
            "connection_timeout", proxyStatus: "connection_timeout", proven ? .high : .low, .handshake,
            score: proven ? 100 : 30, at: facts.last.time,
            proven ? summary : summary + (gaveUp == nil ? " before the capture ended" : ", too soon to be a timeout"),
            evidence: evidence)
        return [result.measured { $0.synTimes = synTimes; $0.waited = waited }]
    }
}

/// The connection was made, but only after retransmitted SYNs (or SYN-ACKs).
struct SlowHandshakeRule: DiagnosisRule {
    static let id = "slow_handshake"

    func evaluate(_ facts: FlowFacts, options: DiagnosisOptions) -> [Finding] {
        guard let syn = facts.syn, let synAck = facts.synAck, facts.synRetransmitCount > 0 else { return [] }
        let delay = synAck.time - syn.time
        return [
            finding(
                "syn_retransmitted", proxyStatus: nil, .low, .networkQuality, score: 30, at: synAck.time,
                "connected to \(facts.responder) only after \(counted(facts.synRetransmitCount, "retransmitted SYN")), \(Phrase.duration(delay)) after the first",
                evidence: [
                    Evidence(syn, .originator, "SYN", flowStart: facts.first.time),
                    Evidence(synAck, .responder, "SYN-ACK", flowStart: facts.first.time),
                ]
            ).measured { $0.waited = delay }
        ]
    }
}

/// Names for ICMP errors.
enum ICMPText {
    static func isUnreachable(_ icmp: ICMPMark) -> Bool {
        icmp.version == 4 ? icmp.type == 3 : icmp.type == 1
    }

    static func isFragmentationNeeded(_ icmp: ICMPMark) -> Bool {
        icmp.version == 4 ? (icmp.type == 3 && icmp.code == 4) : icmp.type == 2
    }

    static func name(_ icmp: ICMPMark) -> String {
        let detail: String
        if icmp.version == 4 && icmp.type == 3 {
            let codes = [
                0: "network unreachable", 1: "host unreachable", 2: "protocol unreachable", 3: "port unreachable",
                4: "fragmentation needed", 5: "source route failed", 6: "destination network unknown",
                7: "destination host unknown", 9: "network administratively prohibited",
                10: "host administratively prohibited", 13: "communication administratively prohibited",
            ]
            detail = codes[Int(icmp.code)] ?? "destination unreachable"
        } else if icmp.version == 6 && icmp.type == 1 {
            let codes = [
                0: "no route to destination", 1: "communication administratively prohibited", 3: "address unreachable",
                4: "port unreachable", 5: "source address failed policy", 6: "reject route to destination",
            ]
            detail = codes[Int(icmp.code)] ?? "destination unreachable"
        } else if icmp.version == 4 && icmp.type == 11 || icmp.version == 6 && icmp.type == 3 {
            detail = "time exceeded"
        } else if isFragmentationNeeded(icmp) {
            detail = "packet too big"
        } else {
            detail = "error"
        }
        return "\(detail) (type \(icmp.type), code \(icmp.code))"
    }
}
