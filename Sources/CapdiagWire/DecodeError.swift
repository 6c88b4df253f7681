/// The protocol layer a decoder was working on.
public enum Layer: UInt8, Sendable, CaseIterable, Codable {
    case link, vlan, pppoe, ipv4, ipv6, ipv6Extension, tcp, udp, icmp, icmpv6

    public var name: String {
        switch self {
        case .link: "link"
        case .vlan: "vlan"
        case .pppoe: "pppoe"
        case .ipv4: "ipv4"
        case .ipv6: "ipv6"
        case .ipv6Extension: "ipv6_ext"
        case .tcp: "tcp"
        case .udp: "udp"
        case .icmp: "icmp"
        case .icmpv6: "icmpv6"
        }
    }
}

/// Why a header that was fully present could not be used.
public enum InvalidReason: UInt8, Sendable, CaseIterable {
    case badIPVersion
    case ipv4HeaderLengthTooSmall
    case ipv4TotalLengthTooSmall
    case ipv6PayloadLengthTooLarge
    case tcpDataOffsetTooSmall
    case udpLengthTooSmall
    case pppoeLengthTooSmall
    case tooManyHeaders

    public var name: String {
        switch self {
        case .badIPVersion: "bad_ip_version"
        case .ipv4HeaderLengthTooSmall: "ipv4_header_length_too_small"
        case .ipv4TotalLengthTooSmall: "ipv4_total_length_too_small"
        case .ipv6PayloadLengthTooLarge: "ipv6_payload_length_too_large"
        case .tcpDataOffsetTooSmall: "tcp_data_offset_too_small"
        case .udpLengthTooSmall: "udp_length_too_small"
        case .pppoeLengthTooSmall: "pppoe_length_too_small"
        case .tooManyHeaders: "too_many_headers"
        }
    }
}

/// What capdiag does not decode (yet). The value says which protocol number it was.
public enum Unsupported: Hashable, Sendable {
    case linkType(Int32)
    case etherType(UInt16)
    case ipProtocol(UInt8)
    case pppProtocol(UInt16)
    case loopbackFamily(UInt32)
    case fragment

    public var name: String {
        switch self {
        case .linkType(let value): "link_type_\(value)"
        case .etherType(let value): "ethertype_0x" + hex(UInt64(value), width: 4)
        case .ipProtocol(let value): "ip_protocol_\(value)"
        case .pppProtocol(let value): "ppp_protocol_0x" + hex(UInt64(value), width: 4)
        case .loopbackFamily(let value): "loopback_family_\(value)"
        case .fragment: "ip_fragment"
        }
    }
}

/// A packet-level decode failure: the layer, and what was needed versus what was there
/// (etherparse's `LenError` vocabulary). Counted by the analyzer, never fatal.
public enum DecodeError: Error, Equatable, Sendable {
    /// The header needed `needed` bytes from its start but only `available` were captured.
    case truncated(layer: Layer, needed: Int, available: Int)
    /// The header was present but a field made it unusable.
    case invalid(layer: Layer, reason: InvalidReason)
    /// A protocol capdiag does not decode.
    case unsupported(layer: Layer, what: Unsupported)

    public var layer: Layer {
        switch self {
        case .truncated(let layer, _, _), .invalid(let layer, _), .unsupported(let layer, _): layer
        }
    }
}

func hex(_ value: UInt64, width: Int) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: max(0, width - digits.count)) + digits
}
