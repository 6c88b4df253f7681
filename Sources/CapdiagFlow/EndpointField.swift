/// An endpoint held as its display text (`10.0.0.1:80`, `[2001:db8::1]:80`), which sentences,
/// tables and dictionary keys use, but written in JSON as `{"address": …, "port": …}`: one
/// endpoint shape in every output, so a log pipeline maps a flow's `originator` and a
/// conclusion's `upstream` with the same rule. Text that is no address and port (an upstream
/// group a gateway's log names) is written as `{"name": …}`.
@propertyWrapper
public struct EndpointField: Sendable, Equatable, Codable {
    public var wrappedValue: String

    public init(wrappedValue: String) { self.wrappedValue = wrappedValue }

    public func encode(to encoder: any Encoder) throws {
        try EndpointText.encode(wrappedValue, to: encoder)
    }

    public init(from decoder: any Decoder) throws {
        wrappedValue = try EndpointText.decode(from: decoder)
    }
}

/// `EndpointField` for optional endpoints: absent stays absent (the key is left out), as for
/// every other optional field.
@propertyWrapper
public struct OptionalEndpointField: Sendable, Equatable, Codable {
    public var wrappedValue: String?

    public init(wrappedValue: String?) { self.wrappedValue = wrappedValue }

    public func encode(to encoder: any Encoder) throws {
        if let wrappedValue { try EndpointText.encode(wrappedValue, to: encoder) }
    }

    public init(from decoder: any Decoder) throws {
        wrappedValue = try EndpointText.decode(from: decoder)
    }
}

/// Synthesised `Codable` calls these for an `OptionalEndpointField` property: without them a
/// nil endpoint would be written as an empty object and a missing key would fail to decode.
extension KeyedEncodingContainer {
    public mutating func encode(_ value: OptionalEndpointField, forKey key: Key) throws {
        guard let text = value.wrappedValue else { return }
        var nested = nestedContainer(keyedBy: EndpointText.Keys.self, forKey: key)
        try EndpointText.encode(text, into: &nested)
    }
}

extension KeyedDecodingContainer {
    public func decode(_ type: OptionalEndpointField.Type, forKey key: Key) throws -> OptionalEndpointField {
        try decodeIfPresent(type, forKey: key) ?? OptionalEndpointField(wrappedValue: nil)
    }
}

/// Splits and joins the display text.
public enum EndpointText {
    enum Keys: String, CodingKey { case address, port, name }

    /// `("10.0.0.1", 80)` from `10.0.0.1:80`, `("2001:db8::1", 80)` from `[2001:db8::1]:80`;
    /// nil for text without a port.
    public static func split(_ text: String) -> (address: String, port: UInt16)? {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else { return nil }
        var address = text[..<colon]
        if address.hasPrefix("[") && address.hasSuffix("]") {
            address = address.dropFirst().dropLast()
        } else if address.contains(":") {
            return nil  // a bare IPv6 address: its last group is no port
        }
        guard !address.isEmpty else { return nil }
        return (String(address), port)
    }

    public static func join(address: String, port: UInt16) -> String {
        address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)"
    }

    static func encode(_ text: String, to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        try encode(text, into: &container)
    }

    static func encode(_ text: String, into container: inout KeyedEncodingContainer<Keys>) throws {
        if let (address, port) = split(text) {
            try container.encode(address, forKey: .address)
            try container.encode(port, forKey: .port)
        } else {
            try container.encode(text, forKey: .name)
        }
    }

    static func decode(from decoder: any Decoder) throws -> String {
        let container = try decoder.container(keyedBy: Keys.self)
        if let address = try container.decodeIfPresent(String.self, forKey: .address),
           let port = try container.decodeIfPresent(UInt16.self, forKey: .port) {
            return join(address: address, port: port)
        }
        return try container.decode(String.self, forKey: .name)
    }
}
