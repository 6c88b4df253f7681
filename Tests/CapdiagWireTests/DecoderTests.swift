import CapdiagTestSupport
import Testing

@testable import CapdiagWire

// tcpdump -nn -XX -r Captures/lo-refused.pcap -c 1
// 127.0.0.1.53754 > 127.0.0.1.18081: Flags [S], seq 574548727, win 65495,
//   options [mss 65495,sackOK,TS val 1721121581 ecr 0,nop,wscale 10], length 0
let loopbackSYN: [UInt8] = [
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00,
    0x45, 0x00, 0x00, 0x3c, 0xa5, 0xbb, 0x40, 0x00, 0x40, 0x06, 0x96, 0xfe,
    0x7f, 0x00, 0x00, 0x01, 0x7f, 0x00, 0x00, 0x01,
    0xd1, 0xfa, 0x46, 0xa1, 0x22, 0x3e, 0xea, 0xf7, 0x00, 0x00, 0x00, 0x00,
    0xa0, 0x02, 0xff, 0xd7, 0xfe, 0x30, 0x00, 0x00,
    0x02, 0x04, 0xff, 0xd7, 0x04, 0x02, 0x08, 0x0a, 0x66, 0x96, 0x3b, 0x2d,
    0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x0a,
]

func decode(_ bytes: [UInt8], _ linkType: LinkType) throws(DecodeError) -> DecodedPacket {
    try PacketDecoder.decode(bytes.span.bytes, linkType: linkType)
}

func tcpHeader(_ packet: DecodedPacket) -> TCPHeader? {
    if case .tcp(let header) = packet.transport { return header }
    return nil
}

@Suite struct EthernetIPv4TCP {
    @Test func decodesARealLoopbackSYN() throws {
        let packet = try decode(loopbackSYN, .ethernet)
        #expect(packet.ip.version == 4)
        #expect(packet.ip.source.description == "127.0.0.1")
        #expect(packet.ip.totalLength == 60)
        let tcp = try #require(tcpHeader(packet))
        #expect(tcp.sourcePort == 53754)
        #expect(tcp.destinationPort == 18081)
        #expect(tcp.sequenceNumber == 574_548_727)
        #expect(tcp.flags == [.syn])
        #expect(tcp.window == 65495)
        #expect(tcp.options.mss == 65495)
        #expect(tcp.options.sackPermitted)
        #expect(tcp.options.timestamp?.value == 1_721_121_581)
        #expect(tcp.options.windowScale == 10)
        #expect(packet.payloadLength == 0)
    }

    /// Every cut of the frame before the end of the TCP header fails with `truncated`, naming
    /// the layer where the bytes ran out and how many that layer needed.
    @Test(arguments: 0..<74) func everyTruncationIsReported(length: Int) {
        let expected: DecodeError
        switch length {
        case ..<14: expected = .truncated(layer: .link, needed: 14, available: length)
        case ..<34: expected = .truncated(layer: .ipv4, needed: 20, available: length - 14)
        case ..<54: expected = .truncated(layer: .tcp, needed: 20, available: length - 34)
        default: expected = .truncated(layer: .tcp, needed: 40, available: length - 34)
        }
        #expect(throws: expected) { try decode(Array(loopbackSYN.prefix(length)), .ethernet) }
    }

    @Test func payloadCutBySnaplenIsNotAnError() throws {
        let frame = PacketBuilder.ethernet(
            etherType: 0x0800,
            payload: PacketBuilder.ipv4(payload: PacketBuilder.tcp(flags: 0x18, payload: Array(repeating: 0x41, count: 100))))
        let packet = try decode(Array(frame.prefix(14 + 20 + 20 + 10)), .ethernet)
        #expect(packet.payloadLength == 100)
        #expect(packet.capturedPayloadLength == 10)
    }

    @Test func dataOffsetBelowFiveWordsIsInvalid() {
        var segment = PacketBuilder.tcp()
        segment[12] = 0x40
        let frame = PacketBuilder.ethernet(etherType: 0x0800, payload: PacketBuilder.ipv4(payload: segment))
        #expect(throws: DecodeError.invalid(layer: .tcp, reason: .tcpDataOffsetTooSmall)) { try decode(frame, .ethernet) }
    }

    @Test func fragmentsAreCountedNotDecoded() {
        let frame = PacketBuilder.ethernet(
            etherType: 0x0800, payload: PacketBuilder.ipv4(fragment: 0x2000, payload: PacketBuilder.tcp()))
        #expect(throws: DecodeError.unsupported(layer: .ipv4, what: .fragment)) { try decode(frame, .ethernet) }
    }

    @Test func malformedOptionLengthStopsOptionParsing() throws {
        let segment = PacketBuilder.tcp(options: [0x02, 0x04, 0x05, 0xb4, 0x03, 0x09, 0x07, 0x00])
        let packet = try decode(PacketBuilder.ipv4(payload: segment), .raw)
        let tcp = try #require(tcpHeader(packet))
        #expect(tcp.options.mss == 1460)
        #expect(tcp.options.malformed)
    }

    @Test func sackBlocksAreRead() throws {
        let options: [UInt8] = [0x01, 0x01, 0x05, 0x12] + PacketBuilder.be32(100) + PacketBuilder.be32(200)
            + PacketBuilder.be32(300) + PacketBuilder.be32(400)
        let packet = try decode(PacketBuilder.ipv4(payload: PacketBuilder.tcp(flags: 0x10, options: options)), .raw)
        let tcp = try #require(tcpHeader(packet))
        #expect(tcp.options.sackBlockCount == 2)
        #expect(tcp.options.sackBlocks[1] == SACKBlock(left: 300, right: 400))
    }
}

@Suite struct LinkLayers {
    let ip = PacketBuilder.ipv4(payload: PacketBuilder.tcp())

    func expectTCP(_ frame: [UInt8], _ linkType: LinkType, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(
            (try? decode(frame, linkType)).flatMap(tcpHeader)?.destinationPort == 80, sourceLocation: sourceLocation)
    }

    @Test func vlanAndQinQ() {
        expectTCP(PacketBuilder.ethernet(etherType: 0x0800, tags: [(0x8100, 10)], payload: ip), .ethernet)
        expectTCP(PacketBuilder.ethernet(etherType: 0x0800, tags: [(0x88A8, 100), (0x8100, 10)], payload: ip), .ethernet)
    }

    @Test func linuxCookedV1AndV2() {
        let sll: [UInt8] = [0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00]
        expectTCP(sll + ip, .linuxSLL)
        let sll2: [UInt8] = [0x08, 0x00, 0, 0, 0, 0, 0, 1, 0, 1, 4, 6, 1, 2, 3, 4, 5, 6, 0, 0]
        expectTCP(sll2 + ip, .linuxSLL2)
        #expect(throws: DecodeError.truncated(layer: .link, needed: 20, available: 19)) {
            try decode(Array(sll2.prefix(19)), .linuxSLL2)
        }
    }

    @Test func bsdLoopbackInEitherByteOrder() {
        expectTCP([2, 0, 0, 0] + ip, .null)
        expectTCP([0, 0, 0, 2] + ip, .null)
        expectTCP([0, 0, 0, 2] + ip, .loop)
        let ipv6 = PacketBuilder.ipv6(nextHeader: 6, payload: PacketBuilder.tcp())
        expectTCP([30, 0, 0, 0] + ipv6, .null)
        #expect(throws: DecodeError.unsupported(layer: .link, what: .loopbackFamily(7))) {
            try decode([7, 0, 0, 0] + ip, .null)
        }
    }

    @Test func rawIPv4AndIPv6() {
        expectTCP(ip, .raw)
        expectTCP(PacketBuilder.ipv6(nextHeader: 6, payload: PacketBuilder.tcp()), .raw)
        expectTCP(ip, .ipv4)
    }

    @Test func pppoeSessionWithAndWithoutProtocolCompression() {
        let length = PacketBuilder.be16(UInt16(ip.count + 2))
        expectTCP(PacketBuilder.ethernet(etherType: 0x8864, payload: [0x11, 0, 0, 1] + length + [0x00, 0x21] + ip), .ethernet)
        expectTCP(PacketBuilder.ethernet(etherType: 0x8864, payload: [0x11, 0, 0, 1] + length + [0x21] + ip), .ethernet)
    }

    @Test func unsupportedEtherTypeAndLinkTypeAreNamed() {
        #expect(throws: DecodeError.unsupported(layer: .link, what: .etherType(0x0806))) {
            try decode(PacketBuilder.ethernet(etherType: 0x0806, payload: [UInt8](repeating: 0, count: 28)), .ethernet)
        }
        #expect(throws: DecodeError.unsupported(layer: .link, what: .linkType(105))) { try decode(ip, LinkType(dlt: 105)) }
        #expect(Unsupported.etherType(0x0806).name == "ethertype_0x0806")
    }
}

@Suite struct IPv6 {
    @Test func walksExtensionHeaders() throws {
        // Hop-by-hop (8 bytes, next: destination options), destination options (16 bytes, next: TCP).
        let hopByHop: [UInt8] = [60, 0, 1, 4, 0, 0, 0, 0]
        let destination: [UInt8] = [6, 1, 1, 12] + [UInt8](repeating: 0, count: 12)
        let packet = try decode(
            PacketBuilder.ipv6(nextHeader: 0, extensions: hopByHop + destination, payload: PacketBuilder.tcp(payload: [1, 2, 3])),
            .raw)
        #expect(packet.ip.headerLength == 40 + 24)
        #expect(packet.ip.source.description == "2001:db8::1")
        #expect(packet.payloadLength == 3)
        #expect(tcpHeader(packet) != nil)
    }

    @Test func atomicFragmentIsAWholePacketOthersAreFragments() throws {
        let atomic: [UInt8] = [6, 0, 0, 0, 0, 0, 0, 1]
        #expect(tcpHeader(try decode(PacketBuilder.ipv6(nextHeader: 44, extensions: atomic, payload: PacketBuilder.tcp()), .raw)) != nil)
        let first: [UInt8] = [6, 0, 0, 1, 0, 0, 0, 1]
        #expect(throws: DecodeError.unsupported(layer: .ipv6, what: .fragment)) {
            try decode(PacketBuilder.ipv6(nextHeader: 44, extensions: first, payload: PacketBuilder.tcp()), .raw)
        }
    }

    @Test(arguments: 0..<48) func truncatedExtensionChain(length: Int) {
        let hopByHop: [UInt8] = [6, 0, 1, 4, 0, 0, 0, 0]
        let packet = PacketBuilder.ipv6(nextHeader: 0, extensions: hopByHop, payload: PacketBuilder.tcp())
        #expect(throws: DecodeError.self) { try decode(Array(packet.prefix(length)), .raw) }
    }

    @Test func addressesPrintPerRFC5952() {
        #expect(IPAddress(high: 0x2001_0db8_0000_0000, low: 0x0000_0000_0000_0001).description == "2001:db8::1")
        #expect(IPAddress(high: 0, low: 1).description == "::1")
        #expect(IPAddress(high: 0x2001_0db8_0000_0001, low: 0x0000_0001_0000_0001).description == "2001:db8:0:1:0:1:0:1")
    }
}

@Suite struct ICMP {
    @Test func destinationUnreachableQuotesTheTCPFlow() throws {
        let quoted = PacketBuilder.ipv4(
            source: 0x0A00_0001, destination: 0x0A00_0002, payload: Array(PacketBuilder.tcp(sequence: 4242).prefix(8)))
        let icmp: [UInt8] = [3, 13, 0, 0, 0, 0, 0, 0] + quoted
        let packet = try decode(PacketBuilder.ipv4(source: 0x0A00_00FE, protocolNumber: 1, payload: icmp), .raw)
        guard case .icmp(let message) = packet.transport else {
            Issue.record("not ICMP")
            return
        }
        #expect(message.isError)
        #expect(message.type == 3 && message.code == 13)
        let inner = try #require(message.quoted)
        #expect(inner.source.description == "10.0.0.1")
        #expect(inner.sourcePort == 50000 && inner.destinationPort == 80)
        #expect(inner.tcpSequence == 4242)
    }

    @Test func packetTooBigCarriesTheMTU() throws {
        let quoted = PacketBuilder.ipv6(nextHeader: 6, payload: PacketBuilder.tcp())
        let icmp: [UInt8] = [2, 0, 0, 0] + PacketBuilder.be32(1280) + quoted
        let packet = try decode(PacketBuilder.ipv6(nextHeader: 58, payload: icmp), .raw)
        guard case .icmp(let message) = packet.transport else {
            Issue.record("not ICMPv6")
            return
        }
        #expect(message.mtu == 1280)
        #expect(message.quoted?.destinationPort == 80)
    }
}

@Suite struct Timestamps {
    @Test func iso8601() {
        #expect(Timestamp(nanoseconds: 0).iso8601 == "1970-01-01T00:00:00.000000000Z")
        #expect(Timestamp(seconds: 1_764_074_647, nanoseconds: 123_456_789).iso8601 == "2025-11-25T12:44:07.123456789Z")
        #expect(Timestamp(seconds: 951_782_400, nanoseconds: 5).iso8601 == "2000-02-29T00:00:00.000000005Z")
    }

    /// One unit rule everywhere: milliseconds below a second, seconds above.
    @Test func durations() {
        #expect(formatDuration(1_234_500_000) == "1.235 s")
        #expect(formatDuration(270_000) == "0.27 ms" && formatDuration(4_999) == "0.00 ms")
        #expect(formatDuration(12_449_999) == "12.4 ms" && formatDuration(999_949_999) == "999.9 ms")
        #expect(formatDuration(999_950_000) == "1.000 s" && formatDuration(60_000_000_000) == "60.000 s")
        #expect(formatDuration(-1_500_000) == "-1.5 ms")
        #expect(formatDuration(.min).hasPrefix("-9223372036") && formatDuration(.max).hasSuffix(" s"))
    }
}

/// The etherparse-style sweep for every other header: each frame cut at every length before
/// the end of its last header fails with `truncated`, naming the layer whose bytes ran out.
@Suite struct TruncationSweeps {
    struct Case: CustomStringConvertible, Sendable {
        var name: String
        var linkType: LinkType
        var frame: [UInt8]
        /// Where each layer starts, in order; the last entry is where the headers end.
        var layers: [(layer: Layer, start: Int)]
        var headersEnd: Int
        var description: String { name }
    }

    static let tcp = PacketBuilder.tcp()
    static let ipv4 = PacketBuilder.ipv4(payload: tcp)
    static let cases: [Case] = [
        Case(
            name: "SLL", linkType: .linuxSLL, frame: [0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00] + ipv4,
            layers: [(.link, 0), (.ipv4, 16), (.tcp, 36)], headersEnd: 56),
        Case(
            name: "SLL2", linkType: .linuxSLL2,
            frame: [0x08, 0x00, 0, 0, 0, 0, 0, 1, 0, 1, 4, 6, 1, 2, 3, 4, 5, 6, 0, 0] + ipv4,
            layers: [(.link, 0), (.ipv4, 20), (.tcp, 40)], headersEnd: 60),
        Case(
            name: "QinQ", linkType: .ethernet,
            frame: PacketBuilder.ethernet(etherType: 0x0800, tags: [(0x88A8, 1), (0x8100, 2)], payload: ipv4),
            layers: [(.link, 0), (.vlan, 14), (.vlan, 18), (.ipv4, 22), (.tcp, 42)], headersEnd: 62),
        Case(
            name: "NULL", linkType: .null, frame: [2, 0, 0, 0] + ipv4,
            layers: [(.link, 0), (.ipv4, 4), (.tcp, 24)], headersEnd: 44),
        Case(
            name: "PPPoE", linkType: .ethernet,
            frame: PacketBuilder.ethernet(etherType: 0x8864, payload: [0x11, 0, 0, 1, 0, 62, 0x00, 0x21] + ipv4),
            layers: [(.link, 0), (.pppoe, 14), (.ipv4, 22), (.tcp, 42)], headersEnd: 62),
        Case(
            name: "IPv6 TCP", linkType: .raw, frame: PacketBuilder.ipv6(nextHeader: 6, payload: tcp),
            layers: [(.ipv4, 0), (.ipv6, 1), (.tcp, 40)], headersEnd: 60),
        Case(
            name: "UDP", linkType: .raw, frame: PacketBuilder.ipv4(protocolNumber: 17, payload: [0, 53, 0, 53, 0, 8, 0, 0]),
            layers: [(.ipv4, 0), (.udp, 20)], headersEnd: 28),
        Case(
            name: "ICMP", linkType: .raw, frame: PacketBuilder.ipv4(protocolNumber: 1, payload: [8, 0, 0, 0, 0, 1, 0, 1]),
            layers: [(.ipv4, 0), (.icmp, 20)], headersEnd: 28),
    ]

    @Test(arguments: cases)
    func everyCutIsTruncatedAtTheRightLayer(_ testCase: Case) {
        #expect((try? decode(testCase.frame, testCase.linkType)) != nil, "the whole frame decodes")
        for length in 0..<testCase.headersEnd {
            let expected = testCase.layers.last { $0.start <= length }?.layer
            do {
                _ = try decode(Array(testCase.frame.prefix(length)), testCase.linkType)
                Issue.record("\(testCase.name) cut at \(length) decoded")
            } catch {
                guard case .truncated(let layer, _, _) = error else {
                    Issue.record("\(testCase.name) cut at \(length): \(error), expected truncated")
                    continue
                }
                #expect(layer == expected, "\(testCase.name) cut at \(length)")
            }
        }
    }
}
