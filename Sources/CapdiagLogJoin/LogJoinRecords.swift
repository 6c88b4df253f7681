import CapdiagFlow

/// What joining the gateway's logs to the capture found (`--gateway-log`), as it appears in
/// the JSON summary (`gateway_logs`) and the reports.
public struct GatewayLogConclusions: Codable, Sendable, Equatable {
    public var files: [LogFileRecord] = []
    /// How the logs' clocks were placed on the capture's, per file.
    public var clocks: [LogClockRecord] = []
    /// Every logged failure (up to `LogJoin.maximumListed`), in log time order.
    public var failures: [LoggedFailureRecord] = []
    public var failuresNotListed = 0
    /// Logged failures by how they compare with the wire.
    public var agree = 0
    public var disagree = 0
    public var noTraffic = 0
    public var unmatched = 0
    /// Lines about requests that did not fail, read for the clock estimate only.
    public var healthyLines = 0

    public init() {}
}

/// One log file as read.
public struct LogFileRecord: Codable, Sendable, Equatable {
    public var path: String
    public var compressed: Bool
    public var lines: Int
    public var entries: Int
    /// Lines not understood (counted, never fatal), and the first few of them.
    public var badLines: Int
    public var badExamples: [String]
    /// Entries per detected format (`nginx_error`, `nginx_access`, `haproxy`, `envoy_text`, …).
    public var formats: [String: Int]
    /// Why reading stopped early (a truncated gzip file), if it did.
    public var problem: String?
}

/// How one log file's times map onto the capture's clock.
public struct LogClockRecord: Codable, Sendable, Equatable {
    public var path: String
    /// The zone the log's times are in: as the lines say, or inferred (the log's wall clock
    /// minus the capture's UTC, rounded to 15 minutes) when they say none.
    public var zoneOffsetSeconds: Int
    public var zoneInferred: Bool
    /// What remains after the zone: the two clocks' difference (log minus capture), the
    /// median over the matches it was estimated from.
    public var skewNs: Int64
    /// How many log lines were matched to flows to estimate it, and how.
    public var matchesUsed: Int
    public var method: String
    /// The log's time resolution (1 s for nginx's error log).
    public var resolutionNs: Int64
}

/// One logged failure and what the wire shows of it.
public struct LoggedFailureRecord: Codable, Sendable, Equatable {
    public var file: String
    public var line: Int
    public var gateway: String
    /// The log line as written (at most 400 characters).
    public var raw: String
    /// When it happened on the capture's clock (the log time with zone and skew removed).
    public var time: String?
    /// The gateway's own words: nginx's message, HAProxy's termination state, Envoy's flags.
    public var words: String?
    public var status: Int?
    @OptionalEndpointField public var upstream: String?
    /// `four_tuple` (HAProxy `%bi:%bp`, Envoy upstream local address), `request_id`,
    /// `upstream_and_time`, or nil when no flow matched.
    public var matchedBy: String?
    public var flow: Int?
    /// The gateway's side and the upstream's side of the matched connection.
    @OptionalEndpointField public var gatewaySide: String?
    @OptionalEndpointField public var upstreamSide: String?
    /// Community ID v1 of the matched connection.
    public var communityId: String?
    public var verdict: String?
    public var verdictSeverity: String?
    public var verdictSummary: String?
    /// What the log's words stand for, as verdict codes (the vocabulary; may be empty).
    public var loggedAs: [String]
    /// `agrees`, `disagrees`, `no_traffic` (the gateway sent nothing: no packet to that
    /// upstream around then) or `unmatched` (traffic, but no flow that fits).
    public var agreement: String
    /// Why, in a sentence: what each side says and which evidence is stronger.
    public var note: String
}
