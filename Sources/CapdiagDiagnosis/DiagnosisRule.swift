import CapdiagFlow
import CapdiagProtocols
import CapdiagWire

/// Gateway settings the verdicts are measured against, with defaults that fit nginx.
public struct DiagnosisOptions: Sendable, Equatable {
    /// nginx `proxy_connect_timeout` (60 s by default), HAProxy `timeout connect`.
    public var connectTimeout: Int64 = 60_000_000_000
    /// nginx `proxy_read_timeout` (60 s), HAProxy `timeout server`.
    public var readTimeout: Int64 = 60_000_000_000
    /// nginx `proxy_buffer_size`: one memory page, 4 KiB on x86-64 Linux. A response header
    /// section larger than this is refused with "upstream sent too big header".
    public var maxHeaderSize = 4096

    public init() {}
}

/// A diagnosis rule: a small value that reads one flow's facts and names what went wrong.
/// Rules run in the order of `Diagnoser.rules`; for one HTTP exchange only the first rule's
/// finding is kept, so a more specific rule (keep-alive race) comes before a general one
/// (upstream reset).
public protocol DiagnosisRule: Sendable {
    static var id: String { get }
    func evaluate(_ facts: FlowFacts, options: DiagnosisOptions) -> [Finding]
}

extension DiagnosisRule {
    var id: String { Self.id }

    /// A finding from this rule, with the evidence's times made relative to the flow.
    func finding(
        _ code: String, proxyStatus: String?, _ severity: Severity, _ dimension: Dimension, score: Int,
        at time: Timestamp, _ summary: String, evidence: [Evidence]
    ) -> Finding {
        Finding(
            code: code, proxyStatus: proxyStatus, severity: severity, dimension: dimension, score: score, rule: Self.id,
            time: time, summary: summary, evidence: evidence)
    }
}

/// Runs the rules on a flow and scores it.
public struct Diagnoser: Sendable {
    /// The rules, most specific first.
    public static let rules: [any DiagnosisRule] = [
        DestinationUnavailableRule(),
        ConnectionRefusedRule(),
        ConnectionTimeoutRule(),
        SlowHandshakeRule(),
        TLSProtocolMismatchRule(),
        TLSAlertRule(),
        TLSHandshakeStalledRule(),
        HTTP2ProtocolErrorRule(),
        HTTP2GoAwayRaceRule(),
        HTTP2StreamResetRule(),
        HTTP2ClosedWithStreamsOpenRule(),
        GRPCStatusRule(),
        HTTP2FlowControlStallRule(),
        KeepAliveRaceRule(),
        ResponseHeaderTooLargeRule(),
        InvalidResponseRule(),
        ResponseStalledRule(),
        ResponseCutShortRule(),
        UpstreamHungUpRule(),
        ResponseTimeoutRule(),
        UnansweredRequestRule(),
        UpstreamErrorStatusRule(),
        ConnectionClosedBeforeRequestRule(),
        IdleCloseRule(),
        NetworkQualityRule(),
    ]

    public var options: DiagnosisOptions

    public init(options: DiagnosisOptions = DiagnosisOptions()) { self.options = options }

    /// Rules about HTTP/1 messages: they say nothing about an HTTP/2 connection (its streams
    /// have rules of their own), whatever its bytes look like to them.
    static let http1Only: Set<String> = [
        KeepAliveRaceRule.id, UpstreamHungUpRule.id, ResponseStalledRule.id, ResponseCutShortRule.id, InvalidResponseRule.id,
        ResponseHeaderTooLargeRule.id, ResponseTimeoutRule.id, UnansweredRequestRule.id, UpstreamErrorStatusRule.id,
        IdleCloseRule.id,
    ]

    public func diagnose(_ facts: FlowFacts) -> FlowDiagnosis {
        var diagnosis = FlowDiagnosis()
        var decidedExchanges = Set<Int>()
        for rule in Self.rules {
            if facts.http2 && Self.http1Only.contains(rule.id) { continue }
            for finding in rule.evaluate(facts, options: options) {
                if let exchange = finding.exchange, finding.dimension != .networkQuality {
                    guard decidedExchanges.insert(exchange).inserted else { continue }
                }
                diagnosis.findings.append(finding)
                diagnosis.scores[finding.dimension] = max(diagnosis.scores[finding.dimension], finding.score)
            }
        }
        return diagnosis
    }
}

/// Text helpers shared by the rules.
enum Phrase {
    /// A duration readable at any scale: "0.21 ms", "12.4 ms", "1.068 s".
    static func duration(_ nanoseconds: Int64) -> String { formatDuration(nanoseconds) }

    static func request(_ exchange: HTTPExchange) -> String {
        [exchange.method, exchange.target].compactMap { $0 }.joined(separator: " ").nonEmpty
            ?? (exchange.requestCut ? "a request (its head incomplete in the capture)" : "the request")
    }
}

extension String {
    var nonEmpty: String? { isEmpty ? nil : self }
}
