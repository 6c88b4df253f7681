/// The link-layer header types capdiag decodes, by their DLT_ value as libpcap reports it
/// from `pcap_datalink` (see pcap-linktype(7); LINKTYPE_ values in files are mapped to DLT_
/// values by libpcap).
public enum LinkType: Sendable, Equatable {
    /// DLT_NULL (0): 4-byte address family in the capturing host's byte order.
    case null
    /// DLT_EN10MB (1): Ethernet II, with 802.1Q / 802.1ad tags.
    case ethernet
    /// DLT_RAW (12 on Linux, 14 on OpenBSD; LINKTYPE_RAW 101): bare IPv4 or IPv6.
    case raw
    /// DLT_LOOP (108): like NULL but the family is in network byte order.
    case loop
    /// DLT_LINUX_SLL (113): Linux cooked capture v1, 16-byte header.
    case linuxSLL
    /// DLT_LINUX_SLL2 (276): Linux cooked capture v2, 20-byte header (`tcpdump -i any`).
    case linuxSLL2
    /// DLT_IPV4 (228).
    case ipv4
    /// DLT_IPV6 (229).
    case ipv6
    /// Anything else: every packet is counted as unsupported.
    case other(Int32)

    public init(dlt: Int32) {
        switch dlt {
        case 0: self = .null
        case 1: self = .ethernet
        case 12, 14, 101: self = .raw
        case 108: self = .loop
        case 113: self = .linuxSLL
        case 276: self = .linuxSLL2
        case 228: self = .ipv4
        case 229: self = .ipv6
        default: self = .other(dlt)
        }
    }

    public var isSupported: Bool {
        if case .other = self { return false }
        return true
    }
}
