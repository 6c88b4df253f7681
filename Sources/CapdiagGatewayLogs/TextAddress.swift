import CapdiagWire

/// An address and port as a gateway logs it: `10.77.2.2:9001`, `[2001:db8::1]:443`, or (HAProxy,
/// nginx `$remote_addr:$remote_port`) `2001:db8::1:443` without brackets. The port is nil when
/// the log gives the address alone (nginx's error log `client: 10.77.1.2`).
public struct GatewayEndpoint: Hashable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    public var port: UInt16?

    public init(address: IPAddress, port: UInt16?) {
        self.address = address
        self.port = port
    }

    /// `10.77.2.2:9001`, `[2001:db8::1]:443`, or the address alone without a port.
    public var description: String {
        guard let port else { return address.description }
        return address.isIPv4 ? "\(address):\(port)" : "[\(address)]:\(port)"
    }

    /// Parses `ADDRESS:PORT`, `[IPV6]:PORT` or `IPV6:PORT` (the last colon splits); nil for
    /// anything else (host names, `unix:` paths, upstream group names).
    public init?(parsing text: some StringProtocol) {
        self.init(bytes: Array(text.utf8), 0..<text.utf8.count, requirePort: true)
    }

    init?(bytes: [UInt8], _ range: Range<Int>, requirePort: Bool) {
        let range = range.clamped(to: 0..<bytes.count)
        guard !range.isEmpty, range.count <= 64 else { return nil }
        if bytes[range.lowerBound] == 0x5B {  // [v6]:port
            guard let close = LineText.firstIndex(of: [0x5D], in: bytes, range),
                let address = TextAddress.ipv6(bytes, (range.lowerBound + 1)..<close)
            else { return nil }
            let after = close + 1
            if after == range.upperBound {
                guard !requirePort else { return nil }
                self.init(address: address, port: nil)
                return
            }
            guard bytes[after] == 0x3A, let port = TextAddress.port(bytes, (after + 1)..<range.upperBound) else {
                return nil
            }
            self.init(address: address, port: port)
            return
        }
        if let address = TextAddress.ip(bytes, range), !requirePort {
            self.init(address: address, port: nil)
            return
        }
        guard let colon = LineText.lastIndex(of: [0x3A], in: bytes, range),
            let port = TextAddress.port(bytes, (colon + 1)..<range.upperBound),
            let address = TextAddress.ip(bytes, range.lowerBound..<colon)
        else { return nil }
        self.init(address: address, port: port)
    }
}

/// Textual IP addresses (RFC 4291 §2.2 for IPv6), read from bytes with bounds checks.
enum TextAddress {
    static func ip(_ bytes: [UInt8], _ range: Range<Int>) -> IPAddress? {
        ipv4(bytes, range).map { IPAddress(ipv4: $0) } ?? ipv6(bytes, range)
    }

    static func ip(_ text: some StringProtocol) -> IPAddress? { ip(Array(text.utf8), 0..<text.utf8.count) }

    static func port(_ bytes: [UInt8], _ range: Range<Int>) -> UInt16? {
        guard range.count >= 1, range.count <= 5, let value = LineText.integer(bytes, range),
            LineText.isDigit(bytes[range.lowerBound]), value <= 65535
        else { return nil }
        return UInt16(value)
    }

    static func ipv4(_ bytes: [UInt8], _ range: Range<Int>) -> UInt32? {
        let range = range.clamped(to: 0..<bytes.count)
        guard range.count >= 7, range.count <= 15 else { return nil }
        var value: UInt32 = 0
        var octet: UInt32 = 0
        var digits = 0
        var dots = 0
        for position in range {
            let byte = bytes[position]
            if byte == 0x2E {
                guard digits > 0, dots < 3 else { return nil }
                value = value << 8 | octet
                octet = 0
                digits = 0
                dots += 1
            } else if byte >= 0x30 && byte <= 0x39 {
                digits += 1
                octet = octet * 10 + UInt32(byte - 0x30)
                guard digits <= 3, octet <= 255 else { return nil }
            } else {
                return nil
            }
        }
        guard dots == 3, digits > 0 else { return nil }
        return value << 8 | octet
    }

    static func ipv6(_ bytes: [UInt8], _ range: Range<Int>) -> IPAddress? {
        var range = range.clamped(to: 0..<bytes.count)
        // A zone ("fe80::1%eth0") is dropped.
        if let percent = LineText.firstIndex(of: [0x25], in: bytes, range) { range = range.lowerBound..<percent }
        guard range.count >= 2, range.count <= 45 else { return nil }
        var head: [UInt16] = []
        var tail: [UInt16] = []
        var sawGap = false
        var position = range.lowerBound
        if bytes[position] == 0x3A {
            guard position + 1 < range.upperBound, bytes[position + 1] == 0x3A else { return nil }
            sawGap = true
            position += 2
        }
        while position < range.upperBound {
            // An embedded IPv4 address ends the text (::ffff:10.0.0.1).
            var end = position
            while end < range.upperBound && bytes[end] != 0x3A { end += 1 }
            if end == range.upperBound, let v4 = ipv4(bytes, position..<end) {
                let groups = [UInt16(truncatingIfNeeded: v4 >> 16), UInt16(truncatingIfNeeded: v4)]
                if sawGap { tail += groups } else { head += groups }
                position = end
                break
            }
            guard end > position, end - position <= 4 else { return nil }
            var group: UInt16 = 0
            for index in position..<end {
                guard let nibble = hexValue(bytes[index]) else { return nil }
                group = group << 4 | UInt16(nibble)
            }
            if sawGap { tail.append(group) } else { head.append(group) }
            position = end
            if position < range.upperBound {
                position += 1  // the colon
                if position < range.upperBound && bytes[position] == 0x3A {
                    guard !sawGap else { return nil }
                    sawGap = true
                    position += 1
                } else if position == range.upperBound {
                    return nil  // a trailing single colon
                }
            }
            guard head.count + tail.count <= 8 else { return nil }
        }
        let count = head.count + tail.count
        guard sawGap ? count <= 7 : count == 8 else { return nil }
        let groups = head + [UInt16](repeating: 0, count: 8 - count) + tail
        var high: UInt64 = 0
        var low: UInt64 = 0
        for index in 0..<4 { high = high << 16 | UInt64(groups[index]) }
        for index in 4..<8 { low = low << 16 | UInt64(groups[index]) }
        return IPAddress(high: high, low: low)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: return byte - 0x30
        case 0x41...0x46: return byte - 0x41 + 10
        case 0x61...0x66: return byte - 0x61 + 10
        default: return nil
        }
    }
}
