import CapdiagFlow
import CapdiagProtocols
import CapdiagWire

/// Collects every flow's verdicts as flows end and draws the capture-wide conclusions.
/// Memory is bounded: counts per server endpoint, a few examples per cause, and attempts for
/// joining the legs and finding retries — failed ones (and 5xx or unanswered requests) up to
/// `maximumNotableAttempts`, the others in a ring of the newest `maximumRecentAttempts`, so a
/// long live capture keeps its recent context (about 400 bytes per attempt).
public struct DiagnosisCollector: Sendable {
    public static let maximumNotableAttempts = 50_000
    public static let maximumServers = 50_000
    public static let maximumRecentAttempts = 100_000
    /// How long after its client's answer a gateway's upstream attempt may still end.
    static let nestingSlack: Int64 = 2_000_000
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
        /// Answers by status, and first-byte latencies (the first `samples`).
        var statuses: [Int: Int] = [:]
        var latencies: [Int64] = []
        /// Attempts and failures over time, for the report's timeline.
        var activity = ActivityHistogram()
    }

    /// How much one collector keeps (a sliding window splits these among its buckets).
    public struct Limits: Sendable {
        public var notableAttempts = DiagnosisCollector.maximumNotableAttempts
        public var recentAttempts = DiagnosisCollector.maximumRecentAttempts
        public var servers = DiagnosisCollector.maximumServers
        public init() {}

        /// Each of `parts` collectors gets its share (at least a few hundred of each).
        public func divided(by parts: Int) -> Limits {
            var share = self
            share.notableAttempts = max(500, notableAttempts / max(parts, 1))
            share.recentAttempts = max(500, recentAttempts / max(parts, 1))
            share.servers = max(500, servers / max(parts, 1))
            return share
        }
    }

    public let options: DiagnosisOptions
    public let limits: Limits
    public var upstreamOverrides: [EndpointPattern]
    public var gatewayOverrides: [EndpointPattern]
    var servers: [Endpoint: ServerTally] = [:]
    var notableAttempts = ChunkedArray<Attempt>()
    var recentAttempts = ChunkedArray<Attempt>()
    /// Where the next recent attempt goes once the ring is full.
    var recentNext = 0
    var attemptsNotKept = 0
    var serversNotTracked = 0
    public internal(set) var worst: Severity?

    public init(options: DiagnosisOptions, upstreams: [EndpointPattern] = [], gateways: [EndpointPattern] = [], limits: Limits = Limits()) {
        self.options = options
        self.limits = limits
        upstreamOverrides = upstreams
        gatewayOverrides = gateways
    }

    /// The attempts kept, by start time (for joining gateway logs).
    public var attempts: [Attempt] { Self.byStart(notableAttempts, recentAttempts) }

    /// The notable attempts and the recent ones in one array, by start time; attempts that
    /// start together keep that order (the sort is stable), as sorting the two lists one after
    /// the other did. Positions are sorted, not the records: moving 200-byte records through a
    /// merge sort was a tenth of the conclusions' time, and its scratch space half a copy.
    static func byStart(_ notable: ChunkedArray<Attempt>, _ recent: ChunkedArray<Attempt>) -> [Attempt] {
        var starts: [Timestamp] = []
        starts.reserveCapacity(notable.count + recent.count)
        for attempt in notable { starts.append(attempt.start.time) }
        for attempt in recent { starts.append(attempt.start.time) }
        var order = Array(starts.indices)
        order.sort { starts[$0] < starts[$1] }
        var all: [Attempt] = []
        all.reserveCapacity(order.count)
        for position in order { all.append(position < notable.count ? notable[position] : recent[position - notable.count]) }
        return all
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
        guard servers[facts.responder] != nil || servers.count < limits.servers else {
            serversNotTracked += 1
            return
        }
        // Updated in place: a copy out of the dictionary would copy its sample arrays per flow.
        Self.count(facts, diagnosis, attempts: flowAttempts,
            into: &servers[facts.responder, default: ServerTally(firstSeen: facts.first.time, lastSeen: facts.last.time)])
        for attempt in flowAttempts { keep(attempt) }
    }

    private static func count(_ facts: FlowFacts, _ diagnosis: FlowDiagnosis, attempts flowAttempts: [Attempt], into server: inout ServerTally) {
        let attempts = flowAttempts.count
        server.flows += 1
        server.attempts += attempts
        for attempt in flowAttempts { server.activity.add(attempt.start.time, failed: attempt.failed ? 1 : 0) }
        if !facts.rolesInferred || facts.exchanges?.isEmpty == false || facts.h2 != nil { server.confirmed = true }
        if facts.synAck != nil || (facts.syn == nil && facts.resp.packets > 0) { server.answered += 1 }
        if facts.synAck != nil && facts.synRetransmitCount > 0 { server.slowHandshakes += 1 }
        server.lastSeen = max(server.lastSeen, facts.last.time)
        // Every request on the connection counts, kept in detail or not (a connection keeps 32
        // healthy HTTP/1 exchanges and 64 unremarkable HTTP/2 streams).
        let requests = facts.requestCount
        server.requests += requests
        server.attempts += max(0, requests - attempts)
        server.activity.spread(requests - attempts, from: facts.first.time, to: facts.last.time)
        // Statuses of every answer on the connection; latencies from those kept in detail.
        for (status, count) in facts.h2?.statusCounts ?? facts.statusCounts where server.statuses.count < 64 || server.statuses[status] != nil {
            server.statuses[status, default: 0] += count
        }
        for exchange in facts.exchanges ?? [] {
            if let start = exchange.requestStart, let first = exchange.firstResponseByte, server.latencies.count < Self.samples {
                server.latencies.append(first - start)
            }
        }
        for stream in facts.h2Streams {
            if let start = stream.requestHeaders?.time, let first = stream.responseHeaders?.time, server.latencies.count < Self.samples {
                server.latencies.append(first - start)
            }
        }
        for exchange in facts.exchanges ?? [] where exchange.requestStart != nil {
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
            if notableAttempts.count < limits.notableAttempts { notableAttempts.append(attempt) } else { attemptsNotKept += 1 }
        } else if recentAttempts.count < limits.recentAttempts {
            recentAttempts.append(attempt)
        } else {
            recentAttempts[recentNext] = attempt
            recentNext = (recentNext + 1) % limits.recentAttempts
            attemptsNotKept += 1
        }
    }

    // MARK: - Conclusions

    public func conclude(dns: DNSTracker? = nil) -> Conclusions {
        // One copy of the attempts, in start order, then split in two and let go: the end of a
        // long capture held four copies here (the concatenation, the sorted one, two filters),
        // the peak of its memory.
        var byTime = Self.byStart(notableAttempts, recentAttempts)
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
        var upstreamAttempts: [Attempt] = []
        var clientAttempts: [Attempt] = []
        if listeners.isEmpty {
            swap(&upstreamAttempts, &byTime)
        } else {
            for attempt in byTime {
                if listeners[attempt.responder] == nil { upstreamAttempts.append(attempt) } else { clientAttempts.append(attempt) }
            }
            byTime = []
        }
        let join = linkClientFailures(clientAttempts, upstreamAttempts)
        let connectWaits = join.connectWaits
        conclusions.clientFailures = join.failures
        conclusions.clientFailuresNotListed = join.notListed
        conclusions.clientImpact = clientImpact(listeners, clientAttempts, upstreamAttempts)
        let retries = findRetries(upstreamAttempts)
        for (endpoint, server) in servers where listeners[endpoint] == nil && isUpstream(endpoint) && server.confirmed {
            var extra: [Inference] = []
            if let hidden = join.hiddenByRetry[endpoint.description] {
                let count = hidden.values.reduce(0, +)
                let where_ = hidden.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map { "\($0.key)" }.joined(separator: ", ")
                extra.append(
                    Inference(
                        kind: "retried_without_client_impact", valueNs: nil, count: count,
                        text: "\(counted(count, "failed attempt")) to \(endpoint) \(count == 1 ? "was" : "were") retried on \(where_), which answered: no client impact for those"))
            }
            guard var conclusion = conclude(endpoint, server, retries, extra: extra) else { continue }
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
    /// How many neighbouring attempts (by start time) the cross-flow searches look at from each
    /// one: gateways forward and retry at once, so what they look for is near; the bound keeps
    /// them linear at any request rate and concurrency.
    static let scanLimit = 512

    func findListeners(_ byTime: [Attempt]) -> [Endpoint: String] {
        var listeners: [Endpoint: String] = [:]
        for endpoint in servers.keys where gatewayOverrides.contains(where: { $0.matches(endpoint) }) {
            listeners[endpoint] = "override"
        }
        // Named gateways are the listeners; nothing is guessed then. Named upstreams only
        // keep those servers out of the guess.
        if !gatewayOverrides.isEmpty { return listeners }
        var votes: [Endpoint: (match: Int, nested: Int)] = [:]
        // Which servers' attempts nested in which listener candidate's requests, to settle a
        // pair that nests both ways under concurrency (the stronger direction wins).
        var pairs: [Endpoint: [Endpoint: Int]] = [:]
        // From the listener's own address: the server itself sent the nested request while it
        // served this one (a single-homed gateway, a sidecar, loopback). Such matches are judged
        // on the requests that had one nested in them, not on all: connections keep only some
        // exchanges in detail (the first 32 of a kept-alive connection), so on a busy gateway
        // most client requests have no kept counterpart (446,400 requests over a few hundred
        // connections). Matches from other hosts prove less (under load, unrelated clients send
        // the same target to other servers at the same moment) and are judged on every request.
        var ownMatches: [Endpoint: Int] = [:]
        var comparable: [Endpoint: Int] = [:]
        // Where each candidate's nested attempts came from: a gateway sends upstream from its
        // own address or a few, coincidences come from as many hosts as there are clients.
        var innerSources: [Endpoint: [IPAddress: Int]] = [:]
        for (index, outer) in byTime.enumerated() {
            var candidate = false
            var ownMatch = false
            var source: IPAddress?
            let until = outer.answered ?? outer.end
            var matched = false
            var nested = false
            var next = index + 1
            // A gateway forwards at once, so the counterpart starts among the first attempts
            // after the request: looking at most `scanLimit` further keeps the search linear
            // when thousands of requests wait at once (a million open flows, or requests never
            // answered, whose wait runs to the capture's end).
            let last = min(byTime.count, next + Self.scanLimit)
            while next < last, byTime[next].start.time <= until {
                // Fields read in place: binding the whole attempt copied its strings for every
                // overlapping pair (the listener search's main cost with many open requests).
                let position = next
                next += 1
                // Roles come from timing and nesting, not from addresses: client, gateway and
                // upstream may all be 127.0.0.1. The inner attempt is another connection, to
                // another server, begun and decided while the outer request waited (a gateway
                // answers its client after its upstream attempt); the reverse nesting (a client
                // request arriving while an upstream attempt waits) ends after it and does not count.
                guard byTime[position].responder != outer.responder, byTime[position].originator != outer.responder,
                    byTime[position].flow != outer.flow, byTime[position].originator != outer.originator
                else { continue }
                // A gateway may answer its client a moment before it closes the upstream side.
                let innerDone = byTime[position].answered ?? (byTime[position].failed ? byTime[position].failedAt : byTime[position].end)
                guard innerDone <= until + Self.nestingSlack else { continue }
                let own = byTime[position].originator.address == outer.responder.address
                if own { candidate = true }
                var counted = false
                if Attempt.forwarded(outer.method, outer.target, as: byTime[position].method, byTime[position].target) {
                    matched = true
                    counted = true
                    if own { ownMatch = true }
                }
                if byTime[position].method == nil && byTime[position].failed && (outer.status.map { (502...504).contains($0) } ?? true) {
                    nested = true
                    counted = true
                }
                if counted {
                    pairs[outer.responder, default: [:]][byTime[position].responder, default: 0] += 1
                    if source == nil { source = byTime[position].originator.address }
                }
            }
            if candidate { comparable[outer.responder, default: 0] += 1 }
            if ownMatch { ownMatches[outer.responder, default: 0] += 1 }
            if let source { innerSources[outer.responder, default: [:]][source, default: 0] += 1 }
            if matched || nested {
                var vote = votes[outer.responder] ?? (0, 0)
                if matched { vote.match += 1 } else { vote.nested += 1 }
                votes[outer.responder] = vote
            }
        }
        for (endpoint, vote) in votes where !upstreamOverrides.contains(where: { $0.matches(endpoint) }) {
            // A gateway answers client requests: a server that received none (SMB on 445 while
            // other connections failed, in a public fuzz capture) is no listener.
            guard (servers[endpoint]?.requests ?? 0) > 0 else { continue }
            let attempts = servers[endpoint]?.attempts ?? 0
            let own = ownMatches[endpoint] ?? 0
            // Most nested attempts from one address (the gateway's), not from many clients.
            let sources = innerSources[endpoint] ?? [:]
            guard (sources.values.max() ?? 0) * 2 >= sources.values.reduce(0, +) else { continue }
            // Most of a listener's requests have an upstream counterpart; from its own address,
            // a quarter of those that could show one (the busy gateway: 4,795 of 10,272, while
            // its application upstream, no gateway, had 8 of 691 by coincidence).
            if (own > 0 && own * 4 >= (comparable[endpoint] ?? 0)) || (vote.match > 0 && vote.match * 2 >= attempts) {
                listeners[endpoint] = "request_match"
            } else if vote.match + vote.nested > 0 && (vote.match + vote.nested) * 2 >= attempts {
                listeners[endpoint] = "nested_attempts"
            }
        }
        // Two candidates nested in each other: the direction seen more often is the real one.
        // In a fixed order: the outcome must not depend on the dictionaries' hash order.
        for candidate in listeners.keys.sorted() where listeners[candidate] != nil && listeners[candidate] != "override" {
            for (inner, count) in (pairs[candidate] ?? [:]).sorted(by: { $0.key < $1.key })
            where listeners[inner] != nil && listeners[inner] != "override" {
                if (pairs[inner]?[candidate] ?? 0) > count { listeners[candidate] = nil }
            }
        }
        return listeners
    }

    /// What joining the legs found besides the client failures.
    struct LegJoin {
        var failures: [ClientFailure] = []
        var notListed = 0
        /// How long the gateway took to answer a client whose upstream attempts all timed out
        /// connecting: its connect timeout, per upstream.
        var connectWaits: [String: [Int64]] = [:]
        /// Failed upstream attempts whose client request still got an answer (a retry
        /// elsewhere): per upstream, where the retry went and how often.
        var hiddenByRetry: [String: [String: Int]] = [:]
    }

    /// Joins each 502/503/504 (or unanswered request) on a client leg to exactly one upstream
    /// attempt, and each attempt to at most one client request: by request ID, else by method
    /// and target, else the failed attempt without a request nearest in time inside the
    /// request's wait. Other attempts for the same request (the gateway's retries) go with it.
    func linkClientFailures(_ clientAttempts: [Attempt], _ upstream: [Attempt]) -> LegJoin {
        var join = LegJoin()
        var used = Set<Int>()
        // Attempts by start time: binary search finds each request's window.
        let starts = upstream.map(\.start.time)
        func window(_ client: Attempt) -> Range<Int> {
            let from = client.start.time + (-1_000_000)
            // A damaged capture may stamp the answer before the request: an empty window then.
            let until = max((client.answered ?? client.end) + 1_000_000, from)
            let low = lowerBound(starts, from)
            // The decisive attempt starts right after the request: at most `scanLimit` looked at,
            // so a request never answered (its wait runs to the capture's end) stays cheap.
            return low..<min(max(low, lowerBound(starts, until + 1)), low + Self.scanLimit)
        }
        func matches(_ client: Attempt, _ attempt: Attempt) -> String? {
            if !client.requestIDs.isEmpty && !Set(client.requestIDs).isDisjoint(with: attempt.requestIDs) { return "request_id" }
            if client.forwarded(as: attempt) { return "request_match" }
            return nil
        }
        for client in clientAttempts {
            let failedStatus = client.status.map { (502...504).contains($0) } ?? false
            let failedStream = ClientOutcome.streamFailures[client.code ?? ""] != nil
            guard failedStatus || failedStream || client.unansweredFailure else { continue }
            var candidates: [(index: Int, rule: String)] = []
            for index in window(client) where !used.contains(index) {
                if let rule = matches(client, upstream[index]) {
                    candidates.append((index, rule))
                } else if upstream[index].method == nil && upstream[index].failed {
                    candidates.append((index, "time_window"))
                }
            }
            // The strongest rule present; within it, the attempt that decided the answer: the
            // last one begun before the client's answer (earlier ones were retried).
            let rank = ["request_id": 0, "request_match": 1, "time_window": 2]
            let best = candidates.map { rank[$0.rule] ?? 3 }.min()
            let chosenRule = candidates.first { rank[$0.rule] == best }?.rule
            let sameRule = candidates.filter { $0.rule == chosenRule }
            let chosen: (index: Int, rule: String)?
            var earlier: [Int]
            if chosenRule == "time_window" {
                // Without a request to go by: the attempt begun nearest after the client's request
                // (a gateway connects as the request arrives), then each attempt begun after the
                // previous one failed, as long as the client still waited: the gateway's retries
                // of this request (HAProxy logs the last as %bi:%bp). Attempts begun before a
                // failure showed were made in parallel, for other clients.
                let answer = client.answered ?? client.end
                var pool = sameRule.map(\.index).filter { upstream[$0].start.time <= answer }
                var chain: [Int] = []
                var after = client.start.time + (-1_000_000)
                while chain.count < 16, let next = pool.filter({ upstream[$0].start.time >= after }).min(by: { upstream[$0].start.time < upstream[$1].start.time }) {
                    chain.append(next)
                    pool.removeAll { $0 == next }
                    after = upstream[next].failedAt
                }
                chosen = chain.last.map { ($0, "time_window") }
                earlier = Array(chain.dropLast())
            } else {
                // Concurrent calls share a method and target (gRPC): for a failed stream, the
                // failed attempt begun nearest its request (the gateway forwards at once).
                let failedSame = sameRule.filter { upstream[$0.index].failed }
                if failedStream && !failedSame.isEmpty {
                    chosen = failedSame.min {
                        abs(upstream[$0.index].start.time.nanoseconds - client.start.time.nanoseconds)
                            < abs(upstream[$1.index].start.time.nanoseconds - client.start.time.nanoseconds)
                    }
                    earlier = []
                } else {
                    chosen = sameRule.last
                    earlier = Array(sameRule.dropLast().map(\.index))
                }
            }
            if let chosen { used.insert(chosen.index) }
            for index in earlier { used.insert(index) }
            guard join.failures.count < 1_000 else {
                join.notListed += 1
                continue
            }
            let linked: [LinkedAttempt] = (earlier + (chosen.map { [$0.index] } ?? [])).map { index in
                let attempt = upstream[index]
                return LinkedAttempt(
                    flow: attempt.flow, upstream: attempt.responder.description, code: attempt.code, status: attempt.status,
                    firstFrame: attempt.start.frame, lastFrame: attempt.lastFrame, offsetNs: attempt.start.time - client.start.time,
                    matchedBy: index == chosen?.index ? chosen?.rule ?? "" : "retry_of_same_request", summary: attempt.summary)
            }
            if let answered = client.answered, let decisive = linked.last, linked.allSatisfy({ $0.code == "connection_timeout" }) {
                join.connectWaits[decisive.upstream, default: []].append(answered - client.start.time)
            }
            let request = [client.method, client.target].compactMap { $0 }.joined(separator: " ")
            let answer = failedStream && !failedStatus
                ? "the \(ClientOutcome.streamFailures[client.code ?? ""] ?? "failed stream")"
                : client.status.map { "the \($0)" } ?? "the unanswered request"
            let explanation: String
            if let cause = linked.last {
                let what = cause.summary ?? (cause.status.map { "the upstream answered \($0)" } ?? "the upstream attempt")
                let how = ["request_id": "same request ID", "request_match": "same method and target", "time_window": "the failed attempt nearest in time"][cause.matchedBy] ?? cause.matchedBy
                explanation = "\(answer) for \(request) at \(client.start.time.iso8601) came from upstream \(cause.upstream): \(what) (flow \(cause.flow), frames \(cause.firstFrame)–\(cause.lastFrame); joined by \(how))"
                    + (linked.count > 1 ? "; after \(counted(linked.count - 1, "earlier failed attempt")) for the same request" : "")
            } else {
                explanation = "\(answer) for \(request) at \(client.start.time.iso8601) has no upstream attempt in this capture: the gateway had no live upstream, failed locally, or the upstream leg was not captured"
            }
            join.failures.append(
                ClientFailure(
                    time: client.start.time.iso8601, clientFlow: client.flow, client: client.originator.description,
                    gateway: client.responder.description, method: client.method, target: client.target, status: client.status,
                    upstreamAttempts: linked, explanation: explanation))
        }
        // Failed attempts no client failure claimed, for a request whose client got an answer:
        // the gateway retried, and the client never saw the failure.
        for client in clientAttempts where client.status.map({ !(500...599).contains($0) }) ?? false
            && ClientOutcome.streamFailures[client.code ?? ""] == nil
        {
            // The attempts of this request: matched by ID or request, or (when the capture lost
            // the request or it never went out) without a request inside its wait.
            let indices = Array(window(client)).filter { index in
                !used.contains(index) && (matches(client, upstream[index]) != nil || upstream[index].method == nil)
            }
            guard let answeredBy = indices.last(where: { !upstream[$0].failed && upstream[$0].status.map { !(500...599).contains($0) } ?? false })
            else { continue }
            used.insert(answeredBy)
            for index in indices where upstream[index].failed {
                used.insert(index)
                let target = upstream[answeredBy]
                join.hiddenByRetry[upstream[index].responder.description, default: [:]]["\(target.responder) (\(target.status ?? 0))", default: 0] += 1
            }
        }
        return join
    }

    /// What clients saw, per gateway listener: requests, and how many got 502/503/504, no
    /// answer, or a cut response. Without a client leg: the upstream attempts and how many failed.
    func clientImpact(_ listeners: [Endpoint: String], _ clientAttempts: [Attempt], _ upstream: [Attempt]) -> [ClientImpact] {
        var impact: [Endpoint: ClientImpact] = [:]
        for attempt in clientAttempts where attempt.method != nil {
            var entry = impact[attempt.responder] ?? ClientImpact(listener: attempt.responder.description)
            entry.requests += 1
            switch ClientOutcome(attempt) {
            case .status(let status):
                entry.failed += 1
                entry.statuses[String(status), default: 0] += 1
            case .unanswered:
                entry.failed += 1
                entry.unanswered += 1
            case .cut:
                entry.failed += 1
                entry.cut += 1
            case .invalid:
                entry.failed += 1
                entry.invalid += 1
            case .stream(let what):
                entry.failed += 1
                entry.statuses[what, default: 0] += 1
            case nil: break
            }
            impact[attempt.responder] = entry
        }
        for listener in listeners.keys where impact[listener] == nil {
            impact[listener] = ClientImpact(listener: listener.description)
        }
        // The requests kept in detail are a sample on busy connections: the count is every one,
        // and so are the gateway's 502/503/504 (counted over every answer on each connection;
        // a kept-alive connection keeps 32 healthy exchanges, so most 5xx would be missed).
        for listener in listeners.keys {
            guard var entry = impact[listener], let server = servers[listener] else { continue }
            entry.requests = max(entry.requests, server.requests)
            for status in 502...504 {
                let every = server.statuses[status] ?? 0, kept = entry.statuses[String(status)] ?? 0
                if every > kept {
                    entry.statuses[String(status)] = every
                    entry.failed += every - kept
                }
            }
            impact[listener] = entry
        }
        if impact.isEmpty && !upstream.isEmpty {
            var entry = ClientImpact(listener: nil)
            entry.upstreamAttempts = upstream.count
            entry.upstreamFailures = upstream.filter(\.failed).count
            return [entry]
        }
        return impact.values.sorted { ($0.failed, $1.listener ?? "") > ($1.failed, $0.listener ?? "") }
    }

    /// The nearest-rank percentile of `values` (nil when there are none).
    static func percentile(_ values: [Int64], _ percent: Int) -> Int64? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let rank = max(1, (percent * sorted.count + 99) / 100)
        return sorted[min(rank, sorted.count) - 1]
    }

    /// The first index whose value is not below `value` (`values` sorted).
    private func lowerBound(_ values: [Timestamp], _ value: Timestamp) -> Int {
        var low = 0
        var high = values.count
        while low < high {
            let middle = (low + high) / 2
            if values[middle] < value { low = middle + 1 } else { high = middle }
        }
        return low
    }

    func conclude(
        _ endpoint: Endpoint, _ server: ServerTally, _ retries: [Endpoint: RetryTally], extra: [Inference] = []
    ) -> UpstreamConclusion? {
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
        let inferences = infer(endpoint, server, tallies, retries) + extra
        guard server.requests + server.flows > 0 else { return nil }
        let causes = tallies.map { code, tally -> Cause in
            let info = CauseInfo.of(code)
            var title = info.title
            // The most frequent reason; a tie goes to the first by name (hash order would differ from
            // run to run).
            if let reason = tally.reasons.max(by: { ($0.value, $1.key) < ($1.value, $0.key) })?.key { title += " (\(reason.replacingUnderscores))" }
            return Cause(
                code: code, proxyStatus: tally.proxyStatus, family: info.family.rawValue, title: title,
                severity: tally.severity.name, count: tally.count,
                sharePerMille: total > 0 ? (tally.count * 1000 + total / 2) / total : 0, first: tally.first.iso8601, last: tally.last.iso8601,
                confidence: code == "listen_queue_overflow" || code == "request_unanswered" ? "medium" : "high",
                fix: sharpenedFix(code, info.fix, inferences), examples: tally.examples,
                times: tally.times.sorted().map(\.iso8601))
        }.sorted { ($0.count, $1.code) > ($1.count, $0.code) }
        let denominator = max(server.attempts, 1)
        return UpstreamConclusion(
            upstream: endpoint.description, flows: server.flows, requests: server.requests, failures: failures,
            failureRatePerMille: min(1000, (failures * 1000 + denominator / 2) / denominator), causes: causes, inferences: inferences,
            conclusion: paragraph(endpoint, server, causes, failures, inferences),
            statuses: Dictionary(uniqueKeysWithValues: server.statuses.map { (String($0.key), $0.value) }),
            latencyP50Ns: Self.percentile(server.latencies, 50), latencyP90Ns: Self.percentile(server.latencies, 90),
            latencyP99Ns: Self.percentile(server.latencies, 99), answeredConnections: server.answered,
            synRetransmittedConnections: server.slowHandshakes, activity: server.activity.isEmpty ? nil : ActivityRecord(server.activity))
    }

    /// Upstream keep-alive timeout, gateway timeouts and retries, from what recurs across flows.
    func infer(_ endpoint: Endpoint, _ server: ServerTally, _ tallies: [String: CauseTally], _ retries: [Endpoint: RetryTally]) -> [Inference] {
        var inferences: [Inference] = []
        if let cluster = Cluster(server.idleCloses) {
            inferences.append(
                Inference(
                    kind: "upstream_keepalive_timeout", valueNs: cluster.median, count: cluster.count,
                    text: "\(endpoint) closes idle kept-alive connections after about \(Phrase.duration(cluster.median)) (\(counted(cluster.count, "connection")))"))
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
                    text: "the gateway gives up \(Phrase.duration(cluster.median)) after sending a request (\(counted(cluster.count, "time"))): its read timeout (nginx proxy_read_timeout, HAProxy timeout server)"))
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
                    text: "the gateway likely retried \(retries.retried) of \(counted(retries.failed, "failed attempt")) at once; \(counted(retries.answered, "retry", "retries")) got an answer, so clients may not have seen those failures"))
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
                while back >= max(0, index - Self.scanLimit), attempt.start.time - byTime[back].start.time <= window {
                    if byTime[back].originator.address == attempt.originator.address { isolated = false }
                    back -= 1
                }
            }
            var next = index + 1
            while isolated, next < min(byTime.count, index + 1 + Self.scanLimit), byTime[next].start.time - attempt.start.time <= window {
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
        return " But \(slow) of \(counted(answered, "connection")) (\(slow * 100 / answered)%) were accepted only after retransmitted SYNs, about a second of delay each."
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
                return "\(endpoint): never answered any of \(counted(server.flows, "connection attempt")) (no SYN-ACK), but waited too briefly for a verdict."
            }
            return "\(endpoint): \(counted(server.requests, "request")) in \(counted(server.flows, "connection")), no failures."
                + Self.slowHandshakeNote(server.slowHandshakes, of: server.answered)
        }
        var text = "\(endpoint): \(failures) failed of \(counted(max(server.attempts, 1), "request or attempt", "requests or attempts")) in \(counted(server.flows, "connection")). "
        if failures == 0 {
            text = "\(endpoint): no network or protocol failures. "
        }
        text += "Main cause: \(top.title), \(counted(top.count, "time")) (\(top.sharePercent)% of problems), \(top.first) to \(top.last). "
        for cause in causes.dropFirst().prefix(3) { text += "Also: \(cause.title), \(counted(cause.count, "time")). " }
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
