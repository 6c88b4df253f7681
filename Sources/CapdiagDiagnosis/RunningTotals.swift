import CapdiagFlow
import CapdiagProtocols
import CapdiagWire

/// How a client request at a gateway failed, as the client saw it; nil when it did not.
enum ClientOutcome: Equatable {
    case status(Int)
    case unanswered
    case cut
    case invalid
    /// An HTTP/2 stream that failed though its status may say 200: a gRPC error status, a
    /// reset or cut stream (the key names it, e.g. "grpc-status 14").
    case stream(String)

    /// What a failed HTTP/2 stream is called, by its verdict code.
    static let streamFailures: [String: String] = [
        "grpc_unavailable": "gRPC status 14 UNAVAILABLE", "grpc_internal": "gRPC status 13 INTERNAL",
        "stream_reset_by_upstream": "reset stream", "upstream_closed_with_streams_open": "stream cut by a closed connection",
        "goaway_race": "stream refused by GOAWAY",
    ]

    init?(_ attempt: Attempt) {
        if let status = attempt.status, (502...504).contains(status) {
            self = .status(status)
        } else if let what = Self.streamFailures[attempt.code ?? ""] {
            self = .stream(what)
        } else if attempt.status == nil && attempt.answered == nil {
            // The client's own abort (nginx logs 499) or the capture's end is no failure.
            guard attempt.unansweredFailure else { return nil }
            self = .unanswered
        } else if ["response_cut_short", "response_stalled"].contains(attempt.code ?? "") {
            self = .cut
        } else if attempt.code == "invalid_response" {
            // nginx relays an upstream's garbage as HTTP/0.9: the client got no valid answer.
            self = .invalid
        } else {
            return nil
        }
    }
}

/// Counts since the capture started, per server endpoint: what the Prometheus counters expose.
/// Never windowed (a counter must not go down) and bounded: past `maximumServers` endpoints,
/// new ones are summed in `other`.
public struct RunningTotals: Sendable {
    public static let maximumServers = 10_000

    public struct Server: Sendable, Equatable {
        public var flows = 0
        /// Requests sent to it (HTTP requests seen, whether answered or not).
        public var requests = 0
        /// Verdicts at medium and above, by code.
        public var failures: [String: Int] = [:]
        /// Requests that failed as a client of this server saw it (502/503/504, no answer, cut
        /// short, invalid): counted for every server, shown for gateway listeners.
        public var clientFailures = 0
        /// Seen from its SYN or answering requests: a real server.
        public var confirmed = false

        mutating func absorb(_ other: Server) {
            flows += other.flows
            requests += other.requests
            failures.merge(other.failures, uniquingKeysWith: +)
            clientFailures += other.clientFailures
            confirmed = confirmed || other.confirmed
        }
    }

    public private(set) var servers: [Endpoint: Server] = [:]
    /// Servers beyond the cap, summed.
    public private(set) var other = Server()

    public init() {}

    public mutating func add(_ facts: FlowFacts, _ diagnosis: FlowDiagnosis) {
        var server = Server()
        server.flows = 1
        // Counted from the exchanges themselves: building the attempts again (their strings)
        // for every flow cost more than the rest of the counting.
        // The gateway's 502/503/504 from every answer on the connection (a kept-alive connection
        // keeps only some exchanges in detail), the other failures from the attempts.
        let statuses = facts.h2?.statusCounts ?? facts.statusCounts
        let gatewayErrors = (502...504).reduce(0) { $0 + (statuses[$1] ?? 0) }
        if !diagnosis.isHealthy || gatewayErrors > 0 || facts.exchanges?.contains(where: { $0.firstResponseByte == nil }) == true
            || !facts.h2Streams.isEmpty
        {
            let others = Attempt.from(facts, diagnosis).filter { attempt in
                guard attempt.method != nil, let outcome = ClientOutcome(attempt) else { return false }
                if case .status = outcome { return false }
                return true
            }.count
            server.clientFailures = others + gatewayErrors
        }
        server.requests = facts.requestCount
        for finding in diagnosis.findings where finding.severity >= .medium { server.failures[finding.code, default: 0] += 1 }
        server.confirmed = !facts.rolesInferred || facts.exchanges?.isEmpty == false || facts.h2 != nil
        if servers[facts.responder] != nil || servers.count < Self.maximumServers {
            servers[facts.responder, default: Server()].absorb(server)
        } else {
            other.absorb(server)
        }
    }
}
