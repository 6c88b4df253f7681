/// IP protocol numbers used by the decoder (IANA "Assigned Internet Protocol Numbers").
public enum IPProtocol {
    public static let icmp: UInt8 = 1
    public static let tcp: UInt8 = 6
    public static let udp: UInt8 = 17
    public static let icmpv6: UInt8 = 58
}

/// The network-layer facts of a packet, whichever IP version carried it.
public struct IPInfo: Sendable {
    public var version: UInt8
    public var source: IPAddress
    public var destination: IPAddress
    /// The transport protocol after any IPv6 extension headers.
    public var transportProtocol: UInt8
    /// Offset of the transport header in the captured bytes.
    public var transportOffset: Int
    /// Transport header plus payload length, from the IP length fields (what was on the wire).
    public var transportLength: Int
    /// TTL or hop limit.
    public var hopLimit: UInt8
    /// IP header length, IPv6 extension headers included.
    public var headerLength: Int
    /// IPv4's identification field (0 for IPv6): with the TCP fields it tells a frame captured
    /// twice from a retransmission.
    public var identification: UInt16 = 0

    /// The IP packet's length on the wire: headers plus transport.
    public var totalLength: Int { headerLength + transportLength }
}

/// Decodes an IPv4 header (RFC 791 §3.1) at `offset`.
///
/// A total length of zero is taken as "the rest of the captured bytes": Linux captures of
/// outgoing TSO/GSO segments carry it.
/// - Throws: `truncated`, `invalid`, or `unsupported(.fragment)` for any fragment
///   (more-fragments set or a non-zero offset): fragments are counted, not reassembled.
/// - Parameter quoted: the header is the one an ICMP error quotes: a fragment is still useful
///   (the first holds the ports), and its total length describes the original datagram.
func decodeIPv4(_ bytes: RawSpan, at offset: Int, quoted: Bool = false) throws(DecodeError) -> IPInfo {
    try require(bytes, offset, 20, .ipv4)
    let versionAndLength = bytes.u8(offset)
    guard versionAndLength >> 4 == 4 else { throw .invalid(layer: .ipv4, reason: .badIPVersion) }
    let headerLength = Int(versionAndLength & 0x0F) * 4
    guard headerLength >= 20 else { throw .invalid(layer: .ipv4, reason: .ipv4HeaderLengthTooSmall) }
    try require(bytes, offset, headerLength, .ipv4)
    var totalLength = Int(bytes.u16(offset + 2))
    if totalLength == 0 { totalLength = bytes.byteCount - offset }
    if quoted { totalLength = max(totalLength, headerLength) }
    guard totalLength >= headerLength else { throw .invalid(layer: .ipv4, reason: .ipv4TotalLengthTooSmall) }
    let fragment = bytes.u16(offset + 6)
    if fragment & 0x3FFF != 0 && !quoted { throw .unsupported(layer: .ipv4, what: .fragment) }
    return IPInfo(
        version: 4,
        source: IPAddress(ipv4: bytes.u32(offset + 12)),
        destination: IPAddress(ipv4: bytes.u32(offset + 16)),
        transportProtocol: bytes.u8(offset + 9),
        transportOffset: offset + headerLength,
        transportLength: totalLength - headerLength,
        hopLimit: bytes.u8(offset + 8),
        headerLength: headerLength,
        identification: bytes.u16(offset + 4))
}

/// Decodes an IPv6 header (RFC 8200 §3) and walks its extension headers (§4) to the
/// transport header.
///
/// Hop-by-hop, routing, destination options, mobility, HIP and shim6 share the generic
/// "next header, length in 8-octet units" layout (RFC 6564); AH counts 4-octet units
/// (RFC 4302 §2.2); the fragment header is 8 bytes. ESP and "no next header" end the walk
/// as unsupported. The walk is limited to 16 headers.
func decodeIPv6(_ bytes: RawSpan, at offset: Int) throws(DecodeError) -> IPInfo {
    try require(bytes, offset, 40, .ipv6)
    guard bytes.u8(offset) >> 4 == 6 else { throw .invalid(layer: .ipv6, reason: .badIPVersion) }
    var payloadLength = Int(bytes.u16(offset + 4))
    // A jumbogram (RFC 2675) has payload length 0; so do TSO captures. Use what is there.
    if payloadLength == 0 { payloadLength = bytes.byteCount - offset - 40 }
    var next = bytes.u8(offset + 6)
    var cursor = offset + 40
    let end = offset + 40 + payloadLength
    for _ in 0..<16 {
        switch next {
        case 0, 43, 60, 135, 139, 140:
            try require(bytes, cursor, 8, .ipv6Extension)
            let length = (Int(bytes.u8(cursor + 1)) + 1) * 8
            try require(bytes, cursor, length, .ipv6Extension)
            next = bytes.u8(cursor)
            cursor += length
        case 51:
            try require(bytes, cursor, 8, .ipv6Extension)
            let length = (Int(bytes.u8(cursor + 1)) + 2) * 4
            try require(bytes, cursor, length, .ipv6Extension)
            next = bytes.u8(cursor)
            cursor += length
        case 44:
            try require(bytes, cursor, 8, .ipv6Extension)
            let offsetAndFlags = bytes.u16(cursor + 2)
            // An atomic fragment (offset 0, M clear; RFC 6946) is a whole packet.
            if offsetAndFlags & 0xFFF9 != 0 { throw .unsupported(layer: .ipv6, what: .fragment) }
            next = bytes.u8(cursor)
            cursor += 8
        default:
            guard cursor <= end else { throw .invalid(layer: .ipv6, reason: .ipv6PayloadLengthTooLarge) }
            return IPInfo(
                version: 6,
                source: IPAddress(high: bytes.u64(offset + 8), low: bytes.u64(offset + 16)),
                destination: IPAddress(high: bytes.u64(offset + 24), low: bytes.u64(offset + 32)),
                transportProtocol: next,
                transportOffset: cursor,
                transportLength: end - cursor,
                hopLimit: bytes.u8(offset + 7),
                headerLength: cursor - offset)
        }
    }
    throw .invalid(layer: .ipv6Extension, reason: .tooManyHeaders)
}
