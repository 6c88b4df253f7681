import CapdiagFlow
import CapdiagProtocols
import CapdiagWire

/// What the TLS analysis saw on a flow, as plain values a rule (or a test) can build.
public struct TLSFacts: Sendable, Equatable {
    public var clientHello: PacketRef?
    public var serverName: String?
    /// The version the server chose (0x0303 = TLS 1.2, 0x0304 = TLS 1.3); nil without a ServerHello.
    public var version: UInt16?
    public var handshakeCompleted = false
    public var alerts: [TLSAlert] = []
    public var plaintextHTTPReply: PacketRef?
    public var firstClientApplicationData: PacketRef?
    public var firstServerApplicationData: PacketRef?
    public var alertAfterHandshakeWithoutData = false
    public var serverViolation: String?
    /// Whose turn it was: the packet that completed the server's flight (after it the client
    /// owed the next message), the client's Finished, and when the handshake was done.
    public var serverFlightComplete: PacketRef?
    public var clientFinished: PacketRef?
    public var handshakeDone: PacketRef?
    /// The client's alert right after the handshake (TLS 1.2 encrypted alert; TLS 1.3 one
    /// short record after its Finished), with no application data.
    public var clientAlertAfterHandshake: PacketRef?
    /// The protocol the server chose by ALPN (`h2` is HTTP/2).
    public var alpn: String?

    public init() {}

    public init(_ connection: TLSConnection) {
        clientHello = connection.clientHelloPacket
        serverName = connection.clientHello?.serverName
        version = connection.serverHello?.version
        handshakeCompleted = connection.handshakeCompleted
        alerts = connection.alerts
        plaintextHTTPReply = connection.plaintextHTTPReply
        firstClientApplicationData = connection.firstClientApplicationData
        firstServerApplicationData = connection.firstServerApplicationData
        alertAfterHandshakeWithoutData = connection.alertAfterHandshakeWithoutData
        serverViolation = connection.serverViolation
        serverFlightComplete = connection.serverFlightComplete
        clientFinished = connection.clientFinished
        handshakeDone = connection.handshakeDone
        clientAlertAfterHandshake = connection.clientAlertAfterHandshake
        alpn = connection.serverHello?.alpn
    }
}

/// Everything the diagnosis rules read about one finished TCP flow. Built from the flow and
/// its protocol analysis, or by hand in tests: rules never see packets.
///
/// Sides are named by TCP role: the originator opened the connection (the gateway, on an
/// upstream leg) and the responder accepted it (the upstream).
public struct FlowFacts: Sendable {
    public var id: Int
    public var originator: Endpoint
    public var responder: Endpoint
    /// The roles were guessed because the handshake was not seen.
    public var rolesInferred = false
    public var first: PacketRef
    public var last: PacketRef
    public var connState: ConnState
    public var syn: PacketRef?
    public var synRetransmits: [PacketRef] = []
    /// Retransmitted SYNs beyond those listed.
    public var synRetransmitCount = 0
    public var synAck: PacketRef?
    public var handshakeAck: PacketRef?
    public var handshakeRTT: Int64?
    public var orig = DirectionStats()
    public var resp = DirectionStats()
    public var icmpError: ICMPMark?
    public var icmpErrorCount = 0
    public var end: FlowEnd?
    /// When the flow left the table, in capture time: for a flow open at the end of the
    /// capture, the capture's last packet.
    public var endedAt: Timestamp?
    /// HTTP exchanges in order (nil when the flow did not carry HTTP).
    public var exchanges: [HTTPExchange]?
    /// Exchanges on the connection, including those not kept.
    public var exchangeCount = 0
    /// Their final statuses (all of them, kept in detail or not).
    public var statusCounts: [Int: Int] = [:]
    public var tls: TLSFacts?
    /// The server's bytes were neither HTTP nor TLS (a reason), when the client spoke HTTP or TLS.
    public var serverNotUnderstood: String?
    /// The connection speaks HTTP/2: the client's connection preface (prior knowledge, or
    /// after `Upgrade: h2c`), or TLS with ALPN `h2`. No HTTP/1 verdict applies to it.
    public var http2 = false
    /// The HTTP/2 analysis (streams, GOAWAYs, resets, settings), for cleartext HTTP/2.
    public var h2: HTTP2Connection?
    /// The HTTP connection became a tunnel (CONNECT, 101) and what it carries.
    public var tunnelled = false
    public var tunnelCarries: String?

    public init(id: Int, originator: Endpoint, responder: Endpoint, first: PacketRef, last: PacketRef, connState: ConnState) {
        self.id = id
        self.originator = originator
        self.responder = responder
        self.first = first
        self.last = last
        self.connState = connState
    }

    public init(_ flow: TCPFlow, http: HTTPConnection?, tls: TLSConnection?) {
        self.init(
            id: flow.id, originator: flow.originator, responder: flow.responder, first: flow.first, last: flow.last,
            connState: flow.connState)
        rolesInferred = flow.rolesInferred
        syn = flow.syn
        synRetransmitCount = flow.synRetransmitCount
        synRetransmits = (0..<min(flow.synRetransmitCount, flow.synRetransmits.count)).map { flow.synRetransmits[$0] }
        synAck = flow.synAck
        handshakeAck = flow.handshakeAck
        handshakeRTT = flow.handshakeRTT
        orig = flow.orig
        resp = flow.resp
        icmpError = flow.firstICMPError
        icmpErrorCount = flow.icmpErrorCount
        end = flow.end
        endedAt = flow.endedAt
        if let http {
            exchanges = http.exchanges
            exchangeCount = http.exchangeCount
            statusCounts = http.statusCounts
            tunnelled = http.tunnelled
            tunnelCarries = http.tunnelCarries
            if tunnelCarries == "http2" { http2 = true }
        }
        self.tls = tls.map(TLSFacts.init)
        if self.tls?.alpn == "h2" { http2 = true }
    }

    /// Requests on the connection, all of them (HTTP/1 exchanges or HTTP/2 streams), not only
    /// those kept in detail.
    public var requestCount: Int {
        if let h2 { return h2.requestCount }
        let kept = exchanges?.filter { $0.requestStart != nil }.count ?? 0
        return max(kept, exchangeCount)
    }

    /// The time the responder's first FIN or RST closed its side, whichever came first.
    public var responderClose: (mark: ControlMark, byRST: Bool)? {
        switch (resp.firstFIN, resp.firstRST) {
        case (let fin?, let rst?): fin.packet.time <= rst.packet.time ? (fin, false) : (rst, true)
        case (let fin?, nil): (fin, false)
        case (nil, let rst?): (rst, true)
        case (nil, nil): nil
        }
    }

    /// The originator's first FIN or RST.
    public var originatorClose: (mark: ControlMark, byRST: Bool)? {
        switch (orig.firstFIN, orig.firstRST) {
        case (let fin?, let rst?): fin.packet.time <= rst.packet.time ? (fin, false) : (rst, true)
        case (let fin?, nil): (fin, false)
        case (nil, let rst?): (rst, true)
        case (nil, nil): nil
        }
    }

    /// Only the originator's side was captured (asymmetric routing, a one-way span port):
    /// the originator sent data, so the connection was up, but no packet came back.
    public var oneSided: Bool { resp.packets == 0 && orig.payloadBytes > 0 }

    /// The connection was set up (a SYN-ACK was seen, or the flow was picked up mid-stream).
    public var connected: Bool { synAck != nil || syn == nil }

    /// A reasonable "one round trip" for this flow: the handshake RTT, at least 1 ms so a
    /// loopback capture (microsecond RTTs) still allows for scheduling delays.
    public var roundTrip: Int64 { max(handshakeRTT ?? 0, 1_000_000) }
}
