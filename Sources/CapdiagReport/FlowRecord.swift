import CapdiagDiagnosis
import CapdiagEngine
import CapdiagFlow
import CapdiagProtocols
import CapdiagWire

/// A packet reference in JSON: frame number, absolute time, and offset from the flow's start.
public struct PacketRecord: Codable, Sendable, Equatable {
    public var frame: Int
    public var time: String
    public var offsetNs: Int64

    init(_ packet: PacketRef, flowStart: Timestamp) {
        frame = packet.frame
        time = packet.time.iso8601
        offsetNs = packet.time - flowStart
    }
}

public struct EndpointRecord: Codable, Sendable, Equatable {
    public var address: String
    public var port: UInt16
}

extension EndpointRecord {
    init(_ endpoint: Endpoint) { self.init(address: endpoint.address.description, port: endpoint.port) }
}

/// A flow's frames in one input file, numbered as in that file: exact at the flow's first and
/// last packet; where the flow crosses into the next file the range runs to this file's end
/// (or from the next one's start), so it bounds the flow's frames there.
public struct FrameSourceRecord: Codable, Sendable, Equatable {
    /// The input's position among `capture.inputs`.
    public var input: Int
    public var path: String
    public var firstFrame: Int
    public var lastFrame: Int
}

extension Array {
    subscript(safeIndex index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}

/// A FIN or RST: when, and the sender's relative sequence number.
public struct ControlRecord: Codable, Sendable, Equatable {
    public var frame: Int
    public var time: String
    public var offsetNs: Int64
    public var relativeSeq: Int64
}

public struct DirectionRecord: Codable, Sendable, Equatable {
    public var packets: Int
    public var bytes: Int
    public var payloadBytes: Int
    public var syn: Int
    public var fin: Int
    public var rst: Int
    public var retransmissions: Int
    public var retransmittedBytes: Int
    public var outOfOrder: Int
    public var keepAlives: Int
    public var gaps: Int
    public var missingBytes: Int64
    public var ackedUnseenBytes: Int64
    public var zeroWindows: Int
    /// Frames captured twice (counted in `packets`, not analysed again).
    public var duplicateFrames: Int
    public var firstFin: ControlRecord?
    public var firstRst: ControlRecord?
    public var mss: UInt16?
    public var windowScale: UInt8?
    public var sackPermitted: Bool
    public var timestamps: Bool
}

public struct HandshakeRecord: Codable, Sendable, Equatable {
    public var syn: PacketRecord?
    public var synRetransmitCount: Int
    /// The first eight retransmitted SYNs.
    public var synRetransmits: [PacketRecord]
    public var synAck: PacketRecord?
    public var ack: PacketRecord?
    public var rttNs: Int64?
}

public struct ICMPRecord: Codable, Sendable, Equatable {
    public var count: Int
    public var frame: Int
    public var time: String
    public var offsetNs: Int64
    public var version: Int
    public var type: Int
    public var code: Int
    public var mtu: UInt32?
    public var reporter: String
    /// Whose packet the error quoted: "originator" or "responder".
    public var about: String
}

public struct StreamsRecord: Codable, Sendable, Equatable {
    public var orig: StreamRecord
    public var resp: StreamRecord
}

/// One TCP connection in the JSON output (schema in docs/json-schema.md).
public struct FlowRecord: Codable, Sendable, Equatable {
    public var type = "flow"
    public var id: Int
    public var originator: EndpointRecord
    public var responder: EndpointRecord
    /// Community ID v1 of the connection: the same flow in Zeek, Suricata, Arkime or Elastic.
    public var communityId: String
    public var rolesInferred: Bool
    public var start: String
    public var end: String
    public var durationNs: Int64
    public var firstFrame: Int
    public var lastFrame: Int
    public var connState: String
    public var history: String
    public var endedBy: String
    public var handshake: HandshakeRecord
    public var orig: DirectionRecord
    public var resp: DirectionRecord
    public var icmpError: ICMPRecord?
    public var anomalies: [String]
    /// What the connection speaks, by content: `http`, `other` or `none` (no payload).
    public var application: String
    public var http: HTTPRecord?
    /// HTTP/2 on a cleartext connection (streams, GOAWAYs, resets).
    public var http2: HTTP2Record?
    public var tls: TLSRecord?
    /// DNS over TCP on this connection.
    public var dns: DNSRecord?
    public var stream: StreamsRecord?
    /// Scores and verdicts (absent when the flow was not diagnosed).
    public var diagnosis: FlowDiagnosisRecord?
    /// With several inputs: each file the flow's frames came from and their numbers there,
    /// so a tshark filter works on that file (`first_frame`/`last_frame` count across all).
    public var sources: [FrameSourceRecord]?

    public init(_ flow: TCPFlow, session: ProtocolSession? = nil, diagnosis: FlowDiagnosis? = nil, frameRuns: FrameRuns? = nil) {
        let start = flow.first.time
        func packet(_ ref: PacketRef?) -> PacketRecord? { ref.map { PacketRecord($0, flowStart: start) } }
        func control(_ mark: ControlMark?) -> ControlRecord? {
            mark.map {
                ControlRecord(
                    frame: $0.packet.frame, time: $0.packet.time.iso8601, offsetNs: $0.packet.time - start,
                    relativeSeq: $0.relativeSequence)
            }
        }
        func direction(_ stats: DirectionStats) -> DirectionRecord {
            DirectionRecord(
                packets: stats.packets, bytes: stats.bytes, payloadBytes: stats.payloadBytes, syn: stats.synCount,
                fin: stats.finCount, rst: stats.rstCount, retransmissions: stats.retransmissions,
                retransmittedBytes: stats.retransmittedBytes, outOfOrder: stats.outOfOrder,
                keepAlives: stats.keepAlives, gaps: stats.gaps, missingBytes: stats.missingBytes,
                ackedUnseenBytes: stats.ackedUnseenBytes, zeroWindows: stats.zeroWindows,
                duplicateFrames: stats.duplicateFrames, firstFin: control(stats.firstFIN), firstRst: control(stats.firstRST), mss: stats.mss,
                windowScale: stats.windowScale, sackPermitted: stats.sackPermitted, timestamps: stats.timestamps)
        }
        id = flow.id
        originator = EndpointRecord(flow.originator)
        communityId = CommunityID.tcp(flow.originator, flow.responder)
        responder = EndpointRecord(flow.responder)
        rolesInferred = flow.rolesInferred
        self.start = start.iso8601
        end = flow.last.time.iso8601
        durationNs = flow.duration
        firstFrame = flow.first.frame
        lastFrame = flow.last.frame
        connState = flow.connState.rawValue
        history = flow.history
        endedBy = (flow.end ?? .endOfCapture).rawValue
        var retransmits: [PacketRecord] = []
        for index in 0..<min(flow.synRetransmitCount, 8) {
            retransmits.append(PacketRecord(flow.synRetransmits[index], flowStart: start))
        }
        handshake = HandshakeRecord(
            syn: packet(flow.syn), synRetransmitCount: flow.synRetransmitCount, synRetransmits: retransmits,
            synAck: packet(flow.synAck), ack: packet(flow.handshakeAck), rttNs: flow.handshakeRTT)
        orig = direction(flow.orig)
        resp = direction(flow.resp)
        icmpError = flow.firstICMPError.map {
            ICMPRecord(
                count: flow.icmpErrorCount, frame: $0.packet.frame, time: $0.packet.time.iso8601,
                offsetNs: $0.packet.time - start, version: Int($0.version), type: Int($0.type), code: Int($0.code),
                mtu: $0.mtu, reporter: $0.reporter.description,
                about: $0.aboutDirection == .originator ? "originator" : "responder")
        }
        anomalies = flow.anomalies.names
        application = session?.application.name ?? "none"
        http = HTTPRecord(session)
        http2 = HTTP2Record(session)
        tls = TLSRecord(session)
        if let session, case .dns(let stream) = session.application { dns = DNSRecord(stream.tracker) }
        stream = session.map { StreamsRecord(orig: StreamRecord($0.clientStream), resp: StreamRecord($0.serverStream)) }
        self.diagnosis = diagnosis.map(FlowDiagnosisRecord.init)
        sources = frameRuns?.ranges(first: flow.first.frame, last: flow.last.frame)?.map {
            FrameSourceRecord(input: $0.input, path: frameRuns?.paths[safeIndex: $0.input] ?? "", firstFrame: $0.first, lastFrame: $0.last)
        }
    }

    /// Resets, refusals and unanswered or half-open handshakes: what an engineer looks at first.
    public var isFlagged: Bool {
        if let diagnosis { return !diagnosis.healthy }
        return Self.isFlagged(
            connState: connState, resets: orig.rst + resp.rst, icmpError: icmpError != nil,
            httpProblems: (http?.problemCount ?? 0) + (tls?.hasProblem == true ? 1 : 0))
    }

    public static func isFlagged(_ flow: TCPFlow, session: ProtocolSession?) -> Bool {
        var problems = 0
        switch session?.application {
        case .http(let connection)?: problems = connection.problemCount
        case .tls(let connection)?: problems = connection.hasProblem ? 1 : 0
        default: break
        }
        return isFlagged(
            connState: flow.connState.rawValue, resets: flow.orig.rstCount + flow.resp.rstCount,
            icmpError: flow.firstICMPError != nil, httpProblems: problems)
    }

    static func isFlagged(connState: String, resets: Int, icmpError: Bool, httpProblems: Int) -> Bool {
        switch connState {
        case "REJ", "RSTO", "RSTR", "RSTOS0", "RSTRH", "S0", "SH", "SHR": true
        default: resets > 0 || icmpError || httpProblems > 0
        }
    }
}
