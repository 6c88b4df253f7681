import CapdiagFlow
import CapdiagWire

#if canImport(Glibc)
import Glibc
#endif

/// A server named on the command line (`--upstream`, `--gateway`): an address, a CIDR range or
/// a host name, with or without a port —
/// `10.0.0.5`, `10.0.0.5:8080`, `10.0.0.0/8`, `10.0.0.0/8:8080`, `2001:db8::1`, `[2001:db8::1]:443`,
/// `[2001:db8::/32]:443`, `backend.internal:8080`. A host name is resolved once, when the pattern
/// is made (getaddrinfo: /etc/hosts, then DNS), to every address it has then.
public struct EndpointPattern: Sendable, Equatable {
    /// As given, without the port.
    public var host: String
    public var port: UInt16?
    /// The network and its prefix length in bits of the 128-bit address (IPv4 mapped: 96 + n).
    var network: IPAddress
    var prefixBits: Int
    /// Resolved addresses of a host name (empty for an address or a range).
    var resolved: [IPAddress] = []

    /// - Parameter resolve: turns a host name into addresses (tests pass their own).
    public init?(_ text: String, resolve: (String) -> [IPAddress] = EndpointPattern.resolve) {
        var hostPart: Substring
        var portPart: Substring?
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            hostPart = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else { return nil }
                portPart = rest.dropFirst()
            }
        } else if text.filter({ $0 == ":" }).count == 1, let colon = text.firstIndex(of: ":") {
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
        } else {
            hostPart = Substring(text)
        }
        if let portPart {
            guard let value = UInt16(portPart) else { return nil }
            port = value
        }
        guard !hostPart.isEmpty else { return nil }
        var length: Int?
        if let slash = hostPart.firstIndex(of: "/") {
            guard let bits = Int(hostPart[hostPart.index(after: slash)...]) else { return nil }
            length = bits
            hostPart = hostPart[..<slash]
        }
        host = String(hostPart)
        if let address = Self.parseAddress(host) {
            let maximum = address.isIPv4 ? 32 : 128
            guard (0...maximum).contains(length ?? maximum) else { return nil }
            prefixBits = (address.isIPv4 ? 96 : 0) + (length ?? maximum)
            network = address.masked(prefixBits)
        } else {
            // A host name: no range, and it must resolve now.
            guard length == nil, host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." }) else { return nil }
            resolved = resolve(host)
            guard !resolved.isEmpty else { return nil }
            network = IPAddress(high: 0, low: 0)
            prefixBits = 128
        }
        if length != nil { host += "/\(length ?? 0)" }
    }

    public func matches(_ endpoint: Endpoint) -> Bool {
        if let port, port != endpoint.port { return false }
        if !resolved.isEmpty { return resolved.contains(endpoint.address) }
        return endpoint.address.masked(prefixBits) == network
    }

    /// An IPv4 or IPv6 literal.
    public static func parseAddress(_ text: String) -> IPAddress? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return IPAddress(ipv4: UInt32(bigEndian: v4.s_addr)) }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: v6) { Array($0) }
        let high = bytes[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let low = bytes[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return IPAddress(high: high, low: low)
    }

    /// Every address `name` has now (getaddrinfo, TCP).
    public static func resolve(_ name: String) -> [IPAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(name, nil, &hints, &list) == 0 else { return [] }
        defer { freeaddrinfo(list) }
        var addresses: [IPAddress] = []
        var entry = list
        while let current = entry {
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            if current.pointee.ai_family == AF_INET, let raw = current.pointee.ai_addr {
                raw.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                    var address = sin.pointee.sin_addr
                    inet_ntop(AF_INET, &address, &buffer, socklen_t(buffer.count))
                }
            } else if current.pointee.ai_family == AF_INET6, let raw = current.pointee.ai_addr {
                raw.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                    var address = sin6.pointee.sin6_addr
                    inet_ntop(AF_INET6, &address, &buffer, socklen_t(buffer.count))
                }
            }
            let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if let address = parseAddress(text), !addresses.contains(address) { addresses.append(address) }
            entry = current.pointee.ai_next
        }
        return addresses
    }
}

extension IPAddress {
    /// The address with all but the first `bits` of its 128 bits cleared.
    func masked(_ bits: Int) -> IPAddress {
        let bits = min(max(bits, 0), 128)
        let highMask: UInt64 = bits >= 64 ? .max : bits == 0 ? 0 : ~(UInt64.max >> UInt64(bits))
        let lowBits = bits - 64
        let lowMask: UInt64 = lowBits >= 64 ? .max : lowBits <= 0 ? 0 : ~(UInt64.max >> UInt64(lowBits))
        return IPAddress(high: high & highMask, low: low & lowMask)
    }
}
