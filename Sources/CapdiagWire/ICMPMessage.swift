/// The IP and transport header an ICMP error quotes: enough to find the flow it belongs to
/// (RFC 792 requires the IP header plus 64 bits of the original datagram; RFC 4443 §2.4
/// quotes as much as fits).
public struct QuotedPacket: Sendable {
    public var source: IPAddress
    public var destination: IPAddress
    public var transportProtocol: UInt8
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    /// The quoted TCP sequence number (the first 8 quoted TCP bytes hold it).
    public var tcpSequence: UInt32?
}

/// An ICMP or ICMPv6 message. Errors carry the packet that caused them.
public struct ICMPMessage: Sendable {
    public var version: UInt8
    public var type: UInt8
    public var code: UInt8
    /// Next-hop MTU of an IPv4 "fragmentation needed" (type 3 code 4, RFC 1191) or an ICMPv6
    /// "packet too big" (type 2, RFC 4443 §3.2).
    public var mtu: UInt32?
    /// The quoted packet of an error message, when it could be decoded.
    public var quoted: QuotedPacket?

    /// Whether the type is an error message that quotes the offending packet.
    public var isError: Bool {
        switch (version, type) {
        case (4, 3), (4, 4), (4, 5), (4, 11), (4, 12): true
        case (6, 1...4): true
        default: false
        }
    }

    init(parsing bytes: RawSpan, at offset: Int, version: UInt8) throws(DecodeError) {
        let layer: Layer = version == 4 ? .icmp : .icmpv6
        try require(bytes, offset, 8, layer)
        self.version = version
        type = bytes.u8(offset)
        code = bytes.u8(offset + 1)
        if version == 4 && type == 3 && code == 4 { mtu = UInt32(bytes.u16(offset + 6)) }
        if version == 6 && type == 2 { mtu = bytes.u32(offset + 4) }
        guard isError else { return }
        // The quoted packet may be cut short; decode what is there, never fail the message.
        let inner = offset + 8
        let info: IPInfo? =
            version == 4 ? try? decodeIPv4(bytes, at: inner, quoted: true) : try? decodeIPv6(bytes, at: inner)
        guard let info else { return }
        var quoted = QuotedPacket(
            source: info.source, destination: info.destination, transportProtocol: info.transportProtocol,
            sourcePort: 0, destinationPort: 0, tcpSequence: nil)
        let at = info.transportOffset
        if (info.transportProtocol == IPProtocol.tcp || info.transportProtocol == IPProtocol.udp),
            bytes.byteCount - at >= 4
        {
            quoted.sourcePort = bytes.u16(at)
            quoted.destinationPort = bytes.u16(at + 2)
            if info.transportProtocol == IPProtocol.tcp && bytes.byteCount - at >= 8 {
                quoted.tcpSequence = bytes.u32(at + 4)
            }
        }
        self.quoted = quoted
    }
}
