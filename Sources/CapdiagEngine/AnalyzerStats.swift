import CapdiagWire

/// Why a packet was skipped, without any text (so counting never allocates).
public enum SkipReason: Hashable, Sendable {
    case truncated
    case invalid(InvalidReason)
    case unsupported(Unsupported)

    public var name: String {
        switch self {
        case .truncated: "truncated"
        case .invalid(let reason): reason.name
        case .unsupported(let what): "unsupported_" + what.name
        }
    }
}

/// A skip counter's key: the layer and the reason.
public struct SkipKey: Hashable, Sendable {
    public var layer: Layer
    public var reason: SkipReason
}

/// Packet counters of one analysis (Suricata-style decoder counters).
public struct AnalyzerStats: Sendable {
    public var packets = 0
    /// Packets decoded through the transport layer (TCP, UDP or ICMP).
    public var decoded = 0
    public var tcp = 0
    public var udp = 0
    public var icmp = 0
    /// ICMP errors whose quoted packet belongs to a tracked TCP flow.
    public var icmpErrorsMatched = 0
    public var icmpErrorsUnmatched = 0
    /// Packets whose capture was cut by the snapshot length (caplen < wire length).
    public var snaplenCut = 0
    public var capturedBytes = 0
    public var firstTime: Timestamp?
    public var lastTime: Timestamp?
    /// Packets skipped, by layer and reason.
    public var skipped: [SkipKey: Int] = [:]

    public var skippedTotal: Int { skipped.values.reduce(0, +) }

    mutating func count(_ error: DecodeError) {
        let key: SkipKey
        switch error {
        case .truncated(let layer, _, _): key = SkipKey(layer: layer, reason: .truncated)
        case .invalid(let layer, let reason): key = SkipKey(layer: layer, reason: .invalid(reason))
        case .unsupported(let layer, let what): key = SkipKey(layer: layer, reason: .unsupported(what))
        }
        skipped[key, default: 0] += 1
    }
}
