import CapdiagProtocols
import CapdiagWire

/// One row of a ladder (sequence) diagram: a packet between the two ends of a flow.
public struct LadderRow: Sendable, Equatable {
    public var offsetNs: Int64
    public var frame: Int
    /// True from the originator, false from the responder, nil from the network (ICMP).
    public var fromOriginator: Bool?
    public var label: String
    /// Part of a verdict's evidence.
    public var evidence: Bool
}

/// The exchange between the two ends of a flow, rebuilt from its record: handshake, requests
/// and responses, TLS events, FINs and RSTs, ICMP errors, and every packet a verdict cites.
public enum Ladder {
    public static func rows(_ flow: FlowRecord) -> [LadderRow] {
        var rows: [LadderRow] = []
        let start = Timestamp(iso8601: flow.start) ?? .zero
        func offset(_ iso: String?) -> Int64? { iso.flatMap { Timestamp(iso8601: $0) }.map { $0 - start } }
        func add(_ frame: Int?, _ offsetNs: Int64?, _ fromOriginator: Bool?, _ label: String) {
            guard let frame, let offsetNs else { return }
            rows.append(LadderRow(offsetNs: offsetNs, frame: frame, fromOriginator: fromOriginator, label: label, evidence: false))
        }
        let handshake = flow.handshake
        add(handshake.syn?.frame, handshake.syn?.offsetNs, true, "SYN")
        for retransmit in handshake.synRetransmits { add(retransmit.frame, retransmit.offsetNs, true, "SYN (again)") }
        add(handshake.synAck?.frame, handshake.synAck?.offsetNs, false, "SYN-ACK")
        add(handshake.ack?.frame, handshake.ack?.offsetNs, true, "ACK")
        if let tls = flow.tls {
            add(tls.clientChangeCipherSpec?.frame, offset(tls.clientChangeCipherSpec?.time), true, "TLS ChangeCipherSpec")
            add(tls.serverChangeCipherSpec?.frame, offset(tls.serverChangeCipherSpec?.time), false, "TLS ChangeCipherSpec")
            add(tls.firstClientApplicationData?.frame, offset(tls.firstClientApplicationData?.time), true, "TLS application data")
            add(tls.firstServerApplicationData?.frame, offset(tls.firstServerApplicationData?.time), false, "TLS application data")
            add(tls.plaintextHttpReply?.frame, offset(tls.plaintextHttpReply?.time), false, "plain HTTP reply")
            for alert in tls.alerts {
                add(alert.frame, offset(alert.time), alert.side == "client", alert.encrypted ? "TLS encrypted alert" : "TLS alert \(alert.description ?? "?")")
            }
        }
        for exchange in flow.http?.exchanges ?? [] {
            let requestOffset = offset(exchange.requestTime)
            let request = [exchange.method, exchange.target].compactMap { $0 }.joined(separator: " ")
            let requestBytes = exchange.requestHeaderBytes.map { " (\(Int64($0) + exchange.requestBodyBytes) B)" } ?? ""
            add(exchange.requestFrame, requestOffset, true, (request.isEmpty ? "request" : request) + requestBytes)
            if let frame = exchange.responseFrame, let requestOffset {
                let status = exchange.status.map { "HTTP \($0) \(exchange.reason ?? "")" } ?? (exchange.problem?.code ?? "response")
                let bytes = exchange.responseHeaderBytes.map { " (\(Int64($0) + exchange.deliveredBodyBytes) B)" } ?? ""
                add(frame, requestOffset + (exchange.timeToFirstByteNs ?? 0), false, status.trimmingSuffixSpaces + bytes)
            }
        }
        for (direction, fromOriginator) in [(flow.orig, true), (flow.resp, false)] {
            if let fin = direction.firstFin { add(fin.frame, fin.offsetNs, fromOriginator, "FIN") }
            if let rst = direction.firstRst { add(rst.frame, rst.offsetNs, fromOriginator, "RST") }
        }
        if let icmp = flow.icmpError { add(icmp.frame, icmp.offsetNs, nil, "ICMP type \(icmp.type) code \(icmp.code) from \(icmp.reporter)") }
        // Evidence: mark known rows, add the cited packets not drawn yet.
        for finding in flow.diagnosis?.findings ?? [] {
            for evidence in finding.evidence {
                if let index = rows.firstIndex(where: { $0.frame == evidence.frame }) {
                    rows[index].evidence = true
                    // "RST" → "RST (no ACK: no socket)": the verdict's reading of the packet.
                    if evidence.what.hasPrefix(rows[index].label) { rows[index].label = evidence.what }
                } else {
                    let from: Bool? = evidence.from == "network" ? nil : evidence.from == "originator"
                    rows.append(LadderRow(offsetNs: evidence.offsetNs, frame: evidence.frame, fromOriginator: from, label: evidence.what, evidence: true))
                }
            }
        }
        // One row per frame and label, in frame order.
        var seen = Set<String>()
        return rows.sorted { ($0.frame, $0.offsetNs) < ($1.frame, $1.offsetNs) }.filter { seen.insert("\($0.frame) \($0.label)").inserted }
    }

    /// The pause before `rows[index]` when it is long enough to be part of the story (an idle
    /// keep-alive connection before its reuse, a timeout): a quarter second or more.
    public static func idleBefore(_ index: Int, in rows: [LadderRow]) -> Int64? {
        guard index > 0 else { return nil }
        let gap = rows[index].offsetNs - rows[index - 1].offsetNs
        return gap >= 250_000_000 ? gap : nil
    }

    /// "idle 1.067 s", "idle 250.4 ms".
    public static func idleText(_ ns: Int64) -> String {
        ns >= 1_000_000_000 ? "idle \(String(format3(Double(ns) / 1e9))) s" : "idle \(String(format3(Double(ns) / 1e6))) ms"
    }

    static func format3(_ value: Double) -> String {
        let thousandths = Int64((value * 1000).rounded())
        let fraction = String(thousandths % 1000)
        return "\(thousandths / 1000).\(String(repeating: "0", count: max(0, 3 - fraction.count)))\(fraction)"
    }

    /// The ladder as monospaced text: `|---- SYN ---->|` from left to right.
    public static func text(_ rows: [LadderRow], left: String, right: String) -> String {
        let width = 46
        var out = "  offset      frame  " + pad(left, max(left.count + 2, width + 2 - right.count)) + right + "\n"
        for (index, row) in rows.enumerated() {
            if let idle = idleBefore(index, in: rows) {
                let note = " " + idleText(idle) + " "
                let side = max(1, (width - note.count) / 2)
                out += "  " + pad("", 11) + " " + pad("", 6) + "  " + "|" + String(repeating: " ", count: side - 1) + note
                    + String(repeating: " ", count: max(1, width - side - note.count - 1)) + "|\n"
            }
            let label = " " + Markup.codeBlock(String(row.label.prefix(width - 8))) + " "
            let dashes = max(2, width - 2 - label.count)
            let body: String
            switch row.fromOriginator {
            case true?: body = "|" + String(repeating: "-", count: dashes / 2) + label + String(repeating: "-", count: dashes - dashes / 2) + ">|"
            case false?: body = "|<" + String(repeating: "-", count: dashes / 2) + label + String(repeating: "-", count: dashes - dashes / 2) + "|"
            case nil: body = "|" + String(repeating: " ", count: dashes / 2) + "~" + label + "~" + String(repeating: " ", count: max(0, dashes - dashes / 2 - 1)) + "|"
            }
            out += "  " + pad(milliseconds(row.offsetNs), 11) + " " + pad(String(row.frame), 6, left: true) + "  " + body
            out += row.evidence ? "  *\n" : "\n"
        }
        return out
    }

    /// "12.345 ms"; negative offsets (a packet stamped before the flow's first, as some
    /// captures have) keep their sign.
    static func milliseconds(_ ns: Int64) -> String {
        let micros = (ns.magnitude + 500) / 1000
        let fraction = String(micros % 1000)
        return (ns < 0 ? "-" : "") + "\(micros / 1000).\(String(repeating: "0", count: max(0, 3 - fraction.count)))\(fraction) ms"
    }

    static func pad(_ text: String, _ width: Int, left: Bool = false) -> String { TextReport.pad(text, width, left: left) }
}

extension Timestamp {
    /// Parses capdiag's own `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` (as `iso8601` writes it).
    init?(iso8601 text: String) {
        let bytes = Array(text.utf8)
        guard bytes.count == 30, bytes[4] == UInt8(ascii: "-"), bytes[10] == UInt8(ascii: "T"), bytes[19] == UInt8(ascii: "."),
            bytes[29] == UInt8(ascii: "Z")
        else { return nil }
        func number(_ range: Range<Int>) -> Int64? {
            var value: Int64 = 0
            for index in range {
                let digit = Int64(bytes[index]) - 48
                guard (0...9).contains(digit) else { return nil }
                value = value * 10 + digit
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), let hour = number(11..<13),
            let minute = number(14..<16), let second = number(17..<19), let nanos = number(20..<29)
        else { return nil }
        // Days from civil (Howard Hinnant's algorithm).
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        self.init(seconds: days * 86_400 + hour * 3600 + minute * 60 + second, nanoseconds: nanos)
    }
}

extension String {
    var trimmingSuffixSpaces: String {
        var copy = self
        while copy.hasSuffix(" ") { copy.removeLast() }
        return copy
    }
}
