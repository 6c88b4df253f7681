import CapdiagTestSupport
import CapdiagWire
import Foundation
import Testing

@testable import CapdiagProtocols

/// Response framing judged as the gateways judge it. `Captures/lab/framing-check.md` records, for
/// each malformed upstream response, what nginx 1.22 and HAProxy 2.6 did in the lab
/// (`Captures/lab/framing-check.sh`): refused it (502, or nginx's "no valid HTTP/1.0 header"
/// relay), or passed it on. Each row's exact bytes go through the response parser here, which
/// must name the same gateways: an invalid response refused by both, by one (and which), or no
/// framing problem at all.
@Suite struct GatewayStrictness {
    struct Row: CustomStringConvertible, Sendable {
        var name: String
        var response: [UInt8]
        var expected: GatewaySet
        var description: String { name }
    }

    static let framingCodes: Set<String> = [
        "not_http", "bad_status_line", "bad_header_line", "bad_content_length", "bad_transfer_encoding", "bad_chunk_size",
    ]

    /// The rows of the lab's table that carry exact bytes (not the size and 1xx descriptions).
    static let rows: [Row] = {
        let path = Locations.captures.appending(path: "lab/framing-check.md").path
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        var rows: [Row] = []
        for line in text.split(separator: "\n") where line.hasPrefix("| ") && !line.hasPrefix("| case") {
            let columns = line.dropFirst(2).components(separatedBy: " | ")
            guard columns.count >= 6, columns[1].hasPrefix("`"), columns[1].hasSuffix("`"), !columns[1].contains("…"),
                !columns[1].contains("*")
            else { continue }
            let escaped = String(columns[1].dropFirst().dropLast())
            var refused: GatewaySet = []
            // nginx "relays verbatim (HTTP/0.9)" with an [error] line, or closes without a byte:
            // the client gets no valid answer either way.
            if columns[2].contains("REJECT") || columns[2].contains("RELAYED") || columns[2].contains("NO RESPONSE") { refused.insert(.nginx) }
            if columns[5].contains("REJECT") { refused.insert(.haproxy) }
            rows.append(Row(name: columns[0], response: unescape(escaped), expected: refused))
        }
        return rows
    }()

    /// `\r`, `\n`, `\t`, `\xNN` as the table writes bytes.
    static func unescape(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var chars = Array(text.utf8)[...]
        while let byte = chars.popFirst() {
            guard byte == UInt8(ascii: "\\"), let next = chars.popFirst() else {
                bytes.append(byte)
                continue
            }
            switch next {
            case UInt8(ascii: "r"): bytes.append(0x0D)
            case UInt8(ascii: "n"): bytes.append(0x0A)
            case UInt8(ascii: "t"): bytes.append(0x09)
            case UInt8(ascii: "x"):
                let hex = String(decoding: chars.prefix(2), as: UTF8.self)
                chars = chars.dropFirst(2)
                bytes.append(UInt8(hex, radix: 16) ?? 0)
            default: bytes += [byte, next]
            }
        }
        return bytes
    }

    @Test func theLabTableIsThere() {
        #expect(Self.rows.count >= 60, "framing-check.md rows with exact bytes: \(Self.rows.count)")
    }

    @Test(arguments: rows)
    func refusedByTheSameGateways(_ row: Row) throws {
        var connection = HTTPConnection()
        let packet = PacketRef(frame: 1, time: Timestamp(nanoseconds: 1_000))
        let request = Array("GET /x HTTP/1.1\r\nHost: u\r\n\r\n".utf8)
        connection.received(request.span.bytes, from: .client, packet: packet)
        connection.received(row.response.span.bytes, from: .server, packet: packet)
        connection.closed(.server, by: .fin, packet: packet)
        connection.finish()
        let problem = connection.exchanges.first?.problem
        let framing = problem.flatMap { Self.framingCodes.contains($0.code) ? $0 : nil }
        if row.expected.isEmpty {
            #expect(framing == nil, "both gateways pass \(row.name) on, capdiag found \(String(describing: problem))")
        } else {
            let found = try #require(framing, "\(row.name) is refused by \(row.expected.phrase); capdiag found \(String(describing: problem))")
            let named: GatewaySet = found.rejectedBy.map { names in
                names.reduce(into: GatewaySet()) { set, name in set.insert(name == "nginx" ? .nginx : .haproxy) }
            } ?? .both
            #expect(named == row.expected, "\(row.name): \(found.code) \(found.detail)")
        }
    }
}
