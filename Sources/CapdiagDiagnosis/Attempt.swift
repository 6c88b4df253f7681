import CapdiagFlow
import CapdiagProtocols
import CapdiagWire

/// One request, or one connection attempt that never carried a request, kept across flows so
/// the two legs of a gateway can be joined and retries recognised. Small on purpose: the
/// collector keeps up to `DiagnosisCollector.maximumAttempts` of them.
public struct Attempt: Sendable, Equatable {
    public var flow: Int
    public var originator: Endpoint
    public var responder: Endpoint
    /// The request's first byte, or the first SYN of an attempt without a request.
    public var start: PacketRef
    /// The response's first byte or, without one, the flow's end.
    public var answered: Timestamp?
    public var end: Timestamp
    /// When the failure showed on the wire (its verdict's time); the end without one.
    public var failedAt: Timestamp
    public var lastFrame: Int
    public var method: String?
    public var target: String?
    public var requestIDs: [String] = []
    public var status: Int?
    /// The most severe finding about this attempt, if any.
    public var code: String?
    public var severity: Severity?
    public var summary: String?

    /// Failed as a network or protocol fault (the gateway gets no valid response). A gateway's
    /// own 5xx is not: it is what a client leg shows of a failure behind it.
    public var failed: Bool {
        (severity ?? .info) >= .medium && code != "upstream_application_error" && code != "gateway_error_answer"
    }

    /// A request its client never got an answer to, that counts as a failure: its verdict says
    /// so (medium or above). The client's own abort (it closed too soon for any gateway
    /// timeout) or a capture that ended while the request waited proves nothing (low).
    var unansweredFailure: Bool {
        method != nil && status == nil && answered == nil && (severity ?? .info) >= .medium
    }

    /// The same request by method and target.
    func sameRequest(as other: Attempt) -> Bool {
        method != nil && method == other.method && target == other.target
    }

    /// `inner` may be this request as a proxy forwarded it: the same method and target, or the
    /// target with a leading path cut off, as a prefix-stripping route sends it (nginx
    /// `location /static/ { proxy_pass http://pool/; }` forwards /static/f1 as /f1).
    func forwarded(as inner: Attempt) -> Bool { Self.forwarded(method, target, as: inner.method, inner.target) }

    /// `forwarded(as:)` on the fields alone, so a search over many pairs copies no attempt.
    static func forwarded(_ method: String?, _ target: String?, as innerMethod: String?, _ innerTarget: String?) -> Bool {
        guard let method, method == innerMethod else { return false }
        guard let outerTarget = target, let innerTarget else { return target == innerTarget }
        if outerTarget == innerTarget { return true }
        let outerBytes = outerTarget.utf8, innerBytes = innerTarget.utf8
        // A bare "/" would be a suffix of too many targets to say anything.
        // Bytes, not `hasSuffix` (Unicode-aware and slow: this runs for every overlapping pair).
        guard innerBytes.count >= 2, innerBytes.first == UInt8(ascii: "/"), outerBytes.count > innerBytes.count,
            outerBytes.suffix(innerBytes.count).elementsEqual(innerBytes)
        else { return false }
        let cut = outerBytes.dropLast(innerBytes.count)
        return cut.first == UInt8(ascii: "/") && cut.last != UInt8(ascii: "/")
    }
}

extension Attempt {
    /// The attempts a flow holds: one per HTTP exchange, or one for the connection when no
    /// request went out (a refused or unanswered SYN, a failed TLS handshake, …).
    static func from(_ facts: FlowFacts, _ diagnosis: FlowDiagnosis) -> [Attempt] {
        let worstFor: (Int?) -> Finding? = { exchange in
            diagnosis.findings.filter { $0.exchange == exchange && $0.severity > .info }.max { $0.severity < $1.severity }
        }
        let base = Attempt(
            flow: facts.id, originator: facts.originator, responder: facts.responder, start: facts.syn ?? facts.first,
            answered: nil, end: facts.last.time, failedAt: facts.last.time, lastFrame: facts.last.frame)
        // HTTP/2: one attempt per stream the gateway opened with a request.
        let streams = facts.h2Streams.filter { $0.method != nil }
        if !streams.isEmpty {
            return streams.map { stream in
                var attempt = base
                attempt.start = stream.requestHeaders ?? stream.first
                attempt.answered = stream.responseHeaders?.time
                attempt.method = stream.method
                attempt.target = stream.path
                attempt.requestIDs = stream.requestIDs.map(\.value)
                attempt.status = stream.status
                attempt.end = (stream.serverEnded ?? stream.reset?.packet ?? stream.last).time
                attempt.failedAt = attempt.end
                attempt.lastFrame = stream.last.frame
                if let finding = worstFor(Int(stream.id)) {
                    attempt.code = finding.code
                    attempt.severity = finding.severity
                    attempt.summary = finding.summary
                    attempt.failedAt = finding.time
                }
                return attempt
            }
        }
        let exchanges = (facts.exchanges ?? []).filter { $0.requestStart != nil }
        guard !exchanges.isEmpty else {
            // No request seen (none sent, or the capture lost it): the worst finding of the flow.
            var attempt = base
            let finding = diagnosis.findings.filter { $0.severity > .info }.max { $0.severity < $1.severity }
            attempt.code = finding?.code
            attempt.severity = finding?.severity
            attempt.summary = finding?.summary
            if let finding { attempt.failedAt = finding.time }
            // The request was lost by the capture but the answer was seen: it was answered.
            if let answer = facts.exchanges?.first(where: { $0.status != nil && $0.firstResponseByte != nil }) {
                attempt.status = answer.status
                attempt.answered = answer.firstResponseByte
            }
            return [attempt]
        }
        return exchanges.map { exchange in
            var attempt = base
            if let start = exchange.requestStart { attempt.start = PacketRef(frame: exchange.requestFrame ?? facts.first.frame, time: start) }
            attempt.answered = exchange.firstResponseByte
            attempt.method = exchange.method
            attempt.target = exchange.target
            attempt.requestIDs = exchange.requestIDs.map(\.value)
            attempt.status = exchange.status
            // A connection-level finding (TLS) applies to the exchange when it has none.
            if let finding = worstFor(exchange.index) ?? (exchange.index == 0 ? worstFor(nil) : nil) {
                attempt.code = finding.code
                attempt.severity = finding.severity
                attempt.summary = finding.summary
                attempt.failedAt = finding.time
            }
            return attempt
        }
    }
}
