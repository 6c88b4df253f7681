import CapdiagWire

/// One side of a TCP connection: address and port.
public struct Endpoint: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    public var port: UInt16

    public init(address: IPAddress, port: UInt16) {
        self.address = address
        self.port = port
    }

    public static func < (lhs: Endpoint, rhs: Endpoint) -> Bool {
        (lhs.address, lhs.port) < (rhs.address, rhs.port)
    }

    /// `10.0.0.1:80`, or `[2001:db8::1]:80` for IPv6.
    public var description: String {
        address.isIPv4 ? "\(address):\(port)" : "[\(address)]:\(port)"
    }
}

/// The direction-independent key of a 4-tuple: A→B and B→A give the same key.
public struct FlowKey: Hashable, Sendable {
    public var lower: Endpoint
    public var upper: Endpoint

    public init(_ a: Endpoint, _ b: Endpoint) {
        if a < b {
            lower = a
            upper = b
        } else {
            lower = b
            upper = a
        }
    }

    /// One word into the hasher instead of six: the key is hashed once per packet, and
    /// Hasher's cost grows with each `combine`. Equality still compares every field.
    public func hash(into hasher: inout Hasher) {
        let addresses = (lower.address.low &* 0x9E37_79B9_7F4A_7C15) ^ (upper.address.low &* 0xC2B2_AE3D_27D4_EB4F)
            ^ lower.address.high ^ (upper.address.high &* 0x1656_67B1_9E37_79F9)
        hasher.combine(addresses ^ (UInt64(lower.port) << 16 | UInt64(upper.port)))
    }
}

/// Which side of a flow sent a packet. Originator and responder follow Zeek: the originator
/// sent the SYN (for capdiag: usually the gateway), the responder answered it (the upstream).
public enum Direction: UInt8, Sendable, Codable {
    case originator
    case responder

    public var other: Direction { self == .originator ? .responder : .originator }
}
