import CapdiagDiagnosis
import CapdiagFlow
import CapdiagProtocols
import CapdiagWire
import Testing

/// HTTP/2 rules on hand-made frame exchanges (the lab has no flow-control stall and no GOAWAY
/// race: nginx 1.22 and grpcio behaved): the connection parses the bytes, the rules read it.
@Suite struct HTTP2Rules {
    static func frame(_ type: UInt8, flags: UInt8 = 0, stream: UInt32 = 0, _ payload: [UInt8] = []) -> [UInt8] {
        let length = payload.count
        return [UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF), type, flags,
            UInt8(stream >> 24 & 0x7F), UInt8(stream >> 16 & 0xFF), UInt8(stream >> 8 & 0xFF), UInt8(stream & 0xFF)] + payload
    }
    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    /// GET / over http, authority "a" (HPACK static entries 2, 4, 6; a literal :authority).
    static let request: [UInt8] = [0x82, 0x84, 0x86, 0x41, 0x01, UInt8(ascii: "a")]
    static let ok: [UInt8] = [0x88]  // :status 200

    static func connection(_ turns: [(StreamSide, [UInt8])], close: (StreamSide, CloseKind)? = nil) -> HTTP2Connection {
        var connection = HTTP2Connection()
        for (index, (side, bytes)) in turns.enumerated() {
            connection.received(bytes.span.bytes, from: side, packet: PacketRef(frame: index + 1, time: Timestamp(nanoseconds: Int64(index + 1) * 1_000_000)))
        }
        if let (side, kind) = close {
            connection.closed(side, by: kind, packet: PacketRef(frame: turns.count + 1, time: Timestamp(nanoseconds: Int64(turns.count + 1) * 1_000_000)))
        }
        connection.finish()
        return connection
    }

    static func diagnose(_ connection: HTTP2Connection) -> [String] {
        var facts = FlowFacts(
            id: 1, originator: FlowScenario.gateway, responder: FlowScenario.upstream, first: PacketRef(frame: 1, time: .zero),
            last: PacketRef(frame: 9, time: Timestamp(nanoseconds: 9_000_000)), connState: .sf)
        facts.http2 = true
        facts.h2 = connection
        return Diagnoser().diagnose(facts).findings.filter { $0.severity > .info }.map(\.code)
    }

    @Test func aResponseBlockedByAWindowNeverReopenedIsAStall() {
        let stalled = Self.connection([
            (.client, Self.preface + Self.frame(4) + Self.frame(1, flags: 0x05, stream: 1, Self.request)),
            (.server, Self.frame(4) + Self.frame(1, flags: 0x04, stream: 1, Self.ok) + Self.frame(0, stream: 1, [UInt8](repeating: 0, count: 16_384))
                + Self.frame(0, stream: 1, [UInt8](repeating: 0, count: 16_384)) + Self.frame(0, stream: 1, [UInt8](repeating: 0, count: 16_384))
                + Self.frame(0, stream: 1, [UInt8](repeating: 0, count: 16_383))),
        ])
        #expect(Self.diagnose(stalled) == ["http2_flow_control_stall"])
        // The gateway opened the window again, and the response ended: no verdict.
        let reopened = Self.connection([
            (.client, Self.preface + Self.frame(4) + Self.frame(1, flags: 0x05, stream: 1, Self.request)),
            (.server, Self.frame(4) + Self.frame(1, flags: 0x04, stream: 1, Self.ok) + Self.frame(0, stream: 1, [UInt8](repeating: 0, count: 16_384))
                + Self.frame(0, stream: 1, [UInt8](repeating: 0, count: 16_384)) + Self.frame(0, stream: 1, [UInt8](repeating: 0, count: 16_384))
                + Self.frame(0, stream: 1, [UInt8](repeating: 0, count: 16_383))),
            (.client, Self.frame(8, stream: 0, [0, 1, 0, 0]) + Self.frame(8, stream: 1, [0, 1, 0, 0])),
            (.server, Self.frame(0, flags: 0x01, stream: 1, [1, 2, 3])),
        ])
        #expect(Self.diagnose(reopened).isEmpty)
    }

    @Test func aStreamAboveTheGoAwaysLastStreamWithoutAnswerIsTheRace() {
        let race = Self.connection([
            (.client, Self.preface + Self.frame(4) + Self.frame(1, flags: 0x05, stream: 1, Self.request)),
            (.server, Self.frame(4) + Self.frame(1, flags: 0x05, stream: 1, Self.ok)),
            (.client, Self.frame(1, flags: 0x05, stream: 3, Self.request)),
            // GOAWAY last stream 1, NO_ERROR: stream 3 was not processed.
            (.server, Self.frame(7, stream: 0, [0, 0, 0, 1, 0, 0, 0, 0])),
        ], close: (.server, .fin))
        #expect(Self.diagnose(race).first == "goaway_race")
    }

    @Test func refusedStreamIsMediumOtherResetsHigh() {
        func reset(_ code: UInt8) -> HTTP2Connection {
            Self.connection([
                (.client, Self.preface + Self.frame(4) + Self.frame(1, flags: 0x05, stream: 1, Self.request)),
                (.server, Self.frame(4) + Self.frame(3, stream: 1, [0, 0, 0, code])),
            ])
        }
        var facts = FlowFacts(
            id: 1, originator: FlowScenario.gateway, responder: FlowScenario.upstream, first: PacketRef(frame: 1, time: .zero),
            last: PacketRef(frame: 3, time: .zero), connState: .sf)
        facts.http2 = true
        facts.h2 = reset(7)
        #expect(Diagnoser().diagnose(facts).findings.first { $0.code == "stream_reset_by_upstream" }?.severity == .medium)
        facts.h2 = reset(2)
        #expect(Diagnoser().diagnose(facts).findings.first { $0.code == "stream_reset_by_upstream" }?.severity == .high)
    }
}
