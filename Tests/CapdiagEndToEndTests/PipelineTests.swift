import CapdiagEngine
import CapdiagFlow
import CapdiagProtocols
import CapdiagReport
import CapdiagTestSupport
import CapdiagWire
import Testing

/// The whole pipeline on hand-built packets: decode, track, reassemble, parse HTTP.
@Suite struct Pipeline {
    static let request = Array("GET /wrap HTTP/1.1\r\nHost: upstream\r\n\r\n".utf8)
    static let response = Array(("HTTP/1.1 200 OK\r\nContent-Length: 600\r\n\r\n" + String(repeating: "z", count: 600)).utf8)

    /// A connection whose sequence numbers cross 2^32 in both directions, with the response
    /// segments permuted, duplicated and overlapping: HTTP still sees one clean exchange.
    @Test(arguments: 0..<40)
    func reassemblyAcrossSequenceWrapAndReordering(seed: Int) throws {
        var rng = SplitMix(state: UInt64(seed))
        let clientISN: UInt32 = 0xFFFF_FFF0
        let serverISN: UInt32 = 0xFFFF_FF00
        var frames: [[UInt8]] = []
        func segment(fromClient: Bool, seq: UInt32, ack: UInt32, flags: UInt8, payload: [UInt8] = []) -> [UInt8] {
            let tcp = PacketBuilder.tcp(
                sourcePort: fromClient ? 40000 : 8080, destinationPort: fromClient ? 8080 : 40000, sequence: seq, ack: ack,
                flags: flags, payload: payload)
            return PacketBuilder.ipv4(
                source: fromClient ? 0x0A00_0001 : 0x0A00_0002, destination: fromClient ? 0x0A00_0002 : 0x0A00_0001,
                payload: tcp)
        }
        frames.append(segment(fromClient: true, seq: clientISN, ack: 0, flags: 0x02))
        frames.append(segment(fromClient: false, seq: serverISN, ack: clientISN &+ 1, flags: 0x12))
        frames.append(segment(fromClient: true, seq: clientISN &+ 1, ack: serverISN &+ 1, flags: 0x10))
        frames.append(segment(fromClient: true, seq: clientISN &+ 1, ack: serverISN &+ 1, flags: 0x18, payload: Self.request))
        let requestEnd = clientISN &+ 1 &+ UInt32(Self.request.count)
        var pieces: [Range<Int>] = []
        var position = 0
        while position < Self.response.count {
            let size = min(Self.response.count - position, Int.random(in: 20...200, using: &rng))
            pieces.append(position..<(position + size))
            position += size
        }
        for _ in 0..<3 {
            let start = Int.random(in: 0..<Self.response.count, using: &rng)
            pieces.append(start..<min(Self.response.count, start + Int.random(in: 10...150, using: &rng)))
        }
        pieces.shuffle(using: &rng)
        for range in pieces {
            frames.append(
                segment(fromClient: false, seq: serverISN &+ 1 &+ UInt32(range.lowerBound), ack: requestEnd, flags: 0x18,
                        payload: Array(Self.response[range])))
        }
        let responseEnd = serverISN &+ 1 &+ UInt32(Self.response.count)
        frames.append(segment(fromClient: true, seq: requestEnd, ack: responseEnd, flags: 0x11))
        frames.append(segment(fromClient: false, seq: responseEnd, ack: requestEnd &+ 1, flags: 0x11))

        var analyzer = Analyzer()
        for (index, frame) in frames.enumerated() {
            analyzer.feed(time: Timestamp(nanoseconds: Int64(index) * 1000), wireLength: frame.count, linkType: .raw, bytes: frame.span.bytes)
        }
        analyzer.finish()
        var records: [FlowRecord] = []
        analyzer.drainFinishedFlows { flow, session in records.append(FlowRecord(flow, session: session)) }
        let flow = try #require(records.first)
        #expect(records.count == 1)
        #expect(flow.connState == "SF")
        let exchange = try #require(flow.http?.exchanges.first)
        #expect(exchange.target == "/wrap" && exchange.status == 200)
        #expect(exchange.deliveredBodyBytes == 600 && exchange.problem == nil, "seed \(seed)")
        #expect(flow.stream?.resp.gapBytes == 0 && flow.stream?.resp.deliveredBytes == Int64(Self.response.count))
    }
}
