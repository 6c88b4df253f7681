import CapdiagFlow
import CapdiagProtocols
import CapdiagWire

/// The capture-wide diagnosis: roles, per-upstream ranked causes with fixes, inferred
/// timeouts, retries, and the client-side failures joined to the upstream attempts behind
/// them. Encoded as the `diagnosis` object of the JSON summary (docs/json-schema.md).
public struct Conclusions: Sendable, Codable, Equatable {
    /// What the clients saw, first: per gateway listener, requests and failures; with no client
    /// leg in the capture, one entry without a listener counting upstream attempts.
    public var clientImpact: [ClientImpact] = []
    public var thresholds: ThresholdsRecord
    /// Gateway listeners (host:port) found on client legs, and how each was recognised.
    public var gateways: [GatewayRecord] = []
    public var upstreams: [UpstreamConclusion] = []
    public var clientFailures: [ClientFailure] = []
    /// Client-side failures beyond those listed.
    public var clientFailuresNotListed = 0
    public var dnsFailures: [DNSFailure] = []
    /// The most severe verdict in the capture ("none" without any).
    public var worstSeverity: String

    /// Upstreams without failures whose connections notably (≥ 5 %) needed retransmitted SYNs:
    /// nothing failed, but each such request waited about a second.
    public var handshakeNotes: [String] {
        upstreams.filter { $0.causes.isEmpty }.compactMap { upstream in
            let slow = upstream.synRetransmittedConnections
            let answered = upstream.answeredConnections
            guard slow > 0, answered > 0, slow * 20 >= answered else { return nil }
            return "\(upstream.upstream): \(slow) of \(answered) connections (\(slow * 100 / answered)%) were accepted only after retransmitted SYNs, about a second of delay each."
        }
    }
    /// Attempts not kept for cross-flow inference because the limit was reached.
    public var attemptsNotKept = 0
    /// Flows to servers beyond the tracked maximum (50,000 servers).
    public var flowsToUntrackedServers = 0
}

public struct ClientImpact: Sendable, Codable, Equatable {
    /// The gateway listener (host:port); nil when only the upstream leg was captured.
    @OptionalEndpointField public var listener: String?
    public var requests = 0
    /// Requests answered 502/503/504, never answered, or cut short.
    public var failed = 0
    public var statuses: [String: Int] = [:]
    public var unanswered = 0
    public var cut = 0
    /// Answers that were no valid HTTP (a gateway relaying an upstream's garbage).
    public var invalid = 0
    /// Without a client leg: upstream attempts, and how many failed.
    public var upstreamAttempts: Int?
    public var upstreamFailures: Int?

    public init(listener: String?) { self.listener = listener }

    /// One line: "10.0.0.1:8080: 8 of 30 client requests failed (502 ×8)".
    public var sentence: String {
        guard let listener else {
            // Said as what was not found, not as a fact about the capture: a gateway whose
            // client requests could not be matched to its upstream attempts is not recognised.
            return "No gateway recognised (no client request matched to an upstream attempt), so client impact is not known: \(upstreamFailures ?? 0) of \(counted(upstreamAttempts ?? 0, "upstream attempt")) failed."
        }
        guard failed > 0 else { return "Client impact at \(listener): none of \(requests) client requests failed." }
        var parts = statuses.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }
        if unanswered > 0 { parts.append("no answer ×\(unanswered)") }
        if cut > 0 { parts.append("cut short ×\(cut)") }
        if invalid > 0 { parts.append("invalid answer ×\(invalid)") }
        return "Client impact at \(listener): \(failed) of \(requests) client requests failed (\(parts.joined(separator: ", ")))."
    }
}

public struct ThresholdsRecord: Sendable, Codable, Equatable {
    public var connectTimeoutNs: Int64
    public var readTimeoutNs: Int64
    public var maxHeaderSize: Int
}

public struct GatewayRecord: Sendable, Codable, Equatable {
    @EndpointField public var listener: String
    /// "override", "request_match" (same requests seen on both legs) or "nested_attempts".
    public var how: String
    public var clientRequests: Int
}

public struct UpstreamConclusion: Sendable, Codable, Equatable {
    @EndpointField public var upstream: String
    public var flows: Int
    public var requests: Int
    public var failures: Int
    /// Failures per 1,000 requests or attempts (0–1000): JSON holds integers only.
    public var failureRatePerMille: Int
    public var causes: [Cause]
    public var inferences: [Inference]
    /// One paragraph for the reader: what failed, how often, since when, and what to change.
    public var conclusion: String
    /// Answers by status (HTTP/1 and HTTP/2), and the time to the first response byte of
    /// the requests kept in detail (up to 2,000): what makes a healthy capture evidence.
    public var statuses: [String: Int] = [:]
    public var latencyP50Ns: Int64?
    public var latencyP90Ns: Int64?
    public var latencyP99Ns: Int64?
    /// Connections it accepted (SYN-ACK), and of those, how many only after retransmitted SYNs.
    public var answeredConnections: Int = 0
    public var synRetransmittedConnections: Int = 0
    /// Attempts and failures over time (at most 60 buckets): the timeline's successes.
    public var activity: ActivityRecord?

    /// Never answered a connection attempt: not healthy, whatever its verdicts.
    public var neverAnswered: Bool { answeredConnections == 0 && flows > 0 }
}

public struct Cause: Sendable, Codable, Equatable {
    public var code: String
    public var proxyStatus: String?
    public var family: String
    public var title: String
    public var severity: String
    public var count: Int
    /// Share of this upstream's failures, per 1,000 (0–1000).
    public var sharePerMille: Int

    /// The share as a whole percentage, for sentences.
    public var sharePercent: Int { (sharePerMille + 5) / 10 }
    public var first: String
    public var last: String
    /// "high" when the wire proves it; "medium" when part of it is inferred.
    public var confidence: String
    public var fix: String
    /// A few flows that show it: id, frames, one-line summary.
    public var examples: [CauseExample]
    /// When each failure happened (the first 200), for timelines.
    public var times: [String]
}

public struct CauseExample: Sendable, Codable, Equatable {
    public var flow: Int
    public var firstFrame: Int
    public var lastFrame: Int
    public var time: String
    public var summary: String
}

public struct Inference: Sendable, Codable, Equatable {
    /// `upstream_keepalive_timeout`, `gateway_read_timeout`, `gateway_connect_timeout`, `retries`.
    public var kind: String
    public var valueNs: Int64?
    public var count: Int
    public var text: String
}

public struct ClientFailure: Sendable, Codable, Equatable {
    public var time: String
    public var clientFlow: Int
    @EndpointField public var client: String
    @EndpointField public var gateway: String
    public var method: String?
    public var target: String?
    /// 502/503/504, or nil when the gateway closed without answering.
    public var status: Int?
    public var upstreamAttempts: [LinkedAttempt]
    public var explanation: String
}

public struct LinkedAttempt: Sendable, Codable, Equatable {
    public var flow: Int
    @EndpointField public var upstream: String
    public var code: String?
    public var status: Int?
    public var firstFrame: Int
    public var lastFrame: Int
    public var offsetNs: Int64
    /// "request_id", "request_match" or "time_window".
    public var matchedBy: String
    public var summary: String?
}

public struct DNSFailure: Sendable, Codable, Equatable {
    public var name: String
    public var rcode: String
    public var count: Int
    public var firstFrame: Int
    public var time: String
}
