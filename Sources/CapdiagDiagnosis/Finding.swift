import CapdiagFlow
import CapdiagProtocols
import CapdiagWire

/// How bad a finding is. `high`: a request or connection attempt failed (a gateway answers
/// 502/504 for it unless it retries elsewhere). `medium`: the upstream answered an error itself,
/// or something failed that may not have reached a client. `low`: degraded but working.
/// `info`: worth knowing, not a fault.
public enum Severity: Int, Sendable, Comparable, CaseIterable, Codable {
    case info, low, medium, high

    public var name: String {
        switch self {
        case .info: "info"
        case .low: "low"
        case .medium: "medium"
        case .high: "high"
        }
    }

    public init?(name: String) {
        guard let value = Self.allCases.first(where: { $0.name == name }) else { return nil }
        self = value
    }

    public static func < (lhs: Severity, rhs: Severity) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// The score dimensions every flow is rated on.
public enum Dimension: Int, Sendable, CaseIterable {
    case reset, handshake, timeout, invalidResponse, networkQuality
}

/// Per-flow scores, 0 (nothing wrong) to 100 (certainly failed), one per dimension.
public struct Scores: Sendable, Equatable {
    public var reset = 0
    public var handshake = 0
    public var timeout = 0
    public var invalidResponse = 0
    public var networkQuality = 0

    public init() {}

    public subscript(dimension: Dimension) -> Int {
        get {
            switch dimension {
            case .reset: reset
            case .handshake: handshake
            case .timeout: timeout
            case .invalidResponse: invalidResponse
            case .networkQuality: networkQuality
            }
        }
        set {
            let value = min(100, max(0, newValue))
            switch dimension {
            case .reset: reset = value
            case .handshake: handshake = value
            case .timeout: timeout = value
            case .invalidResponse: invalidResponse = value
            case .networkQuality: networkQuality = value
            }
        }
    }

    public var maximum: Int { Dimension.allCases.map { self[$0] }.max() ?? 0 }
}

/// Who sent a packet cited as evidence, by role on the flow.
public enum Actor: String, Sendable, Codable {
    /// The flow's originator: the gateway on an upstream leg, the client on a client leg.
    case originator
    /// The flow's responder: the upstream (or the gateway, on a client leg).
    case responder
    /// A router or host reporting an ICMP error.
    case network
}

/// One packet that proves part of a finding.
public struct Evidence: Sendable, Equatable {
    public var packet: PacketRef
    public var actor: Actor
    /// What the packet was, e.g. "SYN", "RST", "POST /orders", "TLS alert unknown_ca".
    public var what: String
    /// Time since the flow's first packet.
    public var sinceFlowStart: Int64
    /// Time since the request it concerns, when there is one.
    public var sinceRequest: Int64?

    public init(_ packet: PacketRef, _ actor: Actor, _ what: String, flowStart: Timestamp, request: Timestamp? = nil) {
        self.packet = packet
        self.actor = actor
        self.what = what
        sinceFlowStart = packet.time - flowStart
        sinceRequest = request.map { packet.time - $0 }
    }
}

/// Numbers a finding measured, which the cross-flow inference reads.
public struct Measurements: Sendable, Equatable {
    /// Idle time of a reused connection before the request.
    public var idleBefore: Int64?
    /// Upstream FIN/RST time minus request time (negative: the upstream closed first).
    public var closeAfterRequest: Int64?
    /// How long the gateway waited before it gave up (after the request or the first SYN).
    public var waited: Int64?
    /// SYN send times relative to the first SYN.
    public var synTimes: [Int64]?
    public var missingBytes: Int64?
    public var headerBytes: Int?
    public var status: Int?

    public init() {}
}

/// One verdict: a failed exchange or connection attempt, or a quality problem, with a stable
/// code, the RFC 9209 Proxy-Status error type when one fits, and the packets that prove it.
public struct Finding: Sendable, Equatable {
    /// Stable snake_case verdict code, e.g. `keepalive_race`.
    public var code: String
    /// RFC 9209 §2.3 error type, e.g. `connection_terminated`.
    public var proxyStatus: String?
    public var severity: Severity
    /// The dimension this finding scores, and by how much.
    public var dimension: Dimension
    public var score: Int
    /// Which rule produced it.
    public var rule: String
    /// When it happened (the decisive packet).
    public var time: Timestamp
    /// The HTTP exchange it concerns (index on the connection), if any.
    public var exchange: Int?
    public var method: String?
    public var target: String?
    /// A finer reason inside the code, e.g. `bad_header_line` for `invalid_response`.
    public var reason: String?
    /// One sentence for a human.
    public var summary: String
    public var evidence: [Evidence]
    public var measurements = Measurements()

    public init(
        code: String, proxyStatus: String?, severity: Severity, dimension: Dimension, score: Int, rule: String,
        time: Timestamp, summary: String, evidence: [Evidence]
    ) {
        self.code = code
        self.proxyStatus = proxyStatus
        self.severity = severity
        self.dimension = dimension
        self.score = score
        self.rule = rule
        self.time = time
        self.summary = summary
        self.evidence = evidence
    }

    /// The same finding, about one HTTP exchange.
    func about(_ exchange: HTTPExchange) -> Finding {
        var copy = self
        copy.exchange = exchange.index
        copy.method = exchange.method
        copy.target = exchange.target
        return copy
    }

    func measured(_ update: (inout Measurements) -> Void) -> Finding {
        var copy = self
        update(&copy.measurements)
        return copy
    }
}

/// Everything the diagnosis says about one flow.
public struct FlowDiagnosis: Sendable, Equatable {
    public var scores = Scores()
    public var findings: [Finding] = []

    public init() {}

    public var severity: Severity? { findings.map(\.severity).max() }
    /// Healthy: no finding above `info`.
    public var isHealthy: Bool { (severity ?? .info) == .info }
}
