import CapdiagFlow
import CapdiagProtocols
import CapdiagWire

public struct DNSTransactionRecord: Codable, Sendable, Equatable {
    @EndpointField public var client: String
    @EndpointField public var server: String
    public var id: Int
    public var name: String
    public var queryType: Int
    public var queryFrame: Int
    public var queryTime: String
    public var responseFrame: Int?
    public var latencyNs: Int64?
    /// Absent when no response came.
    public var rcode: String?
    public var answers: [String]
    public var truncated: Bool
}

public struct DNSAnswerChangeRecord: Codable, Sendable, Equatable {
    public var name: String
    public var queryType: Int
    public var before: [String]
    public var after: [String]
    public var frame: Int
    public var time: String
}

/// DNS seen in the capture (UDP in the summary; DNS over TCP per flow).
public struct DNSRecord: Codable, Sendable, Equatable {
    public var queries: Int
    public var responses: Int
    public var unanswered: Int
    public var unmatchedResponses: Int
    public var malformed: Int
    public var rcodes: [String: Int]
    /// Error responses and unanswered queries (the first 50).
    public var problems: [DNSTransactionRecord]
    /// Answers for the same name that changed (the first 50).
    public var answerChanges: [DNSAnswerChangeRecord]

    public init(_ tracker: DNSTracker) {
        queries = tracker.queries
        responses = tracker.responses
        unanswered = tracker.unanswered
        unmatchedResponses = tracker.unmatchedResponses
        malformed = tracker.malformed
        rcodes = tracker.rcodes
        problems = tracker.problems.map { t in
            DNSTransactionRecord(
                client: t.client, server: t.server, id: Int(t.id), name: t.name, queryType: Int(t.queryType),
                queryFrame: t.queryFrame, queryTime: t.queryTime.iso8601, responseFrame: t.responseFrame,
                latencyNs: t.latency, rcode: t.rcode, answers: t.answers, truncated: t.truncated)
        }
        answerChanges = tracker.changes.map { c in
            DNSAnswerChangeRecord(
                name: c.name, queryType: Int(c.queryType), before: c.before, after: c.after, frame: c.frame,
                time: c.time.iso8601)
        }
    }
}
