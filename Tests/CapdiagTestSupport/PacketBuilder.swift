/// Builds packets byte by byte for decoder tests: headers with correct length fields,
/// wrapped in any link layer.
public enum PacketBuilder {
    public static func be16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }
    public static func be32(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }

    /// A TCP header with the given options (padded to a multiple of 4) followed by `payload`.
    public static func tcp(
        sourcePort: UInt16 = 50000, destinationPort: UInt16 = 80, sequence: UInt32 = 1000, ack: UInt32 = 0,
        flags: UInt8 = 0x02, window: UInt16 = 65535, options: [UInt8] = [], payload: [UInt8] = []
    ) -> [UInt8] {
        var options = options
        while options.count % 4 != 0 { options.append(0) }
        let dataOffset = UInt8((20 + options.count) / 4) << 4
        return be16(sourcePort) + be16(destinationPort) + be32(sequence) + be32(ack) + [dataOffset, flags] + be16(window)
            + [0, 0, 0, 0] + options + payload
    }

    /// An IPv4 header (no options) carrying `payload`.
    public static func ipv4(
        source: UInt32 = 0x0A00_0001, destination: UInt32 = 0x0A00_0002, protocolNumber: UInt8 = 6,
        fragment: UInt16 = 0x4000, payload: [UInt8]
    ) -> [UInt8] {
        be16(0x4500) + be16(UInt16(20 + payload.count)) + be16(0x1234) + be16(fragment) + [64, protocolNumber, 0, 0]
            + be32(source) + be32(destination) + payload
    }

    /// An IPv6 header with `extensions` (already encoded) before the transport `payload`.
    public static func ipv6(nextHeader: UInt8, extensions: [UInt8] = [], payload: [UInt8]) -> [UInt8] {
        let source: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1]
        let destination: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [2]
        return [0x60, 0, 0, 0] + be16(UInt16(extensions.count + payload.count)) + [nextHeader, 64] + source + destination
            + extensions + payload
    }

    /// Ethernet II with optional VLAN tags (TPID, TCI pairs).
    public static func ethernet(etherType: UInt16, tags: [(UInt16, UInt16)] = [], payload: [UInt8]) -> [UInt8] {
        var frame: [UInt8] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
        for (tpid, tci) in tags { frame += be16(tpid) + be16(tci) }
        return frame + be16(etherType) + payload
    }
}
