/// TCP control bits (RFC 9293 §3.1).
public struct TCPFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let fin = TCPFlags(rawValue: 0x01)
    public static let syn = TCPFlags(rawValue: 0x02)
    public static let rst = TCPFlags(rawValue: 0x04)
    public static let psh = TCPFlags(rawValue: 0x08)
    public static let ack = TCPFlags(rawValue: 0x10)
    public static let urg = TCPFlags(rawValue: 0x20)
    public static let ece = TCPFlags(rawValue: 0x40)
    public static let cwr = TCPFlags(rawValue: 0x80)
}

/// One SACK block (RFC 2018 §3): the left and right edges of a block the receiver holds.
public struct SACKBlock: Hashable, Sendable {
    public var left: UInt32
    public var right: UInt32
    public init(left: UInt32, right: UInt32) {
        self.left = left
        self.right = right
    }
}

/// The TCP options capdiag uses, in fixed storage so decoding never allocates.
public struct TCPOptions: Sendable {
    /// Maximum segment size (kind 2, RFC 9293 §3.2).
    public var mss: UInt16?
    /// Window scale shift count (kind 3, RFC 7323 §2).
    public var windowScale: UInt8?
    /// SACK permitted (kind 4, RFC 2018).
    public var sackPermitted = false
    /// TSval / TSecr (kind 8, RFC 7323 §3).
    public var timestamp: (value: UInt32, echoReply: UInt32)?
    /// Number of SACK blocks in the option (kind 5); the first four are kept in `sackBlocks`.
    public var sackBlockCount = 0
    public var sackBlocks = InlineArray<4, SACKBlock>(repeating: SACKBlock(left: 0, right: 0))
    /// Set when an option's length ran past the header: the remaining options were skipped.
    public var malformed = false

    public init() {}

    /// Parses the options area (RFC 9293 §3.1, "Options"): kinds 0 (end) and 1 (no-op) are
    /// one byte; every other kind carries a length that includes kind and length bytes.
    init(parsing bytes: RawSpan, from start: Int, to end: Int) {
        var offset = start
        while offset < end {
            let kind = bytes.u8(offset)
            if kind == 0 { break }
            if kind == 1 {
                offset += 1
                continue
            }
            guard offset + 1 < end else {
                malformed = true
                break
            }
            let length = Int(bytes.u8(offset + 1))
            guard length >= 2, offset + length <= end else {
                malformed = true
                break
            }
            switch (kind, length) {
            case (2, 4): mss = bytes.u16(offset + 2)
            case (3, 3): windowScale = bytes.u8(offset + 2)
            case (4, 2): sackPermitted = true
            case (5, _) where (length - 2) % 8 == 0:
                sackBlockCount = (length - 2) / 8
                for index in 0..<min(sackBlockCount, 4) {
                    let at = offset + 2 + index * 8
                    sackBlocks[index] = SACKBlock(left: bytes.u32(at), right: bytes.u32(at + 4))
                }
            case (8, 10): timestamp = (bytes.u32(offset + 2), bytes.u32(offset + 6))
            default: break
            }
            offset += length
        }
    }
}

/// A TCP header (RFC 9293 §3.1).
public struct TCPHeader: Sendable {
    public static let minimumLength = 20

    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var sequenceNumber: UInt32
    public var acknowledgmentNumber: UInt32
    public var flags: TCPFlags
    public var window: UInt16
    public var urgentPointer: UInt16
    /// Header length in bytes (data offset × 4).
    public var headerLength: Int
    public var options: TCPOptions

    /// Decodes the header at `offset`.
    /// - Throws: `truncated` if fewer than 20 bytes, or fewer than the data offset says, were
    ///   captured; `invalid` if the data offset is below 5 words.
    public init(parsing bytes: RawSpan, at offset: Int) throws(DecodeError) {
        try require(bytes, offset, Self.minimumLength, .tcp)
        let words = Int(bytes.u8(offset + 12) >> 4)
        guard words >= 5 else { throw .invalid(layer: .tcp, reason: .tcpDataOffsetTooSmall) }
        headerLength = words * 4
        try require(bytes, offset, headerLength, .tcp)
        sourcePort = bytes.u16(offset)
        destinationPort = bytes.u16(offset + 2)
        sequenceNumber = bytes.u32(offset + 4)
        acknowledgmentNumber = bytes.u32(offset + 8)
        flags = TCPFlags(rawValue: bytes.u8(offset + 13))
        window = bytes.u16(offset + 14)
        urgentPointer = bytes.u16(offset + 18)
        options =
            headerLength > Self.minimumLength
            ? TCPOptions(parsing: bytes, from: offset + 20, to: offset + headerLength) : TCPOptions()
    }
}

/// A UDP header (RFC 768).
public struct UDPHeader: Sendable {
    public static let length = 8
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    /// The length field: header plus data.
    public var totalLength: UInt16

    public init(parsing bytes: RawSpan, at offset: Int) throws(DecodeError) {
        try require(bytes, offset, Self.length, .udp)
        sourcePort = bytes.u16(offset)
        destinationPort = bytes.u16(offset + 2)
        totalLength = bytes.u16(offset + 4)
        guard totalLength >= 8 else { throw .invalid(layer: .udp, reason: .udpLengthTooSmall) }
    }
}
