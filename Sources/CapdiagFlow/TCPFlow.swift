import CapdiagWire

/// Zeek's per-endpoint TCP states (`TCP_Endpoint.h`), which `conn_state` is derived from.
public enum EndpointState: UInt8, Sendable {
    case inactive, synSent, synAckSent, partial, established, closed, reset
}

/// A FIN or RST as the flow saw it: when, which frame, and where in the sender's sequence
/// space (relative to its ISN, as Wireshark shows relative sequence numbers).
public struct ControlMark: Sendable {
    public var packet: PacketRef
    public var relativeSequence: Int64
    /// Whether the segment also carried ACK. A RST without ACK is what a host sends for a
    /// segment that reached no socket (RFC 9293 §3.10.7.1): the connection was already gone.
    public var withAck: Bool

    public init(packet: PacketRef, relativeSequence: Int64, withAck: Bool = true) {
        self.packet = packet
        self.relativeSequence = relativeSequence
        self.withAck = withAck
    }
}

/// The first ICMP error quoting this flow.
public struct ICMPMark: Sendable {
    public var packet: PacketRef
    public var version: UInt8
    public var type: UInt8
    public var code: UInt8
    public var mtu: UInt32?
    /// The router or host that sent the error.
    public var reporter: IPAddress
    /// Which side's packet the error quoted (who the error was about).
    public var aboutDirection: Direction

    public init(
        packet: PacketRef, version: UInt8, type: UInt8, code: UInt8, mtu: UInt32?, reporter: IPAddress,
        aboutDirection: Direction
    ) {
        self.packet = packet
        self.version = version
        self.type = type
        self.code = code
        self.mtu = mtu
        self.reporter = reporter
        self.aboutDirection = aboutDirection
    }
}

/// Why a flow left the flow table.
public enum FlowEnd: String, Sendable, Codable {
    /// Both sides closed or one reset, and the linger time passed.
    case closed
    /// No packet for the idle timeout.
    case idleTimeout = "idle_timeout"
    /// The table was full and this flow was among the least recently active.
    case evicted
    /// A new SYN reused the 4-tuple after the connection closed.
    case portReuse = "port_reuse"
    /// The capture ended while the flow was in the table.
    case endOfCapture = "end_of_capture"
}

/// Anomalies a flow can raise, with stable snake_case names (after Zeek weirds).
public struct FlowAnomalies: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let dataAfterReset = FlowAnomalies(rawValue: 1 << 0)
    public static let synSequenceJump = FlowAnomalies(rawValue: 1 << 1)
    public static let synInsideConnection = FlowAnomalies(rawValue: 1 << 2)
    public static let tooManyHoles = FlowAnomalies(rawValue: 1 << 3)
    public static let historyTruncated = FlowAnomalies(rawValue: 1 << 4)
    public static let snaplenTruncated = FlowAnomalies(rawValue: 1 << 5)
    public static let tcpOptionsMalformed = FlowAnomalies(rawValue: 1 << 6)
    public static let rstWithData = FlowAnomalies(rawValue: 1 << 7)

    static let names: [(FlowAnomalies, String)] = [
        (.dataAfterReset, "data_after_reset"), (.synSequenceJump, "SYN_seq_jump"),
        (.synInsideConnection, "SYN_inside_connection"), (.tooManyHoles, "too_many_holes"),
        (.historyTruncated, "history_truncated"), (.snaplenTruncated, "snaplen_truncated"),
        (.tcpOptionsMalformed, "tcp_options_malformed"), (.rstWithData, "RST_with_data"),
    ]

    public var names: [String] { Self.names.filter { contains($0.0) }.map(\.1) }
}

/// A byte range in a sender's relative sequence space that was not seen (yet).
struct Hole: Sendable {
    var start: Int64
    var end: Int64
    /// When the segment beyond the hole arrived: a later fill within the reordering window
    /// is out-of-order, after it a retransmission.
    var openedAt: Timestamp
}

/// Eight holes, allocated when the first opens: most flows never have one, and eight inline
/// holes per direction were a fifth of a SYN-only flow's memory.
struct HoleSlots: Sendable {
    private var storage: [Hole] = []

    subscript(index: Int) -> Hole {
        get { index < storage.count ? storage[index] : Hole(start: 0, end: 0, openedAt: .zero) }
        set {
            if storage.isEmpty { storage = Array(repeating: Hole(start: 0, end: 0, openedAt: .zero), count: 8) }
            storage[index] = newValue
        }
    }
}

/// Eight packets, allocated when the first is stored (SYN retransmissions are rare).
public struct PacketSlots: Sendable {
    private var storage: [PacketRef] = []

    public init() {}

    /// The capacity, as `InlineArray<8, PacketRef>` had it.
    public var count: Int { 8 }

    public subscript(index: Int) -> PacketRef {
        get { index < storage.count ? storage[index] : PacketRef(frame: 0, time: .zero) }
        set {
            if storage.isEmpty { storage = Array(repeating: PacketRef(frame: 0, time: .zero), count: 8) }
            storage[index] = newValue
        }
    }
}

/// One direction of a flow: what its sender sent, and the analysis of its sequence space.
public struct DirectionStats: Sendable {
    public var packets = 0
    /// IP bytes (headers included), as tshark's conversation table counts.
    public var bytes = 0
    /// TCP payload bytes on the wire, retransmissions included.
    public var payloadBytes = 0
    public var synCount = 0
    public var finCount = 0
    public var rstCount = 0
    /// Segments whose data had all been seen before (Wireshark "Retransmission", keep-alives excluded).
    public var retransmissions = 0
    public var retransmittedBytes = 0
    /// Late segments that filled a hole within the reordering window (Wireshark "Out-Of-Order").
    public var outOfOrder = 0
    /// TCP keep-alives: one or no byte at the sequence just before the next expected.
    public var keepAlives = 0
    /// Times the sequence jumped forward past unseen bytes (Wireshark "Previous segment not captured").
    public var gaps = 0
    /// Bytes never seen: holes still open at the end of the flow.
    public var missingBytes: Int64 = 0
    /// Of those, bytes the peer acknowledged: they crossed the network, so the capture lost
    /// them (Wireshark "ACKed unseen segment", Zeek `missed_bytes`).
    public var ackedUnseenBytes: Int64 = 0
    /// Zero-window advertisements (window 0 on a segment without SYN, FIN or RST).
    public var zeroWindows = 0
    /// Frames captured twice (same segment, same IP identification, within 2 ms): dropped
    /// before analysis, so they are never retransmissions.
    public var duplicateFrames = 0
    /// The first and the latest packet that carried payload bytes not seen before.
    public var firstPayload: PacketRef?
    public var lastNewPayload: PacketRef?
    public var firstFIN: ControlMark?
    public var firstRST: ControlMark?
    /// Options from this side's SYN.
    public var mss: UInt16?
    public var windowScale: UInt8?
    public var sackPermitted = false
    public var timestamps = false

    public init() {}

    // Sequence analysis (internal).
    var lastSignature: SegmentSignature?
    var lastSignatureTime: Timestamp = .zero
    var state: EndpointState = .inactive
    var previousState: EndpointState = .inactive
    var sequence = SequenceSpace()
    /// Whether `sequence` has a base yet (from this side's packets or the peer's ACK).
    var sequenceKnown = false
    /// One past the highest relative sequence seen (SYN and FIN included, as RFC 9293 counts).
    var nextSequence: Int64 = 1
    /// Highest acknowledgment from the peer, relative to this side's space.
    var highestAckFromPeer: Int64 = 0
    var sawAckFromPeer = false
    var holes = HoleSlots()
    var holeCount = 0
    var lastSYNSequence: Int64 = 0
    var lastFINSequence: Int64 = 0
    var lastRSTSequence: Int64 = 0
    var retransmitHistoryCount = 0
    var retransmitHistoryThreshold = 1
    var zeroWindowHistoryCount = 0
    var zeroWindowHistoryThreshold = 1

    /// Data bytes in sequence space (Zeek's endpoint size): highest offset seen minus the SYN.
    public var size: Int64 { max(0, nextSequence - 1) }

    /// The stream offset up to which the peer acknowledged this side's bytes (a FIN counts
    /// one), or nil before any acknowledgment.
    public var acknowledgedOffset: Int64? { sawAckFromPeer ? highestAckFromPeer - 1 : nil }

    /// The endpoint's Zeek state.
    public var endpointState: EndpointState { state }

    mutating func setState(_ new: EndpointState) {
        guard new != state else { return }
        previousState = state
        state = new
    }
}

/// One TCP connection: identity, handshake, per-direction statistics, Zeek `conn_state` and
/// `history`. Lives in the flow table's slab and is updated in place.
public struct TCPFlow: Sendable {
    /// A number unique within one analysis, in order of first packet.
    public var id: Int
    public var originator: Endpoint
    public var responder: Endpoint
    /// True when no SYN was seen from the originator: the roles were inferred (from a SYN-ACK,
    /// or from which port looks like a server port).
    public var rolesInferred: Bool
    public var first: PacketRef
    public var last: PacketRef
    public var syn: PacketRef?
    /// The originator's initial sequence number, from its first SYN.
    public var initialSequence: UInt32?
    /// SYNs the originator sent again before any SYN-ACK (the connect backoff).
    public var synRetransmits = PacketSlots()
    public var synRetransmitCount = 0
    public var synAck: PacketRef?
    /// The originator's ACK completing the three-way handshake.
    public var handshakeAck: PacketRef?
    public var orig = DirectionStats()
    public var resp = DirectionStats()
    public var icmpErrorCount = 0
    public var firstICMPError: ICMPMark?
    public var anomalies: FlowAnomalies = []
    public var end: FlowEnd?
    /// When one side reset or both closed: the flow leaves the table after the linger time.
    public var closedAt: Timestamp?
    /// When the flow left the table, in capture time (the capture's last packet for a flow
    /// still open at the end).
    public var endedAt: Timestamp?

    var historyLog = FlowHistory()

    init(id: Int, sender: Endpoint, receiver: Endpoint, flags: TCPFlags, packet: PacketRef) {
        self.id = id
        first = packet
        last = packet
        if flags.contains(.syn) && !flags.contains(.ack) {
            originator = sender
            responder = receiver
            rolesInferred = false
        } else if flags.contains(.syn) || (isLikelyServerPort(sender.port) && !isLikelyServerPort(receiver.port)) {
            // A SYN-ACK, or mid-stream traffic from what looks like the server: Zeek flips the
            // roles and marks the history with '^'.
            originator = receiver
            responder = sender
            rolesInferred = true
            addHistory(UInt8(ascii: "^"))
        } else {
            originator = sender
            responder = receiver
            rolesInferred = true
        }
    }

    /// Zeek's history string: upper case for the originator (see `conn.log` `history`).
    public var history: String {
        var text = ""
        for index in 0..<historyLog.count { text.unicodeScalars.append(Unicode.Scalar(historyLog.bytes[index])) }
        return text
    }

    public subscript(direction: Direction) -> DirectionStats {
        get { direction == .originator ? orig : resp }
        set {
            if direction == .originator { orig = newValue } else { resp = newValue }
        }
    }

    /// Never negative: in a damaged capture the last packet may be stamped before the first.
    public var duration: Int64 { max(0, last.time - first.time) }

    /// The handshake round trip seen from the capture point: SYN to SYN-ACK to ACK.
    public var handshakeRTT: Int64? {
        guard let syn, let handshakeAck else { return nil }
        return handshakeAck.time - syn.time
    }

    /// Whether both sides are done (one reset, or both sent FIN).
    var isTerminated: Bool { Self.terminated(orig.state, resp.state) }

    /// Whether endpoints in these states have terminated their connection. Static on the two
    /// states so the per-packet check reads two bytes in place: as a getter on the flow, the
    /// optimizer copied the whole 1.2 KB flow to evaluate it for every packet.
    static func terminated(_ orig: EndpointState, _ resp: EndpointState) -> Bool {
        orig == .reset || resp == .reset || (orig == .closed && resp == .closed)
    }

    // MARK: - History (Zeek `Connection::CheckHistory` / `AddHistory` / `ScaledHistoryEntry`)

    mutating func addHistory(_ code: UInt8) { historyLog.add(code, &anomalies) }

    func letter(_ code: Character, originator isOrig: Bool) -> UInt8 { FlowHistory.letter(code, originator: isOrig) }

    /// Zeek's `conn_state` (base/protocols/conn/main.zeek).
    public var connState: ConnState {
        let os = orig.state
        let rs = resp.state
        let origInactive = os == .inactive || os == .partial
        let respInactive = rs == .inactive || rs == .partial
        if rs == .reset {
            if os == .synSent || os == .synAckSent || (os == .reset && orig.size == 0 && resp.size == 0) {
                return .rej
            }
            return origInactive ? .rstrh : .rstr
        }
        if os == .reset {
            if respInactive { return historyMatchesRSTOS0 ? .rstos0 : .oth }
            return .rsto
        }
        if rs == .closed && os == .closed { return .sf }
        if os == .closed { return respInactive ? .sh : .s2 }
        if rs == .closed { return origInactive ? .shr : .s3 }
        if os == .synSent && rs == .inactive { return .s0 }
        if os == .established && rs == .established { return .s1 }
        return .oth
    }

    /// Zeek's test `/\^?S[^HAFGIQ]*R.*/ == history`.
    var historyMatchesRSTOS0: Bool {
        var index = 0
        if index < historyLog.count && historyLog.bytes[index] == UInt8(ascii: "^") { index += 1 }
        guard index < historyLog.count, historyLog.bytes[index] == UInt8(ascii: "S") else { return false }
        index += 1
        while index < historyLog.count {
            switch historyLog.bytes[index] {
            case UInt8(ascii: "R"): return true
            case UInt8(ascii: "H"), UInt8(ascii: "A"), UInt8(ascii: "F"), UInt8(ascii: "G"),
                UInt8(ascii: "I"), UInt8(ascii: "Q"):
                return false
            default: index += 1
            }
        }
        return false
    }
}

/// Zeek's connection states.
public enum ConnState: String, Sendable, CaseIterable, Codable {
    case s0 = "S0", s1 = "S1", sf = "SF", rej = "REJ", s2 = "S2", s3 = "S3", rsto = "RSTO", rstr = "RSTR"
    case rstos0 = "RSTOS0", rstrh = "RSTRH", sh = "SH", shr = "SHR", oth = "OTH"

    /// Zeek's description of each state.
    public var meaning: String {
        switch self {
        case .s0: "connection attempt seen, no reply"
        case .s1: "established, not terminated"
        case .sf: "normal establishment and termination"
        case .rej: "connection attempt rejected"
        case .s2: "established, close attempt by originator seen (no reply from responder)"
        case .s3: "established, close attempt by responder seen (no reply from originator)"
        case .rsto: "established, originator aborted (sent a RST)"
        case .rstr: "responder sent a RST"
        case .rstos0: "originator sent a SYN followed by a RST, no SYN-ACK from the responder"
        case .rstrh: "responder sent a SYN-ACK followed by a RST, no SYN from the originator"
        case .sh: "originator sent a SYN followed by a FIN, no SYN-ACK from the responder"
        case .shr: "responder sent a SYN-ACK followed by a FIN, no SYN from the originator"
        case .oth: "no SYN seen, just midstream traffic"
        }
    }
}

/// Ports a server likely listens on; used only to guess roles when the SYN was not captured
/// (Zeek guesses the same way, from the ports its analyzers register).
func isLikelyServerPort(_ port: UInt16) -> Bool {
    switch port {
    case 1..<1024, 1080, 1433, 1521, 2049, 3128, 3306, 3389, 5432, 5672, 5900, 6379, 6443, 8000, 8008, 8080,
        8081, 8443, 8888, 9000, 9090, 9200, 9418, 11211, 27017:
        true
    default: false
    }
}

/// Zeek's connection history (`Connection::CheckHistory` / `AddHistory` /
/// `ScaledHistoryEntry`): at most 32 letters, upper case for the originator.
struct FlowHistory: Sendable {
    var bytes = InlineArray<32, UInt8>(repeating: 0)
    var count = 0
    var seen: UInt32 = 0

    mutating func add(_ code: UInt8, _ anomalies: inout FlowAnomalies) {
        guard count < 32 else {
            anomalies.insert(.historyTruncated)
            return
        }
        bytes[count] = code
        count += 1
    }

    /// Adds `code` the first time this kind of packet is seen from this side.
    /// - Returns: true when it had been seen before.
    @discardableResult
    mutating func check(_ mask: UInt32, _ code: Character, originator isOrig: Bool, _ anomalies: inout FlowAnomalies) -> Bool {
        let shifted = isOrig ? mask : mask << 16
        if seen & shifted != 0 { return true }
        seen |= shifted
        add(Self.letter(code, originator: isOrig), &anomalies)
        return false
    }

    static func letter(_ code: Character, originator isOrig: Bool) -> UInt8 {
        let value = code.asciiValue ?? UInt8(ascii: "?")
        return isOrig ? value : (value | 0x20)
    }

    /// Adds `code` at the 1st, 10th, 100th, … occurrence.
    mutating func scaled(_ code: Character, originator isOrig: Bool, count: inout Int, threshold: inout Int, _ anomalies: inout FlowAnomalies) {
        count += 1
        if count == threshold {
            add(Self.letter(code, originator: isOrig), &anomalies)
            threshold = threshold > Int.max / 10 ? Int.max : threshold * 10
        }
    }
}
