import CapdiagWire
import Testing

@testable import CapdiagFlow

/// Scenario tests in the smoltcp style: a template segment plus overrides, fed through the
/// flow table, then Zeek-style assertions on conn_state and history.
struct Scenario {
    static let gateway = Endpoint(address: IPAddress(ipv4: 0x0A00_0001), port: 50000)
    static let upstream = Endpoint(address: IPAddress(ipv4: 0x0A00_0002), port: 8080)

    var table: FlowTable<NoSession>
    var frame = 0
    var time: Int64 = 1_700_000_000 * 1_000_000_000

    init(options: FlowTableOptions = FlowTableOptions()) { table = FlowTable(options: options) }

    /// Sends one segment; `after` is the time since the previous one in milliseconds.
    mutating func send(
        from sender: Endpoint = gateway, to receiver: Endpoint = upstream, _ flags: TCPFlags, seq: UInt32,
        ack: UInt32 = 0, payload: Int = 0, window: UInt16 = 65535, after milliseconds: Int64 = 1
    ) {
        frame += 1
        time += milliseconds * 1_000_000
        var header = try! TCPHeader(parsing: ([UInt8](repeating: 0, count: 12) + [0x50, 0, 0, 0, 0, 0, 0, 0]).span.bytes, at: 0)
        header.sourcePort = sender.port
        header.destinationPort = receiver.port
        header.sequenceNumber = seq
        header.acknowledgmentNumber = ack
        header.flags = flags
        header.window = window
        let segment = TCPSegment(
            packet: PacketRef(frame: frame, time: Timestamp(nanoseconds: time)), header: header,
            payloadLength: payload, capturedPayloadLength: payload, ipLength: 40 + payload)
        table.apply(segment, sender: sender, receiver: receiver)
    }

    mutating func reply(_ flags: TCPFlags, seq: UInt32, ack: UInt32 = 0, payload: Int = 0, window: UInt16 = 65535, after: Int64 = 1) {
        send(from: Self.upstream, to: Self.gateway, flags, seq: seq, ack: ack, payload: payload, window: window, after: after)
    }

    mutating func finishedFlows() -> [TCPFlow] {
        table.finishAll()
        var flows: [TCPFlow] = []
        table.drainFinished { flow, _ in flows.append(flow) }
        return flows
    }
}

@Suite struct ConnStateAndHistory {
    @Test func refusedConnectionIsREJ() throws {
        var s = Scenario()
        s.send(.syn, seq: 1000)
        s.reply([.rst, .ack], seq: 0, ack: 1001)
        let flow = try #require(s.finishedFlows().first)
        #expect(flow.connState == .rej)
        #expect(flow.history == "Sr")
        #expect(flow.resp.firstRST?.packet.frame == 2)
        #expect(flow.synAck == nil)
    }

    @Test func normalExchangeIsSF() throws {
        var s = Scenario()
        s.send(.syn, seq: 1000)
        s.reply([.syn, .ack], seq: 5000, ack: 1001)
        s.send(.ack, seq: 1001, ack: 5001)
        s.send([.ack, .psh], seq: 1001, ack: 5001, payload: 100)
        s.reply([.ack, .psh], seq: 5001, ack: 1101, payload: 300)
        s.send([.ack, .fin], seq: 1101, ack: 5301)
        s.reply([.ack, .fin], seq: 5301, ack: 1102)
        s.send(.ack, seq: 1102, ack: 5302)
        let flow = try #require(s.finishedFlows().first)
        #expect(flow.connState == .sf)
        #expect(flow.history == "ShADdFf")  // no pure ACK from the responder
        #expect(flow.handshakeAck?.frame == 3)
        #expect(flow.orig.payloadBytes == 100 && flow.resp.payloadBytes == 300)
        #expect(flow.orig.firstFIN?.relativeSequence == 101)
        #expect(flow.resp.retransmissions == 0 && flow.resp.gaps == 0)
    }

    @Test func resetAfterRequestIsRSTR() throws {
        var s = Scenario()
        s.send(.syn, seq: 1000)
        s.reply([.syn, .ack], seq: 5000, ack: 1001)
        s.send(.ack, seq: 1001, ack: 5001)
        s.send([.ack, .psh], seq: 1001, ack: 5001, payload: 100)
        s.reply([.rst, .ack], seq: 5001, ack: 1101)
        let flow = try #require(s.finishedFlows().first)
        #expect(flow.connState == .rstr)
        #expect(flow.history == "ShADr")
    }

    @Test func unansweredSYNsAreS0WithTheirBackoff() throws {
        var s = Scenario()
        s.send(.syn, seq: 1000)
        s.send(.syn, seq: 1000, after: 1000)
        s.send(.syn, seq: 1000, after: 2000)
        let flows = s.finishedFlows()
        #expect(flows.count == 1)
        let flow = try #require(flows.first)
        #expect(flow.connState == .s0)
        #expect(flow.history == "S")
        #expect(flow.synRetransmitCount == 2)
        #expect(flow.synRetransmits[1].time - flow.syn!.time == 3_000_000_000)
    }

    @Test func synThenRSTFromOriginatorIsRSTOS0() throws {
        var s = Scenario()
        s.send(.syn, seq: 1000)
        s.send(.rst, seq: 1001, after: 5)
        #expect(try #require(s.finishedFlows().first).connState == .rstos0)
    }

    @Test func midstreamTrafficHasInferredRoles() throws {
        var s = Scenario()
        // The capture starts with the upstream's response: the server port marks the responder.
        s.reply([.ack, .psh], seq: 9000, ack: 3000, payload: 50)
        s.send(.ack, seq: 3000, ack: 9050)
        let flow = try #require(s.finishedFlows().first)
        #expect(flow.rolesInferred)
        #expect(flow.originator == Scenario.gateway)
        #expect(flow.connState == .oth)
        #expect(flow.history == "^dA")
    }
}

@Suite struct SequenceAnalysis {
    /// Handshake with ISNs near the top of the sequence space so data crosses 2^32.
    func established(isn: UInt32 = 0xFFFF_FF00, responderISN: UInt32 = 0xFFFF_FFF0) -> Scenario {
        var s = Scenario()
        s.send(.syn, seq: isn)
        s.reply([.syn, .ack], seq: responderISN, ack: isn &+ 1)
        s.send(.ack, seq: isn &+ 1, ack: responderISN &+ 1)
        return s
    }

    @Test func wraparoundIsNotAGap() throws {
        var s = established()
        var seq: UInt32 = 0xFFFF_FF01
        for _ in 0..<10 {
            s.send([.ack, .psh], seq: seq, ack: 0xFFFF_FFF1, payload: 100)
            seq &+= 100
        }
        s.reply(.ack, seq: 0xFFFF_FFF1, ack: seq)
        let flow = try #require(s.finishedFlows().first)
        #expect(flow.orig.gaps == 0)
        #expect(flow.orig.retransmissions == 0)
        #expect(flow.orig.size == 1000)
        #expect(flow.orig.ackedUnseenBytes == 0)
    }

    @Test func retransmissionVersusOutOfOrder() throws {
        var s = established(isn: 1000, responderISN: 5000)
        s.send([.ack, .psh], seq: 1001, ack: 5001, payload: 100)
        s.send([.ack, .psh], seq: 1201, ack: 5001, payload: 100)  // 1101..1201 missing
        s.send([.ack, .psh], seq: 1101, ack: 5001, payload: 100, after: 1)  // fills within 3 ms: out of order
        s.send([.ack, .psh], seq: 1001, ack: 5001, payload: 100, after: 200)  // seen before: retransmission
        let flow = try #require(s.finishedFlows().first)
        #expect(flow.orig.gaps == 1)
        #expect(flow.orig.outOfOrder == 1)
        #expect(flow.orig.retransmissions == 1)
        #expect(flow.orig.missingBytes == 0)
        #expect(flow.history.contains("T"))
    }

    /// Two segments with 200 bytes between them never captured. If the peer acknowledges past
    /// them they crossed the network and the capture lost them; if not, they are only missing.
    @Test(arguments: [(acknowledged: UInt32(1401), captureLoss: Int64(200)), (1101, 0)])
    func missingBytesAndCaptureLoss(acknowledged: UInt32, captureLoss: Int64) throws {
        var s = established(isn: 1000, responderISN: 5000)
        s.send([.ack, .psh], seq: 1001, ack: 5001, payload: 100)
        s.send([.ack, .psh], seq: 1301, ack: 5001, payload: 100)
        s.reply(.ack, seq: 5001, ack: acknowledged)
        let flow = try #require(s.finishedFlows().first)
        #expect(flow.orig.missingBytes == 200)
        #expect(flow.orig.ackedUnseenBytes == captureLoss)
        #expect(flow.history.hasSuffix("G") == (captureLoss > 0))
    }

    @Test func keepAliveIsNotARetransmission() throws {
        var s = established(isn: 1000, responderISN: 5000)
        s.send([.ack, .psh], seq: 1001, ack: 5001, payload: 10)
        s.send(.ack, seq: 1010, ack: 5001, payload: 1, after: 60_000)
        let flow = try #require(s.finishedFlows().first)
        #expect(flow.orig.keepAlives == 1)
        #expect(flow.orig.retransmissions == 0)
    }

    @Test func zeroWindowIsCounted() throws {
        var s = established(isn: 1000, responderISN: 5000)
        s.reply(.ack, seq: 5001, ack: 1001, window: 0)
        let flow = try #require(s.finishedFlows().first)
        #expect(flow.resp.zeroWindows == 1)
        #expect(flow.history.contains("w"))
    }
}

@Suite struct TableLifecycle {
    @Test func newSYNAfterCloseIsANewFlow() {
        var s = Scenario()
        s.send(.syn, seq: 1000)
        s.reply([.rst, .ack], seq: 0, ack: 1001)
        s.send(.syn, seq: 777_000, after: 100)
        let flows = s.finishedFlows()
        #expect(flows.count == 2)
        #expect(flows.first?.end == .portReuse)
        #expect(flows.last?.first.frame == 3)
    }

    @Test func idleFlowsExpireAndTheTableEmpties() {
        var options = FlowTableOptions()
        options.idleTimeout = 10_000_000_000
        var s = Scenario(options: options)
        s.send(.syn, seq: 1000)
        s.send(from: Endpoint(address: IPAddress(ipv4: 0x0A00_0003), port: 1), to: Scenario.upstream, .syn, seq: 1, after: 20_000)
        var ended: [TCPFlow] = []
        s.table.drainFinished { flow, _ in ended.append(flow) }
        #expect(ended.count == 1)
        #expect(ended.first?.end == .idleTimeout)
        #expect(s.table.activeFlows == 1)
    }

    @Test func theTableCapEvictsTheLeastRecentlyActive() {
        var options = FlowTableOptions()
        options.maximumFlows = 16
        var s = Scenario(options: options)
        for port in 1...40 {
            s.send(from: Endpoint(address: IPAddress(ipv4: 0x0A00_0001), port: UInt16(port)), to: Scenario.upstream, .syn, seq: 1)
        }
        #expect(s.table.activeFlows <= 16)
        #expect(s.table.evictedFlows == 40 - s.table.activeFlows)
        let flows = s.finishedFlows()
        #expect(flows.count == 40)
        #expect(flows.filter { $0.end == .evicted }.count == s.table.evictedFlows)
        // The oldest flows went first.
        #expect(flows.first?.originator.port == 1)
    }

    @Test func icmpErrorsAttachToTheFlowTheyQuote() throws {
        var s = Scenario()
        s.send(.syn, seq: 1000)
        let mark = ICMPMark(
            packet: PacketRef(frame: 2, time: Timestamp(nanoseconds: 1)), version: 4, type: 3, code: 13, mtu: nil,
            reporter: IPAddress(ipv4: 0x0A00_00FE), aboutDirection: .responder)
        let attached = s.table.attachICMPError(quotedSender: Scenario.gateway, quotedReceiver: Scenario.upstream, mark: mark)
        #expect(attached)
        let flow = try #require(s.finishedFlows().first)
        #expect(flow.icmpErrorCount == 1)
        #expect(flow.firstICMPError?.aboutDirection == .originator)
    }
}
