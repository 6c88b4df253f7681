import CapdiagFlow
import CapdiagProtocols
import CapdiagWire

/// `HOST` or `HOST:PORT` (IPv6 as `[ADDR]:PORT`) from `--upstream` / `--gateway`.
public struct EndpointPattern: Sendable, Equatable {
    public var host: String
    public var port: UInt16?

    public init?(_ text: String) {
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if rest.isEmpty { port = nil } else if rest.hasPrefix(":"), let value = UInt16(rest.dropFirst()) { port = value } else { return nil }
        } else if text.filter({ $0 == ":" }).count == 1, let colon = text.firstIndex(of: ":") {
            host = String(text[..<colon])
            guard let value = UInt16(text[text.index(after: colon)...]) else { return nil }
            port = value
        } else {
            host = text
            port = nil
        }
        if host.isEmpty { return nil }
    }

    public func matches(_ endpoint: Endpoint) -> Bool {
        endpoint.address.description == host && (port.map { $0 == endpoint.port } ?? true)
    }
}

/// Collects every flow's verdicts as flows end and draws the capture-wide conclusions.
/// Memory is bounded: counts per server endpoint, a few examples per cause, and attempts for
/// joining the legs and finding retries — failed ones (and 5xx or unanswered requests) up to
/// `maximumNotableAttempts`, the others in a ring of the newest `maximumRecentAttempts`, so a
/// long live capture keeps its recent context (about 400 bytes per attempt).
public struct DiagnosisCollector: Sendable {
    public static let maximumNotableAttempts = 50_000
    public static let maximumServers = 50_000
    public static let maximumRecentAttempts = 100_000
    static let examplesPerCause = 5
    static let timesPerCause = 200
    static let samples = 2_000

    struct CauseTally: Sendable {
        var count = 0
        var proxyStatus: String?
        var severity = Severity.info
        var first: Timestamp
        var last: Timestamp
        var examples: [CauseExample] = []
        var measured: [Int64] = []
        var reasons: [String: Int] = [:]
        var times: [Timestamp] = []
    }

    struct ServerTally: Sendable {
        var flows = 0
        var requests = 0
        var attempts = 0
        var causes: [String: CauseTally] = [:]
        /// Idle times before a reuse that got an answer, and the longest.
        var longestAnsweredReuse: Int64?
        var idleCloses: [Int64] = []
        var firstSeen: Timestamp
        var lastSeen: Timestamp
        /// A connection to it was seen from its SYN, or it answered requests: a real server,
        /// not the guessed responder of a stray mid-stream packet.
        var confirmed = false
        /// Connections it accepted (a SYN-ACK, or picked up mid-stream with its bytes), and of
        /// those, how many needed retransmitted SYNs first (about a second of delay each).
        var answered = 0
        var slowHandshakes = 0
    }

    public let options: DiagnosisOptions
    public var upstreamOverrides: [EndpointPattern]
    public var gatewayOverrides: [EndpointPattern]
    var servers: [Endpoint: ServerTally] = [:]
    var notableAttempts: [Attempt] = []
    var recentAttempts: [Attempt] = []
    /// Where the next recent attempt goes once the ring is full.
    var recentNext = 0
    var attemptsNotKept = 0
    var serversNotTracked = 0
    public private(set) var worst: Severity?

    public init(options: DiagnosisOptions, upstreams: [EndpointPattern] = [], gateways: [EndpointPattern] = []) {
        self.options = options
        upstreamOverrides = upstreams
        gatewayOverrides = gateways
    }

    /// Counts of findings at or above `low` per code, for the live status line.
    public var flaggedByCode: [String: Int] {
        var counts: [String: Int] = [:]
        for server in servers.values {
            for (code, tally) in server.causes where tally.severity >= .medium { counts[code, default: 0] += tally.count }
        }
        return counts
    }

    public mutating func add(_ facts: FlowFacts, _ diagnosis: FlowDiagnosis) {
        if let severity = diagnosis.severity { worst = max(worst ?? severity, severity) }
        let flowAttempts = Attempt.from(facts, diagnosis)
        // A scan or a client capture can reach many thousands of servers: past the cap, new
        // servers are counted, not tracked.
        guard servers[facts.responder] != nil || servers.count < Self.maximumServers else {
            serversNotTracked += 1
            return
        }
        // Updated in place: a copy out of the dictionary would copy its sample arrays per flow.
        Self.count(facts, diagnosis, attempts: flowAttempts.count,
            into: &servers[facts.responder, default: ServerTally(firstSeen: facts.first.time, lastSeen: facts.last.time)])
        for attempt in flowAttempts { keep(attempt) }
    }

    private static func count(_ facts: FlowFacts, _ diagnosis: FlowDiagnosis, attempts: Int, into server: inout ServerTally) {
        server.flows += 1
        server.attempts += attempts
        if !facts.rolesInferred || facts.exchanges?.isEmpty == false { server.confirmed = true }
        if facts.synAck != nil || (facts.syn == nil && facts.resp.packets > 0) { server.answered += 1 }
        if facts.synAck != nil && facts.synRetransmitCount > 0 { server.slowHandshakes += 1 }
        server.lastSeen = max(server.lastSeen, facts.last.time)
        for exchange in facts.exchanges ?? [] where exchange.requestStart != nil {
            server.requests += 1
            if exchange.index > 0, exchange.firstResponseByte != nil, let idle = exchange.idleBefore {
                server.longestAnsweredReuse = max(server.longestAnsweredReuse ?? idle, idle)
            }
        }
        for finding in diagnosis.findings {
            if finding.code == "upstream_idle_close", let idle = finding.measurements.idleBefore, server.idleCloses.count < Self.samples {
                server.idleCloses.append(idle)
            }
            guard finding.severity >= .medium else { continue }
            count(finding, facts, into: &server.causes[finding.code, default: CauseTally(first: finding.time, last: finding.time)])
        }
    }

    private static func count(_ finding: Finding, _ facts: FlowFacts, into tally: inout CauseTally) {
        tally.count += 1
        tally.proxyStatus = finding.proxyStatus
        tally.severity = max(tally.severity, finding.severity)
        tally.first = min(tally.first, finding.time)
        tally.last = max(tally.last, finding.time)
        if let reason = finding.reason { tally.reasons[reason, default: 0] += 1 }
        if tally.times.count < Self.timesPerCause { tally.times.append(finding.time) }
        let measured = finding.measurements.waited ?? finding.measurements.idleBefore
        if let measured, tally.measured.count < Self.samples { tally.measured.append(measured) }
        if tally.examples.count < Self.examplesPerCause {
            let frames = finding.evidence.map(\.packet.frame)
            tally.examples.append(
                CauseExample(
                    flow: facts.id, firstFrame: frames.min() ?? facts.first.frame, lastFrame: frames.max() ?? facts.last.frame,
                    time: finding.time.iso8601, summary: finding.summary))
        }
    }

    private mutating func keep(_ attempt: Attempt) {
        let notable = attempt.failed || (attempt.status.map { (500...599).contains($0) } ?? (attempt.method != nil))
        if notable {
            if notableAttempts.count < Self.maximumNotableAttempts { notableAttempts.append(attempt) } else { attemptsNotKept += 1 }
        } else if recentAttempts.count < Self.maximumRecentAttempts {
            recentAttempts.append(attempt)
        } else {
            recentAttempts[recentNext] = attempt
            recentNext = (recentNext + 1) % Self.maximumRecentAttempts
            attemptsNotKept += 1
        }
    }

    // MARK: - Conclusions

    public func conclude(dns: DNSTracker? = nil) -> Conclusions {
        let byTime = (notableAttempts + recentAttempts).sorted { $0.start.time < $1.start.time }
        let listeners = findListeners(byTime)
        var conclusions = Conclusions(
            thresholds: ThresholdsRecord(
                connectTimeoutNs: options.connectTimeout, readTimeoutNs: options.readTimeout, maxHeaderSize: options.maxHeaderSize),
            worstSeverity: worst?.name ?? "none")
        conclusions.attemptsNotKept = attemptsNotKept
        conclusions.flowsToUntrackedServers = serversNotTracked
        conclusions.gateways = listeners.sorted { $0.key < $1.key }.map { endpoint, how in
            GatewayRecord(listener: endpoint.description, how: how, clientRequests: servers[endpoint]?.requests ?? 0)
        }
        let upstreamAttempts = byTime.filter { listeners[$0.responder] == nil }
        let (links, notListed, connectWaits) = linkClientFailures(byTime.filter { listeners[$0.responder] != nil }, upstreamAttempts)
        conclusions.clientFailures = links
        conclusions.clientFailuresNotListed = notListed
        let retries = findRetries(upstreamAttempts)
        for (endpoint, server) in servers where listeners[endpoint] == nil && isUpstream(endpoint) && server.confirmed {
            guard var conclusion = conclude(endpoint, server, retries) else { continue }
            if let cluster = Cluster(connectWaits[endpoint.description] ?? []) {
                conclusion.inferences.append(
                    Inference(
                        kind: "gateway_connect_timeout", valueNs: cluster.median, count: cluster.count,
                        text: "the gateway answered clients \(Phrase.duration(cluster.median)) after their request when its connection attempts to \(endpoint) went unanswered: its connect timeout (nginx proxy_connect_timeout, HAProxy timeout connect)"))
            }
            conclusions.upstreams.append(conclusion)
        }
        conclusions.upstreams.sort { ($0.failures, $1.upstream) > ($1.failures, $0.upstream) }
        if let dns { conclusions.dnsFailures = dnsFailures(dns) }
        return conclusions
    }

    private func isUpstream(_ endpoint: Endpoint) -> Bool {
        upstreamOverrides.isEmpty || upstreamOverrides.contains { $0.matches(endpoint) }
    }

    /// Gateway listeners: named with `--gateway`, or found because the same request (method
    /// and target) went out to another server while it was pending on this one, or because
    /// failed attempts by another host began while this one's requests waited for an answer.
    func findListeners(_ byTime: [Attempt]) -> [Endpoint: String] {
        var listeners: [Endpoint: String] = [:]
        for endpoint in servers.keys where gatewayOverrides.contains(where: { $0.matches(endpoint) }) {
            listeners[endpoint] = "override"
        }
        if !gatewayOverrides.isEmpty || !upstreamOverrides.isEmpty {
            // With overrides, every server not named as an upstream is a gateway listener
            // only if named; nothing is guessed.
            return listeners
        }
        var votes: [Endpoint: (match: Int, nested: Int)] = [:]
        for (index, outer) in byTime.enumerated() {
            let until = outer.answered ?? outer.end
            var matched = false
            var nested = false
            var next = index + 1
            while next < byTime.count, byTime[next].start.time <= until {
                let inner = byTime[next]
                next += 1
                guard inner.responder != outer.responder, inner.originator.address != outer.responder.address || inner.originator.port != outer.responder.port else { continue }
                if inner.flow == outer.flow { continue }
                if outer.sameRequest(as: inner) { matched = true }
                if inner.method == nil && inner.failed && inner.originator.address != outer.originator.address
                    && (outer.status.map { (502...504).contains($0) } ?? true)
                {
                    nested = true
                }
            }
            if matched || nested {
                var vote = votes[outer.responder] ?? (0, 0)
                if matched { vote.match += 1 } else { vote.nested += 1 }
                votes[outer.responder] = vote
            }
        }
        for (endpoint, vote) in votes {
            let attempts = servers[endpoint]?.attempts ?? 0
            // Most of a listener's requests have an upstream counterpart.
            if vote.match > 0 && vote.match * 2 >= attempts {
                listeners[endpoint] = "request_match"
            } else if vote.match + vote.nested > 0 && (vote.match + vote.nested) * 2 >= attempts {
                listeners[endpoint] = "nested_attempts"
            }
        }
        // A listener's own requests cannot be inner attempts of another listener.
        return listeners
    }

    /// Joins each 502/503/504 (or unanswered request) on a client leg to the upstream
    /// attempts made while it waited.
    func linkClientFailures(_ clientAttempts: [Attempt], _ upstream: [Attempt]) -> ([ClientFailure], Int, [String: [Int64]]) {
        var failures: [ClientFailure] = []
        var notListed = 0
        // How long the gateway took to answer a client whose upstream attempts all timed out
        // connecting: its connect timeout, per upstream.
        var connectWaits: [String: [Int64]] = [:]
        for client in clientAttempts {
            let failedStatus = client.status.map { (502...504).contains($0) } ?? false
            guard failedStatus || (client.status == nil && client.method != nil) else { continue }
            guard failures.count < 1_000 else {
                notListed += 1
                continue
            }
            let from = client.start.time + (-1_000_000)
            let until = (client.answered ?? client.end) + 1_000_000
            let window = upstream.filter { $0.start.time >= from && $0.start.time <= until }
            var linked: [LinkedAttempt] = []
            for attempt in window {
                let matchedBy: String
                if !client.requestIDs.isEmpty && !Set(client.requestIDs).isDisjoint(with: attempt.requestIDs) {
                    matchedBy = "request_id"
                } else if client.sameRequest(as: attempt) {
                    matchedBy = "request_match"
                } else if attempt.method == nil && attempt.failed {
                    matchedBy = "time_window"
                } else {
                    continue
                }
                linked.append(
                    LinkedAttempt(
                        flow: attempt.flow, upstream: attempt.responder.description, code: attempt.code, status: attempt.status,
                        firstFrame: attempt.start.frame, lastFrame: attempt.lastFrame, offsetNs: attempt.start.time - client.start.time,
                        matchedBy: matchedBy, summary: attempt.summary))
            }
            if let answered = client.answered, !linked.isEmpty, linked.allSatisfy({ $0.code == "connection_timeout" }),
                let upstream = linked.first?.upstream
            {
                connectWaits[upstream, default: []].append(answered - client.start.time)
            }
            let request = [client.method, client.target].compactMap { $0 }.joined(separator: " ")
            let answer = client.status.map { "the \($0)" } ?? "the unanswered request"
            let explanation: String
            if let cause = linked.last(where: { $0.code != nil }) ?? linked.last {
                let what = cause.summary ?? (cause.status.map { "the upstream answered \($0)" } ?? "the upstream attempt")
                explanation = "\(answer) for \(request) at \(client.start.time.iso8601) came from upstream \(cause.upstream): \(what) (flow \(cause.flow), frames \(cause.firstFrame)–\(cause.lastFrame))"
                    + (linked.count > 1 ? "; \(linked.count) upstream attempts in all" : "")
            } else {
                explanation = "\(answer) for \(request) at \(client.start.time.iso8601) has no upstream packets at all: the gateway had no live upstream, failed locally, or the upstream leg was not captured"
            }
            failures.append(
                ClientFailure(
                    time: client.start.time.iso8601, clientFlow: client.flow, client: client.originator.description,
                    gateway: client.responder.description, method: client.method, target: client.target, status: client.status,
                    upstreamAttempts: linked, explanation: explanation))
        }
        return (failures, notListed, connectWaits)
    }

    func conclude(_ endpoint: Endpoint, _ server: ServerTally, _ retries: [Endpoint: RetryTally]) -> UpstreamConclusion? {
        var tallies = server.causes
        // Connect timeouts while another connection to the same upstream sits accepted but
        // unanswered: the host's kernel answers, the application does not accept. That is a
        // full listen queue, not a firewall.
        if let timeouts = tallies["connection_timeout"],
            let stuck = tallies["response_timeout"] ?? tallies["request_unanswered"] ?? tallies["tls_handshake_timeout"]
        {
            var merged = timeouts
            merged.count += stuck.count
            merged.first = min(timeouts.first, stuck.first)
            merged.last = max(timeouts.last, stuck.last)
            merged.examples = Array((stuck.examples + timeouts.examples).prefix(Self.examplesPerCause))
            merged.times = Array((timeouts.times + stuck.times).sorted().prefix(Self.timesPerCause))
            tallies["listen_queue_overflow"] = merged
            tallies["connection_timeout"] = nil
            tallies["response_timeout"] = nil
            tallies["request_unanswered"] = nil
        }
        let failures = tallies.filter { $0.key != "upstream_application_error" }.values.reduce(0) { $0 + $1.count }
        let applicationErrors = tallies["upstream_application_error"]?.count ?? 0
        let total = failures + applicationErrors
        let inferences = infer(endpoint, server, tallies, retries)
        guard server.requests + server.flows > 0 else { return nil }
        let causes = tallies.map { code, tally -> Cause in
            let info = CauseInfo.of(code)
            var title = info.title
            if let reason = tally.reasons.max(by: { $0.value < $1.value })?.key { title += " (\(reason.replacingUnderscores))" }
            return Cause(
                code: code, proxyStatus: tally.proxyStatus, family: info.family.rawValue, title: title,
                severity: tally.severity.name, count: tally.count,
                share: total > 0 ? Double(tally.count) / Double(total) : 0, first: tally.first.iso8601, last: tally.last.iso8601,
                confidence: code == "listen_queue_overflow" || code == "request_unanswered" ? "medium" : "high",
                fix: sharpenedFix(code, info.fix, inferences), examples: tally.examples,
                times: tally.times.sorted().map(\.iso8601))
        }.sorted { ($0.count, $1.code) > ($1.count, $0.code) }
        let denominator = max(server.attempts, 1)
        return UpstreamConclusion(
            upstream: endpoint.description, flows: server.flows, requests: server.requests, failures: failures,
            failureRate: min(1, Double(failures) / Double(denominator)), causes: causes, inferences: inferences,
            conclusion: paragraph(endpoint, server, causes, failures, inferences), answeredConnections: server.answered,
            synRetransmittedConnections: server.slowHandshakes)
    }

    /// Upstream keep-alive timeout, gateway timeouts and retries, from what recurs across flows.
    func infer(_ endpoint: Endpoint, _ server: ServerTally, _ tallies: [String: CauseTally], _ retries: [Endpoint: RetryTally]) -> [Inference] {
        var inferences: [Inference] = []
        if let cluster = Cluster(server.idleCloses) {
            inferences.append(
                Inference(
                    kind: "upstream_keepalive_timeout", valueNs: cluster.median, count: cluster.count,
                    text: "\(endpoint) closes idle kept-alive connections after about \(Phrase.duration(cluster.median)) (\(cluster.count) connection(s))"))
        } else if let races = tallies["keepalive_race"], let shortest = races.measured.min() {
            let lower = server.longestAnsweredReuse.map { ", and reuses after up to \(Phrase.duration($0)) idle worked" } ?? ""
            inferences.append(
                Inference(
                    kind: "upstream_keepalive_timeout", valueNs: shortest, count: races.count,
                    text: "\(endpoint) had already closed connections idle for \(Phrase.duration(shortest)) or more when the gateway reused them\(lower): its keep-alive timeout is about \(Phrase.duration(shortest)) or less"))
        }
        if let timeouts = tallies["response_timeout"], let cluster = Cluster(timeouts.measured) {
            inferences.append(
                Inference(
                    kind: "gateway_read_timeout", valueNs: cluster.median, count: cluster.count,
                    text: "the gateway gives up \(Phrase.duration(cluster.median)) after sending a request (\(cluster.count) time(s)): its read timeout (nginx proxy_read_timeout, HAProxy timeout server)"))
        }
        if let timeouts = tallies["tls_handshake_timeout"], let cluster = Cluster(timeouts.measured) {
            inferences.append(
                Inference(
                    kind: "gateway_connect_timeout", valueNs: cluster.median, count: cluster.count,
                    text: "the gateway abandons TLS handshakes after \(Phrase.duration(cluster.median)): its connect timeout (nginx proxy_connect_timeout)"))
        }
        if let retries = retries[endpoint], retries.retried > 0 {
            inferences.append(
                Inference(
                    kind: "retries", valueNs: nil, count: retries.retried,
                    text: "the gateway likely retried \(retries.retried) of \(retries.failed) failed attempt(s) at once; \(retries.answered) retry(ies) got an answer, so clients may not have seen those failures"))
        }
        return inferences
    }

    struct RetryTally {
        var failed = 0
        var retried = 0
        var answered = 0
    }

    /// Retries, per upstream that failed: the same request (method and target) sent again
    /// within a second with no other copy in between, or — for an attempt without a request —
    /// a new attempt by the same host within 50 ms when that host had made none in the 50 ms
    /// before (under load every attempt has a neighbour, and timing alone proves nothing).
    /// `byTime` is sorted by start; each lookahead stops at the time window.
    func findRetries(_ byTime: [Attempt]) -> [Endpoint: RetryTally] {
        var tallies: [Endpoint: RetryTally] = [:]
        for (index, attempt) in byTime.enumerated() where attempt.failed {
            var tally = tallies[attempt.responder] ?? RetryTally()
            tally.failed += 1
            let window: Int64 = attempt.method == nil ? 50_000_000 : 1_000_000_000
            var isolated = true
            if attempt.method == nil {
                var back = index - 1
                while back >= 0, attempt.start.time - byTime[back].start.time <= window {
                    if byTime[back].originator.address == attempt.originator.address { isolated = false }
                    back -= 1
                }
            }
            var next = index + 1
            while isolated, next < byTime.count, byTime[next].start.time - attempt.start.time <= window {
                let other = byTime[next]
                next += 1
                // A retry repeats the request, or (for an attempt that never carried one) is the
                // same host's next attempt after this one failed: connections a client opened in
                // parallel, before the failure, are not retries.
                let same = attempt.method == nil ? other.originator.address == attempt.originator.address : other.sameRequest(as: attempt)
                guard same, other.flow != attempt.flow, attempt.method != nil || other.start.time >= attempt.failedAt else { continue }
                tally.retried += 1
                if other.status != nil && !other.failed && !(500...599).contains(other.status ?? 0) { tally.answered += 1 }
                break
            }
            tallies[attempt.responder] = tally
        }
        return tallies
    }

    /// When a notable share (≥ 5 %) of connections needed retransmitted SYNs, say so: each
    /// costs its request about a second, even though nothing failed.
    static func slowHandshakeNote(_ slow: Int, of answered: Int) -> String {
        guard slow > 0, answered > 0, slow * 20 >= answered else { return "" }
        return " But \(slow) of \(answered) connection(s) (\(slow * 100 / answered)%) were accepted only after retransmitted SYNs, about a second of delay each."
    }

    func sharpenedFix(_ code: String, _ fix: String, _ inferences: [Inference]) -> String {
        switch code {
        case "keepalive_race":
            if let keepalive = inferences.first(where: { $0.kind == "upstream_keepalive_timeout" })?.valueNs {
                let seconds = Phrase.duration(keepalive)
                return "the upstream closes idle connections after about \(seconds) while the gateway keeps them longer: set the gateway's upstream keep-alive timeout below \(seconds) (nginx `keepalive_timeout` in the upstream block, HAProxy `timeout server`/`http-reuse safe`), or raise the upstream's keep-alive timeout above the gateway's (nginx default 60 s)"
            }
            return fix
        case "response_timeout":
            if let read = inferences.first(where: { $0.kind == "gateway_read_timeout" })?.valueNs {
                return "the upstream took longer than the gateway's read timeout of about \(Phrase.duration(read)): find out why it is slow, or raise the timeout (nginx `proxy_read_timeout`, HAProxy `timeout server`) if such answers are expected"
            }
            return fix
        default:
            return fix
        }
    }

    func paragraph(_ endpoint: Endpoint, _ server: ServerTally, _ causes: [Cause], _ failures: Int, _ inferences: [Inference]) -> String {
        guard let top = causes.first else {
            if server.answered == 0 {
                return "\(endpoint): never answered any of \(server.flows) connection attempt(s) (no SYN-ACK), but waited too briefly for a verdict."
            }
            return "\(endpoint): \(server.requests) request(s) in \(server.flows) connection(s), no failures."
                + Self.slowHandshakeNote(server.slowHandshakes, of: server.answered)
        }
        var text = "\(endpoint): \(failures) failed of \(max(server.attempts, 1)) request(s)/attempt(s) in \(server.flows) connection(s). "
        if failures == 0 {
            text = "\(endpoint): no network or protocol failures. "
        }
        text += "Main cause: \(top.title), \(top.count) time(s) (\(Int((top.share * 100).rounded()))% of problems), \(top.first) to \(top.last). "
        for cause in causes.dropFirst().prefix(3) { text += "Also: \(cause.title), \(cause.count) time(s). " }
        for inference in inferences { text += inference.text.prefix(1).uppercased() + inference.text.dropFirst() + ". " }
        text += "Fix: \(top.fix)."
        return text
    }

    func dnsFailures(_ dns: DNSTracker) -> [DNSFailure] {
        var byName: [String: DNSFailure] = [:]
        for problem in dns.problems {
            let rcode = problem.rcode ?? "no_answer"
            let key = problem.name + "/" + rcode
            if var known = byName[key] {
                known.count += 1
                byName[key] = known
            } else {
                byName[key] = DNSFailure(name: problem.name, rcode: rcode, count: 1, firstFrame: problem.queryFrame, time: problem.queryTime.iso8601)
            }
        }
        return byName.values.sorted { ($0.count, $1.name) > ($1.count, $0.name) }
    }
}

/// A recurring value: at least two samples, most of them within 10% (or 50 ms) of the median.
struct Cluster {
    var median: Int64
    var count: Int

    init?(_ values: [Int64]) {
        guard values.count >= 2 else { return nil }
        let sorted = values.sorted()
        let median = sorted[sorted.count / 2]
        let tolerance = max(median / 10, 50_000_000)
        let near = sorted.filter { abs($0 - median) <= tolerance }.count
        guard near * 3 >= sorted.count * 2 else { return nil }
        self.median = median
        count = near
    }
}
