import CapdiagFlow
import CapdiagProtocols
import CapdiagWire

/// The cross-flow conclusions over a sliding window of capture time (`--window`, live capture):
/// flows are collected in buckets by the time they ended, a bucket is dropped once all of it is
/// older than the window, and a conclusion merges the buckets left. A capture that runs for
/// weeks so keeps at most a window's worth of per-request records, and its reports and roles
/// speak of the last minutes, not of the first. Without a window there is one bucket and the
/// conclusions cover the whole capture, exactly as a single collector would.
public struct SlidingCollector: Sendable {
    /// Buckets a window is cut into: an expired bucket takes a fifteenth of the window with it.
    public static let bucketsPerWindow = 15

    public let window: Int64?
    let span: Int64
    let options: DiagnosisOptions
    let upstreams: [EndpointPattern]
    let gateways: [EndpointPattern]
    let bucketLimits: DiagnosisCollector.Limits
    /// Oldest first; `start` is the first instant a bucket holds (a multiple of `span`).
    private(set) var buckets: [(start: Int64, collector: DiagnosisCollector)] = []
    /// The most severe verdict of the whole run, windowed or not (for `--fail-on`).
    public private(set) var worst: Severity?
    /// Flows whose records aged out of the window.
    public private(set) var expiredFlows = 0

    /// - Parameter window: nanoseconds of capture time the conclusions cover; nil for all.
    public init(
        options: DiagnosisOptions, upstreams: [EndpointPattern] = [], gateways: [EndpointPattern] = [], window: Int64? = nil,
        limits: DiagnosisCollector.Limits = DiagnosisCollector.Limits()
    ) {
        self.options = options
        self.upstreams = upstreams
        self.gateways = gateways
        let window = window.map { max($0, 1_000_000_000) }
        self.window = window
        span = window.map { max($0 / Int64(Self.bucketsPerWindow), 1_000_000_000) } ?? Int64.max
        // One more bucket than the window holds: the oldest is partly outside it.
        bucketLimits = window == nil ? limits : limits.divided(by: Self.bucketsPerWindow + 1)
    }

    /// Adds a flow that ended, in the bucket of its last packet.
    public mutating func add(_ facts: FlowFacts, _ diagnosis: FlowDiagnosis) {
        if let severity = diagnosis.severity { worst = max(worst ?? severity, severity) }
        let time = facts.last.time.nanoseconds
        let start = window == nil ? 0 : time - time.modulo(span)
        // Flows arrive nearly in time order (each when it leaves the table): look from the end.
        var index = buckets.count
        while index > 0 && buckets[index - 1].start > start { index -= 1 }
        if index > 0 && buckets[index - 1].start == start {
            buckets[index - 1].collector.add(facts, diagnosis)
        } else if index == 0 && !buckets.isEmpty && window != nil && start < buckets[0].start {
            // Older than every bucket (a flow idle for longer than the window): its record
            // belongs to a part of the window already dropped, or about to be.
            buckets[0].collector.add(facts, diagnosis)
        } else {
            var collector = DiagnosisCollector(options: options, upstreams: upstreams, gateways: gateways, limits: bucketLimits)
            collector.add(facts, diagnosis)
            buckets.insert((start, collector), at: index)
        }
        expire(now: facts.last.time)
    }

    /// Drops the buckets that lie wholly before `now - window`.
    public mutating func expire(now: Timestamp) {
        guard let window else { return }
        let cutoff = now.nanoseconds - window
        while let first = buckets.first, first.start + span <= cutoff {
            expiredFlows += first.collector.servers.values.reduce(0) { $0 + $1.flows }
            buckets.removeFirst()
        }
    }

    /// The capture time the conclusions cover: from the start of the oldest bucket kept.
    public var coveredFrom: Timestamp? { window == nil ? nil : buckets.first.map { Timestamp(nanoseconds: $0.start) } }

    /// The buckets merged into one collector.
    public var merged: DiagnosisCollector {
        guard buckets.count != 1 else { return buckets[0].collector }
        var merged = DiagnosisCollector(options: options, upstreams: upstreams, gateways: gateways)
        for bucket in buckets { merged.absorb(bucket.collector) }
        return merged
    }

    public func conclude(dns: DNSTracker? = nil) -> Conclusions { merged.conclude(dns: dns) }

    /// Verdicts (medium and above) by code, in the window.
    public var flaggedByCode: [String: Int] {
        var counts: [String: Int] = [:]
        for bucket in buckets { counts.merge(bucket.collector.flaggedByCode, uniquingKeysWith: +) }
        return counts
    }

    /// Gateway listeners found among the newest flows (the last two buckets; see
    /// `DiagnosisCollector.findListeners`). Cheap enough for every metrics update: merging the
    /// whole window there copied every record it keeps each time (the soak's memory peaks).
    public var recentListeners: [Endpoint] {
        var recent = DiagnosisCollector(options: options, upstreams: upstreams, gateways: gateways)
        for bucket in buckets.suffix(2) { recent.absorb(bucket.collector) }
        let byTime = DiagnosisCollector.byStart(recent.notableAttempts, recent.recentAttempts)
        return Array(recent.findListeners(byTime).keys)
    }
}

extension Int64 {
    /// The remainder that is never negative (times before 1970 in a damaged capture).
    fileprivate func modulo(_ divisor: Int64) -> Int64 {
        let remainder = self % divisor
        return remainder < 0 ? remainder + divisor : remainder
    }
}

extension DiagnosisCollector {
    /// Takes in everything `other` collected: tallies summed, samples and attempts appended
    /// up to the usual limits.
    mutating func absorb(_ other: DiagnosisCollector) {
        for (endpoint, tally) in other.servers {
            if var mine = servers[endpoint] {
                mine.absorb(tally)
                servers[endpoint] = mine
            } else if servers.count < limits.servers {
                servers[endpoint] = tally
            } else {
                serversNotTracked += tally.flows
            }
        }
        let notableRoom = max(0, limits.notableAttempts - notableAttempts.count)
        notableAttempts.append(contentsOf: other.notableAttempts.prefix(notableRoom))
        let recentRoom = max(0, limits.recentAttempts - recentAttempts.count)
        recentAttempts.append(contentsOf: other.recentAttempts.prefix(recentRoom))
        attemptsNotKept += other.attemptsNotKept + max(0, other.notableAttempts.count - notableRoom)
            + max(0, other.recentAttempts.count - recentRoom)
        serversNotTracked += other.serversNotTracked
        if let severity = other.worst { worst = max(worst ?? severity, severity) }
    }
}

extension DiagnosisCollector.ServerTally {
    mutating func absorb(_ other: Self) {
        flows += other.flows
        requests += other.requests
        attempts += other.attempts
        for (code, tally) in other.causes {
            if var mine = causes[code] {
                mine.absorb(tally)
                causes[code] = mine
            } else {
                causes[code] = tally
            }
        }
        if let reuse = other.longestAnsweredReuse { longestAnsweredReuse = max(longestAnsweredReuse ?? reuse, reuse) }
        idleCloses += other.idleCloses.prefix(max(0, DiagnosisCollector.samples - idleCloses.count))
        firstSeen = min(firstSeen, other.firstSeen)
        lastSeen = max(lastSeen, other.lastSeen)
        confirmed = confirmed || other.confirmed
        answered += other.answered
        slowHandshakes += other.slowHandshakes
        statuses.merge(other.statuses, uniquingKeysWith: +)
        latencies += other.latencies.prefix(max(0, DiagnosisCollector.samples - latencies.count))
        activity.absorb(other.activity)
    }
}

extension DiagnosisCollector.CauseTally {
    mutating func absorb(_ other: Self) {
        count += other.count
        proxyStatus = proxyStatus ?? other.proxyStatus
        severity = max(severity, other.severity)
        first = min(first, other.first)
        last = max(last, other.last)
        examples += other.examples.prefix(max(0, DiagnosisCollector.examplesPerCause - examples.count))
        measured += other.measured.prefix(max(0, DiagnosisCollector.samples - measured.count))
        reasons.merge(other.reasons, uniquingKeysWith: +)
        times += other.times.prefix(max(0, DiagnosisCollector.timesPerCause - times.count))
    }
}
