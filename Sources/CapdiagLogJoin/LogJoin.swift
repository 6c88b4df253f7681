import CapdiagDiagnosis
import CapdiagFlow
import CapdiagGatewayLogs
import CapdiagWire

/// Joins the gateway's own log lines (`--gateway-log`) to the flows of the capture: each logged
/// failure gets the flow it describes, that flow's verdict, and whether the two agree.
///
/// Matching, most certain first: the upstream connection's 4-tuple where the log has it
/// (HAProxy `%bi:%bp`, Envoy's upstream local address); the request ID the gateway sent
/// upstream; else the upstream's address and the time, once the log's clock is placed on the
/// capture's. That placement is estimated per file from the matches themselves — the exact
/// ones when there are any, else the failures to the same upstream and target — as the offset
/// most matches agree on; a log without a zone (nginx's error log, HAProxy's `%tr`) gets its
/// zone inferred from it (rounded to 15 minutes) and the rest is reported as clock skew.
public enum LogJoin {
    /// Logged failures listed one by one; the counts cover them all.
    public static let maximumListed = 2_000
    /// Entries kept in memory for the join (failures; other lines only when they carry an
    /// exact key for the clock estimate).
    public static let maximumFailuresKept = 100_000
    public static let maximumHealthyKept = 20_000
    /// Verdicts whose end the gateway decides without a packet (an unanswered SYN).
    static let silentGiveUp: Set<String> = ["connection_timeout", "syn_retransmitted"]
    static let longestConnectTimeout: Int64 = 75_000_000_000
    /// How long before a logged moment its attempt may have begun (a request waiting out a
    /// long read timeout): attempts begun earlier are not considered for that line.
    static let longestAttempt: Int64 = 600_000_000_000
    /// Failure lines sampled to place a file's clock when it has no exact key.
    static let clockSamples = 2_000

    /// The log lines the join needs, read from the files.
    public struct Logs: Sendable {
        public var failures: [GatewayLogEntry] = []
        public var healthy: [GatewayLogEntry] = []
        public var files: [LogFileRecord] = []
        public var healthyLines = 0
        public var failuresNotKept = 0
        public init() {}
    }

    /// Reads every file; a file that cannot be opened is an error of its own, the others are
    /// still read. Lines not understood are counted in the file's record, never fatal.
    public static func read(paths: [String]) -> (logs: Logs, errors: [String]) {
        var logs = Logs()
        var errors: [String] = []
        for path in paths {
            do {
                let stats = try GatewayLogReader(path: path).forEachEntry { entry in
                    if isFailure(entry) {
                        if logs.failures.count < maximumFailuresKept { logs.failures.append(entry) } else { logs.failuresNotKept += 1 }
                    } else {
                        logs.healthyLines += 1
                        if (entry.backendSource != nil || entry.requestID != nil) && logs.healthy.count < maximumHealthyKept {
                            logs.healthy.append(entry)
                        }
                    }
                    return true
                }
                logs.files.append(
                    LogFileRecord(
                        path: path, compressed: stats.compressed, lines: stats.lines, entries: stats.entries,
                        badLines: stats.bad + stats.tooLong,
                        badExamples: stats.badExamples.map { "line \($0.lineNumber): \($0.reason.rawValue): \($0.excerpt)" },
                        formats: Dictionary(uniqueKeysWithValues: stats.formats.map { ($0.key.rawValue, $0.value) }),
                        problem: stats.problem))
            } catch {
                errors.append("\(error)")
            }
        }
        return (logs, errors)
    }

    /// A line about a request that failed (or a failure event): what the join reports.
    static func isFailure(_ entry: GatewayLogEntry) -> Bool {
        switch entry.format {
        case .nginxError:
            let level = entry.nginx?.level ?? ""
            guard ["warn", "error", "crit", "alert", "emerg"].contains(level) else { return false }
            return entry.upstream != nil || !GatewayVocabulary.matches(for: entry).isEmpty
        case .nginxAccess, .nginxCombined:
            // A try that failed counts even when a retry answered the client ("502, 200").
            return (entry.status ?? 0) >= 500 || entry.upstreamAttempts.contains { ($0.status ?? 0) >= 500 }
        case .haproxy:
            let state = entry.haproxy?.terminationState ?? "--"
            return (entry.status ?? 0) >= 500 || !state.hasPrefix("-")
        case .envoyText, .envoyJSON:
            let flags = entry.envoy?.responseFlags ?? []
            return (entry.status ?? 0) >= 500 || !flags.isEmpty
        }
    }

    static func gateway(_ format: GatewayLogFormat) -> String {
        switch format {
        case .nginxError, .nginxAccess, .nginxCombined: "nginx"
        case .haproxy: "haproxy"
        case .envoyText, .envoyJSON: "envoy"
        }
    }

    // MARK: - The join

    /// An entry placed for matching: its time as the log writes it (zone assumed UTC when
    /// unknown), at the middle of its resolution.
    struct Placed {
        var entry: GatewayLogEntry
        var failure: Bool
        var logTime: Int64
        var resolution: Int64
        var upstream: Endpoint?
        var gatewaySide: Endpoint?
        /// What `logTime` marks (see `GatewayTimeMeaning`), after corrections.
        var meaning: GatewayTimeMeaning
    }

    /// Joins the logs to the attempts the diagnosis kept (both legs; only those to the logged
    /// upstream can match).
    /// - Parameters:
    ///   - capture: the first and last packet times, to tell "before the capture" apart.
    ///   - lossy: the capture lost packets (kernel drops, gaps): the log may then be right.
    public static func join(_ logs: Logs, attempts: [Attempt], capture: (first: Timestamp, last: Timestamp)?, lossy: Bool)
        -> GatewayLogConclusions
    {
        var result = GatewayLogConclusions()
        result.files = logs.files
        result.healthyLines = logs.healthyLines
        let index = AttemptIndex(attempts)
        var records: [(time: Int64, record: LoggedFailureRecord)] = []
        let byFile = Dictionary(grouping: logs.failures.map { place($0, failure: true) } + logs.healthy.map { place($0, failure: false) }) {
            $0.entry.file
        }
        // Each file's clock from its own lines; then a file that could only be placed by
        // upstream and time takes the skew of a better-placed file of the same gateway (one
        // process, one clock: nginx's error log beside its access log).
        var clocks: [String: Clock] = [:]
        for path in logs.files.map(\.path) {
            if let placed = byFile[path], let clock = estimateClock(placed, index: index) { clocks[path] = clock }
        }
        for (path, clock) in clocks where clock.method == "upstream_and_time" {
            guard let kind = byFile[path]?.first.map({ gateway($0.entry.format) }) else { continue }
            let better = clocks.filter { other in
                other.key != path && other.value.method != "upstream_and_time" && byFile[other.key]?.first.map { gateway($0.entry.format) } == kind
            }.min { $0.key < $1.key }
            guard let (source, strong) = better else { continue }
            let skew = strong.zoneKnown ? strong.offset : strong.offset - Int64(strong.zone) * 1_000_000_000
            var shared = clock
            if !clock.zoneKnown {
                shared.zone = Int((Double(clock.offset - skew) / 900e9).rounded()) * 900
                shared.offset = skew + Int64(shared.zone) * 1_000_000_000
            } else {
                shared.offset = skew
            }
            shared.method = "same gateway clock as \(source)"
            shared.matches = strong.matches
            clocks[path] = shared
        }
        for path in logs.files.map(\.path) {
            guard let placed = byFile[path], !placed.isEmpty else { continue }
            let clock = clocks[path]
            if let clock { result.clocks.append(clock.record(path: path)) }
            // Exact keys first, then the rest in time order, each attempt used once.
            let order = placed.indices.filter { placed[$0].failure }.sorted { a, b in
                let exactA = index.exact(placed[a]) != nil
                let exactB = index.exact(placed[b]) != nil
                return exactA != exactB ? exactA : placed[a].logTime < placed[b].logTime
            }
            // Each attempt is described once per file, except by further lines of the same
            // nginx connection (nginx writes "connect() failed" and "server temporarily
            // disabled" for one event).
            var usedBy: [Int: Int?] = [:]
            for position in order {
                let item = placed[position]
                let time = clock.map { item.logTime - $0.offset }
                let connection = item.entry.nginx?.connection
                // Looked up per candidate: building the set of taken attempts for every line made
                // the join quadratic in the number of logged failures.
                let taken: (Int) -> Bool = { attempt in
                    guard let owner = usedBy[attempt] else { return false }
                    return connection == nil || owner != connection
                }
                let match = clock == nil ? nil : index.match(item, at: time ?? 0, excluding: taken)
                if let match { usedBy[match.index] = connection }
                let record = describe(item, time: time, match: match.map { (index.attempts[$0.index], $0.how) }, index: index, capture: capture, lossy: lossy, placedClock: clock != nil)
                switch record.agreement {
                case "agrees": result.agree += 1
                case "disagrees": result.disagree += 1
                case "no_traffic": result.noTraffic += 1
                default: result.unmatched += 1
                }
                records.append((time ?? item.logTime, record))
            }
        }
        records.sort { $0.time < $1.time }
        result.failures = records.prefix(maximumListed).map(\.record)
        result.failuresNotListed = max(0, records.count - maximumListed) + logs.failuresNotKept
        return result
    }

    static func place(_ entry: GatewayLogEntry, failure: Bool) -> Placed {
        let resolution = max(entry.time?.resolution ?? 1_000_000_000, 1)
        var time = (entry.time.map { $0.instant ?? $0.wallClock } ?? Timestamp(nanoseconds: 0)).nanoseconds + resolution / 2
        var meaning = entry.timeMeaning
        // HAProxy failing to connect (termination state ?C): its timers end when the last
        // try failed, and that try is the connection its %bi:%bp names.
        if let haproxy = entry.haproxy, haproxy.terminationState.dropFirst().hasPrefix("C"), let total = entry.requestDuration, total >= 0 {
            time += total
            meaning = .event
        }
        func endpoint(_ value: GatewayEndpoint?) -> Endpoint? {
            guard let value, let port = value.port else { return nil }
            return Endpoint(address: value.address, port: port)
        }
        // The try that failed, when a retry answered.
        let failedTry = entry.upstreamAttempts.first { ($0.status ?? 0) >= 500 && $0.endpoint != nil }
        return Placed(
            entry: entry, failure: failure, logTime: time, resolution: resolution,
            upstream: endpoint(failedTry?.endpoint ?? entry.upstream), gatewaySide: endpoint(entry.backendSource), meaning: meaning)
    }

    // MARK: - Clock

    struct Clock {
        /// Log time minus capture time, as placed (`logTime` is the instant when the zone is
        /// written, the wall clock read as UTC when not).
        var offset: Int64
        var zoneKnown: Bool
        /// The zone as written, or inferred.
        var zone: Int
        var matches: Int
        var method: String
        var resolution: Int64

        func record(path: String) -> LogClockRecord {
            LogClockRecord(
                path: path, zoneOffsetSeconds: zone, zoneInferred: !zoneKnown,
                skewNs: zoneKnown ? offset : offset - Int64(zone) * 1_000_000_000,
                matchesUsed: matches, method: method, resolutionNs: resolution)
        }
    }

    /// The offset (log minus capture) most of the file's candidate matches agree on.
    static func estimateClock(_ placed: [Placed], index: AttemptIndex) -> Clock? {
        guard let first = placed.first else { return nil }
        let resolution = placed.map(\.resolution).max() ?? 1_000_000_000
        let zoneKnown = first.entry.time?.isZoneKnown ?? false
        var samples: [(d: Int64, entry: Int)] = []
        var method = "four_tuple"
        for (position, item) in placed.enumerated() {
            guard let exact = index.exact(item) else { continue }
            if exact.how == "request_id" && method == "four_tuple" && samples.isEmpty { method = "request_id" }
            for candidate in exact.candidates.prefix(16) {
                samples.append((item.logTime - index.anchor(index.attempts[candidate], item.meaning), position))
            }
        }
        if samples.isEmpty {
            // The client's own connection, where the log gives the client's port (nginx's
            // access log, HAProxy, Envoy): the gateway's answer to it is on the wire.
            method = "client_connection"
            for (position, item) in placed.enumerated() {
                for candidate in index.clientLeg(item).prefix(4) {
                    samples.append((item.logTime - index.clientAnchor(index.attempts[candidate], item.meaning), position))
                }
            }
        }
        if samples.isEmpty {
            // No exact key: failures to the same upstream (and target), all pairings.
            method = "upstream_and_time"
            let failures = placed.indices.filter { placed[$0].failure }
            let stride = max(1, failures.count / LogJoin.clockSamples)
            for position in Swift.stride(from: 0, to: failures.count, by: stride).map({ failures[$0] }) {
                let item = placed[position]
                let candidates = index.loose(item)
                guard !candidates.isEmpty, candidates.count <= 64 else { continue }
                for candidate in candidates {
                    samples.append((item.logTime - index.anchor(index.attempts[candidate], item.meaning), position))
                }
            }
        }
        guard !samples.isEmpty else { return nil }
        samples.sort { $0.d < $1.d }
        // The window of one resolution (plus 0.5 s of the gateway's own delays) holding the
        // most distinct entries.
        let width = resolution + 500_000_000
        var counts: [Int: Int] = [:]
        var distinct = 0
        var best = (count: 0, low: 0, high: 0)
        var low = 0
        for high in samples.indices {
            counts[samples[high].entry, default: 0] += 1
            if counts[samples[high].entry] == 1 { distinct += 1 }
            while samples[high].d - samples[low].d > width {
                counts[samples[low].entry, default: 0] -= 1
                if counts[samples[low].entry] == 0 { distinct -= 1 }
                low += 1
            }
            if distinct > best.count { best = (distinct, low, high) }
        }
        let chosen = samples[best.low...best.high].map(\.d).sorted()
        let offset = chosen[chosen.count / 2]
        let zone: Int
        if zoneKnown {
            zone = first.entry.time?.utcOffsetSeconds ?? 0
        } else {
            // Zones are whole quarter hours.
            zone = Int((Double(offset) / 900e9).rounded()) * 900
        }
        return Clock(offset: offset, zoneKnown: zoneKnown, zone: zone, matches: best.count, method: method, resolution: resolution)
    }

    // MARK: - Words

    static func describe(
        _ item: Placed, time: Int64?, match: (attempt: Attempt, how: String)?, index: AttemptIndex,
        capture: (first: Timestamp, last: Timestamp)?, lossy: Bool, placedClock: Bool
    ) -> LoggedFailureRecord {
        let entry = item.entry
        let loggedAs = GatewayVocabulary.candidates(for: entry)
        let gateway = gateway(entry.format)
        var raw = entry.rawLine
        if raw.count > 400 { raw = String(raw.prefix(399)) + "…" }
        var record = LoggedFailureRecord(
            file: entry.file, line: entry.lineNumber, gateway: gateway, raw: raw,
            time: time.map { Timestamp(nanoseconds: $0).iso8601 }, words: entry.gatewayWords, status: entry.status,
            upstream: entry.upstream?.description ?? entry.upstreamAttempts.first?.address, matchedBy: match?.how,
            flow: match?.attempt.flow, gatewaySide: match?.attempt.originator.description,
            upstreamSide: match?.attempt.responder.description,
            communityId: match.map { CommunityID.tcp($0.attempt.originator, $0.attempt.responder) }, verdict: match?.attempt.code,
            verdictSeverity: match?.attempt.severity?.name, verdictSummary: match?.attempt.summary, loggedAs: loggedAs,
            agreement: "unmatched", note: "")
        let said = entry.gatewayWords.map { "'\($0)'" } ?? entry.status.map { "status \($0)" } ?? "a failure"
        guard let (attempt, _) = match else {
            let phrases = GatewayVocabulary.matches(for: entry)
            if !placedClock {
                record.note = "No flow could be placed beside this line: the log's clock could not be matched to the capture's (no line of this file fits any flow)."
            } else if let time, item.upstream == nil || !index.anyTraffic(to: item.upstream, around: time, slack: item.resolution + 5_000_000_000) {
                record.agreement = "no_traffic"
                if let phrase = phrases.first(where: { $0.verdictCodes.isEmpty }) {
                    record.note = "\(gateway) logged \(said): it sent nothing upstream for this request, so the wire has nothing to show\(phrase.note.map { " (\($0))" } ?? ""); look at the failures before it."
                } else if item.upstream == nil, let group = entry.upstreamAttempts.first?.address, !group.isEmpty {
                    record.note = "\(gateway) logged \(said) with the upstream '\(group)', a group's name and no server address: it tried no server for this request (every one was marked down), so the wire has nothing to show; look at the failures before it."
                } else if let capture, time < capture.first.nanoseconds {
                    record.note = "\(gateway) logged \(said) before the capture started."
                } else if let capture, time > capture.last.nanoseconds {
                    record.note = "\(gateway) logged \(said) after the capture ended."
                } else {
                    record.note = "\(gateway) logged \(said), but the capture holds no packet to \(record.upstream ?? "its upstream") around then: it missed this interface, or a filter left it out."
                }
            } else {
                record.note = "There is traffic to \(record.upstream ?? "the upstream") around then, but no connection fits this line (\(said)) within its time resolution."
            }
            return record
        }
        let verdictText = attempt.code.map { code in "\(code)\(attempt.summary.map { ": \($0)" } ?? "")" }
        let lossNote = lossy ? " The capture lost packets, so the log may see what the capture missed." : ""
        if !attempt.failed {
            if let status = attempt.status, status >= 500, loggedAs.isEmpty || loggedAs.contains("upstream_application_error") {
                record.agreement = "agrees"
                record.note = "\(gateway) logged \(said); on the wire the upstream itself answered \(status) (flow \(attempt.flow)): an application error, not a network fault."
            } else {
                record.agreement = "disagrees"
                let answered = attempt.status.map { "answered \($0)" } ?? "showed no failure"
                record.note = "\(gateway) logged \(said)\(loggedAs.first.map { " (\($0))" } ?? ""), but on the wire the upstream \(answered) (flow \(attempt.flow)). The packets are the stronger evidence of what the upstream did: the gateway gave up for a reason of its own (a shorter timeout, a client that left, a limit).\(lossNote)"
            }
        } else if loggedAs.isEmpty || loggedAs.contains(attempt.code ?? "") {
            record.agreement = "agrees"
            record.note = "\(gateway) logged \(said); the wire shows \(verdictText ?? "a failure") (flow \(attempt.flow))."
        } else {
            record.agreement = "disagrees"
            record.note = "\(gateway) logged \(said), which stands for \(loggedAs.joined(separator: " or ")); the wire shows \(verdictText ?? "another failure") (flow \(attempt.flow)). The packets are the stronger evidence of who sent what and when; the gateway's words name what its own socket call saw.\(lossNote)"
        }
        return record
    }
}

/// The attempts, indexed for the join.
struct AttemptIndex {
    let attempts: [Attempt]
    private var byTuple: [FlowPair: [Int]] = [:]
    /// By the gateway's side alone: HAProxy logs the server's name, not its address.
    private var byGatewaySide: [Endpoint: [Int]] = [:]
    private var byRequestID: [String: [Int]] = [:]
    private var byUpstream: [Endpoint: [Int]] = [:]
    private var byRequest: [String: [Int]] = [:]
    private var byOriginator: [Endpoint: [Int]] = [:]

    struct FlowPair: Hashable {
        var gateway: Endpoint
        var upstream: Endpoint
    }

    init(_ attempts: [Attempt]) {
        self.attempts = attempts
        for (position, attempt) in attempts.enumerated() {
            byTuple[FlowPair(gateway: attempt.originator, upstream: attempt.responder), default: []].append(position)
            byGatewaySide[attempt.originator, default: []].append(position)
            byOriginator[attempt.originator, default: []].append(position)
            for id in attempt.requestIDs.prefix(4) { byRequestID[id, default: []].append(position) }
            byUpstream[attempt.responder, default: []].append(position)
            if let method = attempt.method, let target = attempt.target { byRequest[method + " " + target, default: []].append(position) }
        }
    }

    /// The instant of an attempt the log's time marks.
    func anchor(_ attempt: Attempt, _ meaning: GatewayTimeMeaning) -> Int64 {
        switch meaning {
        case .requestStart: attempt.start.time.nanoseconds
        // A connection that failed before carrying a request ends when the gateway gave up
        // (the RST it got, the last unanswered SYN); a request that failed, at its verdict.
        case .event, .requestEnd:
            attempt.failed
                ? (attempt.method == nil ? max(attempt.failedAt, attempt.end) : attempt.failedAt).nanoseconds
                : (attempt.answered ?? attempt.start.time).nanoseconds
        }
    }

    /// Attempts an exact key names: the 4-tuple, else the request ID.
    func exact(_ item: LogJoin.Placed) -> (candidates: [Int], how: String)? {
        if let gateway = item.gatewaySide {
            if let upstream = item.upstream, let found = byTuple[FlowPair(gateway: gateway, upstream: upstream)] { return (found, "four_tuple") }
            if item.upstream == nil, let found = byGatewaySide[gateway] { return (found, "four_tuple") }
        }
        if let id = item.entry.requestID, id != "-", var found = byRequestID[id] {
            // The ID travels with every try; a line about a failed try wants that try.
            if let upstream = item.upstream { found = found.filter { attempts[$0].responder == upstream } }
            if !found.isEmpty { return (found, "request_id") }
        }
        return nil
    }

    /// Attempts to the logged upstream for the same request (method and target, when both
    /// sides know them), failed ones for a logged failure.
    func loose(_ item: LogJoin.Placed) -> [Int] {
        guard let all = candidates(item) else { return [] }
        return all.filter { position in
            let attempt = attempts[position]
            if item.failure && !attempt.failed { return false }
            if let request = item.entry.request, let target = attempt.target { return target == request.target && attempt.method == request.method }
            return true
        }
    }

    /// Attempts to the logged upstream; without its address (HAProxy logs the server's name),
    /// every attempt carrying the logged request, except the client's own connection.
    func candidates(_ item: LogJoin.Placed) -> [Int]? {
        if let upstream = item.upstream { return byUpstream[upstream] }
        // nginx names an upstream it had no address for (a group with no live server): no
        // connection can be its.
        guard item.entry.upstreamAttempts.isEmpty, let request = item.entry.request, let key = byRequest[request.method + " " + request.target] else { return nil }
        let client = item.entry.client
        return key.filter { position in
            guard let client, let port = client.port else { return true }
            return attempts[position].originator != Endpoint(address: client.address, port: port)
        }
    }

    /// The client's connection to the gateway that carried the logged request.
    func clientLeg(_ item: LogJoin.Placed) -> [Int] {
        guard let client = item.entry.client, let port = client.port, let request = item.entry.request,
            let found = byOriginator[Endpoint(address: client.address, port: port)]
        else { return [] }
        return found.filter { attempts[$0].method == request.method && attempts[$0].target == request.target }
    }

    /// When the gateway finished with its client: the answer it sent (or the connection's end).
    func clientAnchor(_ attempt: Attempt, _ meaning: GatewayTimeMeaning) -> Int64 {
        switch meaning {
        case .requestStart: attempt.start.time.nanoseconds
        case .event, .requestEnd: (attempt.answered ?? attempt.end).nanoseconds
        }
    }

    func anyTraffic(to upstream: Endpoint?, around time: Int64, slack: Int64) -> Bool {
        guard let upstream, let all = byUpstream[upstream] else { return false }
        return started(all, from: time - slack - LogJoin.longestAttempt, to: time + slack).contains {
            abs(attempts[$0].start.time.nanoseconds - time) <= slack || abs(attempts[$0].end.nanoseconds - time) <= slack
        }
    }

    /// The part of `list` (positions of attempts in start order) that began within the range:
    /// found by binary search, so a line looks at its own minutes, not at the whole capture.
    func started(_ list: [Int], from low: Int64, to high: Int64) -> ArraySlice<Int> {
        func bound(_ value: Int64) -> Int {
            var lower = 0
            var upper = list.count
            while lower < upper {
                let middle = (lower + upper) / 2
                if attempts[list[middle]].start.time.nanoseconds < value { lower = middle + 1 } else { upper = middle }
            }
            return lower
        }
        let first = bound(low)
        return list[first..<max(first, bound(high + 1))]
    }

    /// The attempt a line describes, at `time` on the capture's clock.
    func match(_ item: LogJoin.Placed, at time: Int64, excluding used: (Int) -> Bool) -> (index: Int, how: String)? {
        let meaning = item.meaning
        if let exact = exact(item) {
            // Ports are reused: the candidate nearest in time, within a minute.
            let best = exact.candidates.filter { !used($0) }.min { abs(anchor(attempts[$0], meaning) - time) < abs(anchor(attempts[$1], meaning) - time) }
            if let best, abs(anchor(attempts[best], meaning) - time) <= 60_000_000_000 + item.resolution { return (best, exact.how) }
        }
        guard let every = candidates(item) else { return nil }
        let reach = item.resolution / 2 + 500_000_000
        let all = started(every, from: time - reach - LogJoin.longestAttempt, to: time + reach)
        // A coarse log (nginx's error log: whole seconds) cannot order two failures within
        // its resolution by time; its lines are in order, so the earliest free attempt goes
        // to the earliest line.
        let coarse = item.resolution >= 100_000_000
        var best: (index: Int, rank: (Int, Int, Int64))?
        for position in all where !used(position) {
            let attempt = attempts[position]
            var distance = abs(anchor(attempt, meaning) - time)
            // An unanswered SYN leaves nothing on the wire when the gateway gives up (its
            // connect timeout, at most 75 s in nginx): the line may come that much later.
            if LogJoin.silentGiveUp.contains(attempt.code ?? ""), time > anchor(attempt, meaning),
                time - anchor(attempt, meaning) <= LogJoin.longestConnectTimeout
            {
                distance = min(distance, reach)
            }
            guard distance <= reach else { continue }
            let sameRequest = item.entry.request.map { $0.target == attempt.target && $0.method == attempt.method } ?? false
            let rank = (sameRequest ? 0 : 1, item.failure == attempt.failed ? 0 : 1, coarse ? anchor(attempt, meaning) : distance)
            if let current = best, !(rank < current.rank) { continue }
            best = (position, rank)
        }
        return best.map { ($0.index, "upstream_and_time") }
    }
}
