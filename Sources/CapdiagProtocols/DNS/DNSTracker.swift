import CapdiagWire

/// One DNS query and its answer.
public struct DNSTransaction: Sendable, Equatable {
    public var client: String
    public var server: String
    public var id: UInt16
    public var name: String
    public var queryType: UInt16
    public var queryFrame: Int
    public var queryTime: Timestamp
    public var responseFrame: Int?
    public var latency: Int64?
    public var rcode: String?
    public var answers: [String]
    public var truncated: Bool

    /// NXDOMAIN, SERVFAIL, REFUSED and the like, or no answer at all.
    public var isProblem: Bool { rcode.map { $0 != "NOERROR" } ?? true }
}

/// The answer for a name changed during the capture.
public struct DNSAnswerChange: Sendable, Equatable {
    public var name: String
    public var queryType: UInt16
    public var before: [String]
    public var after: [String]
    public var frame: Int
    public var time: Timestamp
}

/// Matches DNS queries with their responses by transaction ID and 5-tuple, counts rcodes,
/// finds unanswered queries, and notices answers for a name that change. Memory is bounded:
/// pending queries, remembered answers and kept transactions all have caps.
public struct DNSTracker: Sendable {
    public static let maximumPending = 10_000
    public static let maximumNames = 10_000
    public static let keep = 50
    /// A query unanswered this long is counted as unanswered (resolvers retry after 1–5 s).
    public static let answerTimeout: Int64 = 10_000_000_000

    public private(set) var queries = 0
    public private(set) var responses = 0
    public private(set) var unanswered = 0
    public private(set) var unmatchedResponses = 0
    public private(set) var malformed = 0
    public private(set) var rcodes: [String: Int] = [:]
    /// Problem transactions (error rcodes, unanswered), the first `keep`.
    public private(set) var problems: [DNSTransaction] = []
    public private(set) var changes: [DNSAnswerChange] = []

    var pending: [PendingKey: DNSTransaction] = [:]
    var lastAnswers: [NameKey: [String]] = [:]
    var lastExpiry: Timestamp?

    struct PendingKey: Hashable, Sendable {
        var client: String
        var server: String
        var id: UInt16
    }

    struct NameKey: Hashable, Sendable {
        var name: String
        var type: UInt16
    }

    public init() {}

    /// A DNS message between `source` and `destination` (address and port, as text).
    public mutating func message(_ bytes: [UInt8], source: String, destination: String, frame: Int, time: Timestamp) {
        guard let message = DNSMessage(bytes) else {
            malformed += 1
            return
        }
        expire(before: time)
        if !message.isResponse {
            queries += 1
            guard pending.count < Self.maximumPending else { return }
            pending[PendingKey(client: source, server: destination, id: message.id)] = DNSTransaction(
                client: source, server: destination, id: message.id, name: message.name, queryType: message.queryType,
                queryFrame: frame, queryTime: time, answers: [], truncated: false)
            return
        }
        responses += 1
        rcodes[message.rcodeName, default: 0] += 1
        guard var transaction = pending.removeValue(forKey: PendingKey(client: destination, server: source, id: message.id))
        else {
            unmatchedResponses += 1
            return
        }
        transaction.responseFrame = frame
        transaction.latency = time - transaction.queryTime
        transaction.rcode = message.rcodeName
        transaction.answers = message.answers
        transaction.truncated = message.truncated
        if transaction.isProblem && problems.count < Self.keep { problems.append(transaction) }
        if message.rcode == 0 && !message.answers.isEmpty && (message.queryType == 1 || message.queryType == 28) {
            let key = NameKey(name: message.name.lowercased(), type: message.queryType)
            let answers = message.answers.sorted()
            if let before = lastAnswers[key], before != answers, changes.count < Self.keep {
                changes.append(
                    DNSAnswerChange(
                        name: message.name, queryType: message.queryType, before: before, after: answers, frame: frame,
                        time: time))
            }
            if lastAnswers[key] != nil || lastAnswers.count < Self.maximumNames { lastAnswers[key] = answers }
        }
    }

    /// The capture ended: every query still waiting is unanswered.
    public mutating func finish() { expire(before: Timestamp(nanoseconds: .max)) }

    /// Looks for late queries at most once a second of capture time.
    private mutating func expire(before now: Timestamp) {
        guard !pending.isEmpty else { return }
        if now.nanoseconds != .max, let lastExpiry, now - lastExpiry < 1_000_000_000 { return }
        lastExpiry = now
        let late = pending.filter { now - $0.value.queryTime >= Self.answerTimeout || now.nanoseconds == .max }
        for (key, transaction) in late.sorted(by: { $0.value.queryFrame < $1.value.queryFrame }) {
            pending[key] = nil
            unanswered += 1
            if problems.count < Self.keep { problems.append(transaction) }
        }
    }
}
