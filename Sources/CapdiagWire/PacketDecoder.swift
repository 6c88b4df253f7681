/// The transport layer of a decoded packet.
public enum Transport: Sendable {
    case tcp(TCPHeader)
    case udp(UDPHeader)
    case icmp(ICMPMessage)
}

/// Everything the flow layer needs from one packet, as numbers and offsets into the
/// captured bytes (which the caller owns; nothing here points at them).
public struct DecodedPacket: Sendable {
    public var ip: IPInfo
    public var transport: Transport
    /// Offset of the transport payload in the captured bytes.
    public var payloadOffset: Int
    /// Payload length on the wire, from the IP and transport lengths.
    public var payloadLength: Int
    /// Payload bytes actually captured (less than `payloadLength` when snaplen cut the packet).
    public var capturedPayloadLength: Int
}

/// Decodes link, network and transport headers from one captured frame.
///
/// Module contract: decoders read only through bounds-checked loads after checking lengths,
/// never allocate, and report failures as `DecodeError` values (truncated / invalid /
/// unsupported, with the layer). The bytes are borrowed for the duration of the call.
public enum PacketDecoder {
    /// Maximum number of VLAN tags followed (802.1Q inside 802.1ad, and a few more).
    static let maximumVLANTags = 4

    /// Decodes one frame.
    /// - Parameters:
    ///   - bytes: the captured bytes, valid only during the call.
    ///   - linkType: the capture's link-layer header type.
    /// - Returns: the decoded headers and where the payload lies.
    /// - Throws: `DecodeError` naming the layer that failed.
    public static func decode(_ bytes: RawSpan, linkType: LinkType) throws(DecodeError) -> DecodedPacket {
        let ip: IPInfo
        switch linkType {
        case .ethernet: ip = try decodeEthernet(bytes)
        case .linuxSLL:
            try require(bytes, 0, 16, .link)
            ip = try decodeEtherTypePayload(bytes, etherType: bytes.u16(14), at: 16)
        case .linuxSLL2:
            try require(bytes, 0, 20, .link)
            ip = try decodeEtherTypePayload(bytes, etherType: bytes.u16(0), at: 20)
        case .null, .loop: ip = try decodeLoopback(bytes, networkOrder: linkType == .loop)
        case .raw: ip = try decodeRawIP(bytes, at: 0)
        case .ipv4: ip = try decodeIPv4(bytes, at: 0)
        case .ipv6: ip = try decodeIPv6(bytes, at: 0)
        case .other(let value): throw .unsupported(layer: .link, what: .linkType(value))
        }
        return try decodeTransport(bytes, ip: ip)
    }

    /// Ethernet II (IEEE 802.3 with EtherType ≥ 0x0600) with 802.1Q (0x8100), 802.1ad (0x88A8)
    /// and the old QinQ value 0x9100. Frames with a length field instead (802.3/LLC) are
    /// unsupported.
    static func decodeEthernet(_ bytes: RawSpan) throws(DecodeError) -> IPInfo {
        try require(bytes, 0, 14, .link)
        var etherType = bytes.u16(12)
        var offset = 14
        var tags = 0
        while etherType == 0x8100 || etherType == 0x88A8 || etherType == 0x9100 {
            tags += 1
            guard tags <= maximumVLANTags else { throw .invalid(layer: .vlan, reason: .tooManyHeaders) }
            try require(bytes, offset, 4, .vlan)
            etherType = bytes.u16(offset + 2)
            offset += 4
        }
        return try decodeEtherTypePayload(bytes, etherType: etherType, at: offset)
    }

    static func decodeEtherTypePayload(_ bytes: RawSpan, etherType: UInt16, at offset: Int) throws(DecodeError)
        -> IPInfo
    {
        switch etherType {
        case 0x0800: return try decodeIPv4(bytes, at: offset)
        case 0x86DD: return try decodeIPv6(bytes, at: offset)
        case 0x8864: return try decodePPPoESession(bytes, at: offset)
        default: throw .unsupported(layer: .link, what: .etherType(etherType))
        }
    }

    /// PPPoE session stage (RFC 2516 §4): 6-byte header, then the PPP protocol
    /// (0x0021 IPv4, 0x0057 IPv6; RFC 1661 §2).
    static func decodePPPoESession(_ bytes: RawSpan, at offset: Int) throws(DecodeError) -> IPInfo {
        try require(bytes, offset, 8, .pppoe)
        guard bytes.u16(offset + 4) >= 2 else { throw .invalid(layer: .pppoe, reason: .pppoeLengthTooSmall) }
        // Protocol-field compression (RFC 1661 §6.5): an odd first byte is a one-byte protocol.
        let compressed = bytes.u8(offset + 6) & 1 == 1
        let pppProtocol = compressed ? UInt16(bytes.u8(offset + 6)) : bytes.u16(offset + 6)
        let ipOffset = offset + (compressed ? 7 : 8)
        switch pppProtocol {
        case 0x0021: return try decodeIPv4(bytes, at: ipOffset)
        case 0x0057: return try decodeIPv6(bytes, at: ipOffset)
        default: throw .unsupported(layer: .pppoe, what: .pppProtocol(pppProtocol))
        }
    }

    /// BSD loopback: a 4-byte address family, in host order of the capturing machine for
    /// DLT_NULL (so either order here) and network order for DLT_LOOP. AF_INET is 2
    /// everywhere; AF_INET6 is 10 (Linux), 24 (NetBSD/OpenBSD), 28 (FreeBSD) or 30 (Darwin).
    static func decodeLoopback(_ bytes: RawSpan, networkOrder: Bool) throws(DecodeError) -> IPInfo {
        try require(bytes, 0, 4, .link)
        let bigEndian = bytes.u32(0)
        let family = networkOrder || bigEndian < 0x1_0000 ? bigEndian : bytes.u32LittleEndian(0)
        switch family {
        case 2: return try decodeIPv4(bytes, at: 4)
        case 10, 24, 28, 30: return try decodeIPv6(bytes, at: 4)
        default: throw .unsupported(layer: .link, what: .loopbackFamily(family))
        }
    }

    /// Raw IP: the version nibble says which.
    static func decodeRawIP(_ bytes: RawSpan, at offset: Int) throws(DecodeError) -> IPInfo {
        try require(bytes, offset, 1, .ipv4)
        switch bytes.u8(offset) >> 4 {
        case 4: return try decodeIPv4(bytes, at: offset)
        case 6: return try decodeIPv6(bytes, at: offset)
        default: throw .invalid(layer: .ipv4, reason: .badIPVersion)
        }
    }

    static func decodeTransport(_ bytes: RawSpan, ip: IPInfo) throws(DecodeError) -> DecodedPacket {
        let offset = ip.transportOffset
        let transport: Transport
        let headerLength: Int
        switch ip.transportProtocol {
        case IPProtocol.tcp:
            let tcp = try TCPHeader(parsing: bytes, at: offset)
            transport = .tcp(tcp)
            headerLength = tcp.headerLength
        case IPProtocol.udp:
            let udp = try UDPHeader(parsing: bytes, at: offset)
            transport = .udp(udp)
            headerLength = UDPHeader.length
        case IPProtocol.icmp where ip.version == 4:
            transport = .icmp(try ICMPMessage(parsing: bytes, at: offset, version: 4))
            headerLength = 8
        case IPProtocol.icmpv6 where ip.version == 6:
            transport = .icmp(try ICMPMessage(parsing: bytes, at: offset, version: 6))
            headerLength = 8
        default:
            throw .unsupported(layer: ip.version == 4 ? .ipv4 : .ipv6, what: .ipProtocol(ip.transportProtocol))
        }
        let payloadOffset = offset + headerLength
        let payloadLength = max(0, ip.transportLength - headerLength)
        let captured = max(0, min(payloadLength, bytes.byteCount - payloadOffset))
        return DecodedPacket(
            ip: ip, transport: transport, payloadOffset: payloadOffset, payloadLength: payloadLength,
            capturedPayloadLength: captured)
    }
}
