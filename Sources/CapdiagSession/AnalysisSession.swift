import CapdiagCapture
import CapdiagDiagnosis
import CapdiagEngine
import CapdiagFlow
import CapdiagLogJoin
import CapdiagProtocols
import CapdiagReport
import CapdiagWire
import Logging

/// Debug messages of the session (`-vv`): windows, interim reports, sinks.
let sessionLog = Logger(label: "capdiag.session")

/// Everything one analysis is configured with, as one value: passed in, never global.
public struct SessionOptions: Sendable {
    public var analyzer = AnalyzerOptions()
    public var thresholds = DiagnosisOptions()
    /// `--upstream` / `--gateway`: named roles instead of inferred ones.
    public var upstreams: [EndpointPattern] = []
    public var gateways: [EndpointPattern] = []
    /// Flows of each kind kept for listing (text and reports).
    public var listLimit = 50
    /// BPF filter applied to every input (and again by the export's second pass).
    public var filter: String?
    /// Stop after this many packets.
    public var packetLimit: Int?
    /// Credentials masked in every output (`--no-redact` turns it off).
    public var redact = true
    /// Verdicts as they happen (live capture): a flow's verdicts go to the sinks the moment it
    /// terminates or an ICMP error tells it off, not only when it leaves the table.
    public var liveVerdicts = false
    /// Nanoseconds of capture time the cross-flow conclusions cover (`--window`); nil for the
    /// whole capture. Counters (metrics, totals) always cover the whole run.
    public var window: Int64?
    /// Gateway logs to join to the flows (`--gateway-log`).
    public var gatewayLogs: [String] = []

    public init() {}
}

/// One finished flow, as the sinks see it: the flow and its protocol analysis, the facts the
/// rules read, and their verdicts. Its JSON record is built at most once, for the first sink
/// that asks for it.
public final class FlowEnded {
    public let flow: TCPFlow
    public let session: ProtocolSession
    public let facts: FlowFacts
    public let diagnosis: FlowDiagnosis
    private let frameRuns: FrameRuns?
    private var built: FlowRecord?

    init(flow: TCPFlow, session: ProtocolSession, facts: FlowFacts, diagnosis: FlowDiagnosis, frameRuns: FrameRuns?) {
        self.frameRuns = frameRuns
        self.flow = flow
        self.session = session
        self.facts = facts
        self.diagnosis = diagnosis
    }

    /// The flow's record (JSON schema in docs/json-schema.md).
    public var record: FlowRecord {
        if let built { return built }
        let record = FlowRecord(flow, session: session, diagnosis: diagnosis, frameRuns: frameRuns)
        built = record
        return record
    }

    var recordIfBuilt: FlowRecord? { built }
}

/// A periodic look at a running capture (live mode, about once a second and on `--interval`).
public struct SessionTick: Sendable {
    public var packets: Int
    public var openFlows: Int
    public var flagged: Int
    public var kernelDrops: UInt64
    /// Verdicts so far at medium or above, by code.
    public var verdicts: [String: Int]

    public init(packets: Int, openFlows: Int, flagged: Int, kernelDrops: UInt64, verdicts: [String: Int]) {
        self.packets = packets
        self.openFlows = openFlows
        self.flagged = flagged
        self.kernelDrops = kernelDrops
        self.verdicts = verdicts
    }
}

/// How the inputs ended, reported once before the conclusions.
public struct CaptureStopped: Sendable {
    public var inputs: [InputRecord]
    public var kernel: KernelRecord?
    /// Files the live capture wrote with `-w`: the inputs of a second pass (exports).
    public var writtenFiles: [String]
    /// Why writing `-w` failed, if it did: those files are incomplete.
    public var writeFailure: String?

    public init(inputs: [InputRecord], kernel: KernelRecord?, writtenFiles: [String], writeFailure: String? = nil) {
        self.inputs = inputs
        self.kernel = kernel
        self.writtenFiles = writtenFiles
        self.writeFailure = writeFailure
    }
}

/// The end of the analysis: the summary with the capture-wide diagnosis, and the flows kept
/// for listing.
public struct SessionConclusion {
    public var summary: SummaryRecord
    public var builder: ReportBuilder
    public var options: SessionOptions
    /// The paths a second pass reads: the offline inputs, or the live capture's `-w` files.
    public var replayPaths: [String]
    /// The counters as they stand at the end.
    public var metrics: MetricsExposition.Snapshot
}

/// An output of the analysis. Each is a small type that a test can drive with a recorded
/// sequence of events, without libpcap or the command line. Sinks are told in the order they
/// were attached; one that writes files (exports) comes before one that links to them (reports).
public protocol SessionSink: AnyObject {
    func flowEnded(_ event: FlowEnded)
    func tick(_ tick: SessionTick)
    func verdictDecided(_ event: VerdictDecided)
    /// The conclusions are final: write whatever the sink writes.
    /// - Throws: `SinkError` when its output could not be written; the other sinks still run.
    func concluded(_ conclusion: SessionConclusion) throws
}

extension SessionSink {
    public func flowEnded(_ event: FlowEnded) {}
    public func tick(_ tick: SessionTick) {}
    public func verdictDecided(_ event: VerdictDecided) {}
}

/// A verdict a live capture just decided (see `SessionOptions.liveVerdicts`).
public struct VerdictDecided {
    public let flow: TCPFlow
    public let finding: Finding

    public var record: VerdictRecord {
        VerdictRecord(flow: flow.id, originator: flow.originator, responder: flow.responder, finding: finding)
    }
}

/// An output that could not be written, said plainly.
public struct SinkError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// One analysis: the analyzer, the per-flow diagnosis and the cross-flow collector, fed by
/// packets from any source, telling its sinks as flows end and when it concludes.
public final class AnalysisSession {
    public let options: SessionOptions
    public private(set) var analyzer: Analyzer
    public private(set) var collector: SlidingCollector
    /// Counts since the start, per server: the metrics' counters.
    public private(set) var totals = RunningTotals()
    /// Gateway listeners found so far: once a listener, always one for the metrics' labels.
    var knownListeners: Set<String> = []
    public private(set) var builder: ReportBuilder
    private let diagnoser: Diagnoser
    private var sinks: [any SessionSink] = []

    public init(options: SessionOptions) {
        self.options = options
        var analyzerOptions = options.analyzer
        analyzerOptions.protocols.redact = options.redact
        analyzerOptions.flowTable.noteDecisions = options.liveVerdicts
        analyzer = Analyzer(options: analyzerOptions)
        collector = SlidingCollector(
            options: options.thresholds, upstreams: options.upstreams, gateways: options.gateways, window: options.window)
        // A windowed run lists its newest flows: a report after a week shows this hour's.
        builder = ReportBuilder(keep: options.listLimit, newest: options.window != nil)
        diagnoser = Diagnoser(options: options.thresholds)
    }

    public func attach(_ sink: any SessionSink) { sinks.append(sink) }

    /// Analyses one captured frame and hands every flow that ended to the sinks.
    @inline(__always)
    public func feed(_ metadata: PacketMetadata, linkType: LinkType, bytes: RawSpan) {
        analyzer.feed(time: metadata.timestamp, wireLength: metadata.wireLength, linkType: linkType, bytes: bytes)
        analyzer.drainFinishedFlows(take)
        if options.liveVerdicts { analyzer.drainDecidedFlows(decide) }
    }

    /// Flows whose verdicts went out already, so a flow decided twice (a RST, then an ICMP
    /// error) reports each verdict once; an entry goes when its flow leaves the table.
    private var announced: [Int: Set<String>] = [:]
    /// Each frame's input file and number there, when several files are read.
    private var frameRuns: FrameRuns?
    /// Live capture: verdicts so far by code, counted when announced or, if never announced,
    /// when their flow ended.
    public private(set) var liveVerdictCounts: [String: Int] = [:]

    private func decide(_ flow: TCPFlow, _ session: ProtocolSession) {
        let diagnosis = diagnoser.diagnose(session.decisionFacts(flow))
        for finding in diagnosis.findings where finding.severity >= .medium {
            guard announced[flow.id, default: []].insert(finding.code).inserted else { continue }
            liveVerdictCounts[finding.code, default: 0] += 1
            let event = VerdictDecided(flow: flow, finding: finding)
            for sink in sinks { sink.verdictDecided(event) }
        }
    }

    private func take(_ flow: TCPFlow, _ session: ProtocolSession) {
        let facts = session.facts(flow)
        let diagnosis = diagnoser.diagnose(facts)
        collector.add(facts, diagnosis)
        totals.add(facts, diagnosis)
        if options.liveVerdicts {
            // Verdicts of this flow not announced while it was open count now, once.
            let told = announced.removeValue(forKey: flow.id) ?? []
            for finding in diagnosis.findings where finding.severity >= .medium && !told.contains(finding.code) {
                liveVerdictCounts[finding.code, default: 0] += 1
            }
        }
        let event = FlowEnded(flow: flow, session: session, facts: facts, diagnosis: diagnosis, frameRuns: frameRuns)
        for sink in sinks { sink.flowEnded(event) }
        // Counting every flow, keeping a record only for those listed: formatting every flow's
        // times would cost more than tracking it. A record a sink already built is reused.
        if let record = event.recordIfBuilt { builder.add(record) } else { builder.add(flow, session: session, diagnosis: diagnosis, frameRuns: frameRuns) }
    }

    /// Tells the sinks how the capture is going, and returns what it told them.
    @discardableResult
    public func tick(kernelDrops: UInt64) -> SessionTick {
        let tick = SessionTick(
            packets: analyzer.stats.packets, openFlows: analyzer.flows.activeFlows, flagged: builder.flaggedCount,
            kernelDrops: kernelDrops, verdicts: options.liveVerdicts ? liveVerdictCounts : collector.flaggedByCode)
        for sink in sinks { sink.tick(tick) }
        return tick
    }

    /// Reads offline files to the end (or the packet limit).
    /// - Parameter progress: called after every packet (cheap; the callee rate-limits).
    /// - Returns: how each input ended.
    public func readFiles(_ reader: OfflineReader, progress: (Int, Int) -> Void = { _, _ in }) -> [InputRecord] {
        frameRuns = reader.frameRuns
        reader.read(limit: options.packetLimit) { metadata, linkType, bytes in
            feed(metadata, linkType: linkType, bytes: bytes)
            progress(analyzer.stats.packets, analyzer.flows.activeFlows)
            return true
        }
        return reader.inputs.map { input in
            InputRecord(
                path: input.path, linkType: input.linkType, linkTypeName: input.linkTypeName,
                snaplen: input.snapshotLength, packetsRead: input.packetsRead,
                stop: (input.stop ?? .endOfFile).code, error: input.stop?.message)
        }
    }

    /// Ends the analysis: every flow still open is finished and handed over, the capture-wide
    /// conclusions are drawn, and each sink writes its output. Every sink runs even when an
    /// earlier one failed.
    /// - Returns: the conclusion and the errors of the sinks that failed.
    @discardableResult
    public func conclude(_ stopped: CaptureStopped) -> (conclusion: SessionConclusion, failures: [any Error]) {
        // Flows still open are handed over as they finish, not all held first.
        analyzer.finish(draining: take)
        // The flows' memory went back to malloc as they left, in pieces too small for it to
        // return to the system by itself, and the conclusions allocate next.
        FreeMemory.returnToSystem()
        let conclusion = summarize(stopped)
        var failures: [any Error] = []
        for sink in sinks {
            do { try sink.concluded(conclusion) } catch { failures.append(error) }
            sessionLog.debug("output \(type(of: sink)) written\(failures.isEmpty ? "" : " (failures so far: \(failures.count))")")
        }
        return (conclusion, failures)
    }

    /// The conclusions so far, for a report while a live capture goes on (SIGHUP,
    /// `--report-every`): flows still open are left in the table and are not in it.
    public func interimConclusion(_ stopped: CaptureStopped) -> SessionConclusion {
        // Flows that terminated but wait out their linger in the table are in it, as they will
        // read when they leave; the session's own collector and list stay untouched.
        var collector = self.collector
        var builder = self.builder
        var lingering = 0
        analyzer.flows.forEachTerminated { flow, session in
            let facts = session.decisionFacts(flow)
            let diagnosis = diagnoser.diagnose(facts)
            collector.add(facts, diagnosis)
            builder.add(flow, session: session, diagnosis: diagnosis)
            lingering += 1
        }
        sessionLog.debug("interim conclusions: \(lingering) terminated flow(s) still in the table included, \(analyzer.flows.activeFlows - lingering) open left out")
        return summarize(stopped, collector: collector, builder: builder, interim: analyzer.flows.activeFlows - lingering)
    }

    private func summarize(_ stopped: CaptureStopped, interim stillOpen: Int? = nil) -> SessionConclusion {
        summarize(stopped, collector: collector, builder: builder, interim: stillOpen)
    }

    /// - Parameter stillOpen: for an interim report, the flows not yet terminated.
    private func summarize(
        _ stopped: CaptureStopped, collector: SlidingCollector, builder: ReportBuilder, interim stillOpen: Int?
    ) -> SessionConclusion {
        var collector = collector
        if let now = analyzer.stats.lastTime { collector.expire(now: now) }
        if let window = options.window {
            sessionLog.debug("window \(windowPhrase(window)): conclusions from \(collector.coveredFrom?.iso8601 ?? "the start"), \(collector.expiredFlows) flow(s) aged out")
        }
        var summary = builder.summary(
            inputs: stopped.inputs, filter: options.filter, stats: analyzer.stats, table: analyzer.flows, dns: analyzer.dns)
        summary.capture.kernel = stopped.kernel
        if !options.redact {
            summary.capture.caveats.append(
                "Credentials are shown in clear (--no-redact): passwords, tokens and cookies in this output are real; do not attach it to a ticket as it is.")
        }
        if let stillOpen {
            summary.capture.caveats.append(
                "Interim report while the capture runs: \(counted(stillOpen, "connection")) still open \(stillOpen == 1 ? "is" : "are") not in it.")
        }
        if let window = options.window, collector.expiredFlows > 0, let from = collector.coveredFrom {
            summary.capture.caveats.append(
                "The diagnosis covers the flows that ended since \(from.iso8601) (--window \(windowPhrase(window))); \(counted(collector.expiredFlows, "earlier flow")) \(collector.expiredFlows == 1 ? "is" : "are") counted in the totals and metrics but no longer in the conclusions. The flows listed are the newest.")
        }
        summary.capture.caveats += unmatchedPatternCaveats()
        summary.diagnosis = collector.conclude(dns: analyzer.dns)
        knownListeners.formUnion(summary.diagnosis?.gateways.map(\.listener) ?? [])
        if !options.gatewayLogs.isEmpty {
            // Read at each conclusion: a live capture's logs grow while it runs.
            let (logs, errors) = LogJoin.read(paths: options.gatewayLogs)
            for error in errors { summary.capture.caveats.append("--gateway-log: \(error)") }
            let span = analyzer.stats.firstTime.flatMap { first in analyzer.stats.lastTime.map { (first: first, last: $0) } }
            let lossy = (stopped.kernel.map { $0.dropped + $0.interfaceDropped } ?? 0) > 0
            summary.gatewayLogs = LogJoin.join(logs, attempts: collector.merged.attempts, capture: span, lossy: lossy)
            sessionLog.debug("gateway logs: \(logs.failures.count) failure line(s), \(logs.healthyLines) other line(s) read")
        }
        // Packets the kernel dropped may be the very ones a conclusion rests on: none of them
        // is held with high confidence then (the caveat says why).
        if let kernel = stopped.kernel, kernel.dropped + kernel.interfaceDropped > 0, var diagnosis = summary.diagnosis {
            for upstream in diagnosis.upstreams.indices {
                for cause in diagnosis.upstreams[upstream].causes.indices where diagnosis.upstreams[upstream].causes[cause].confidence == "high" {
                    diagnosis.upstreams[upstream].causes[cause].confidence = "medium"
                }
            }
            summary.diagnosis = diagnosis
        }
        let isLive = stopped.inputs.first?.path.hasPrefix("interface ") == true
        return SessionConclusion(
            summary: summary, builder: builder, options: options,
            replayPaths: isLive ? stopped.writtenFiles : stopped.inputs.map(\.path),
            metrics: metricsSnapshot(kernelDropped: stopped.kernel?.dropped, openFlows: stillOpen == nil ? 0 : analyzer.flows.activeFlows))
    }

    /// `--upstream` / `--gateway` patterns that name no server of the capture: a typo or the
    /// wrong capture, said plainly instead of a diagnosis of nothing.
    func unmatchedPatternCaveats() -> [String] {
        var caveats: [String] = []
        for (flag, patterns) in [("--upstream", options.upstreams), ("--gateway", options.gateways)] {
            for pattern in patterns where !totals.servers.keys.contains(where: { pattern.matches($0) }) {
                let busiest = totals.servers.sorted { ($0.value.flows, $1.key) > ($1.value.flows, $0.key) }.prefix(5).map(\.key.description)
                let seen = busiest.isEmpty ? "no server was seen at all" : "the busiest servers seen: " + busiest.joined(separator: ", ")
                caveats.append("\(flag) \(pattern.host)\(pattern.port.map { ":\($0)" } ?? "") matches no server in this capture; \(seen).")
            }
        }
        return caveats
    }

    /// The most severe verdict so far.
    public var worstSeverity: Severity? { collector.worst }
}

extension AnalysisSession {
    /// Reads a live capture until `shouldStop` says so or the packet limit is reached, calling
    /// `periodic` about once a second and on idle reads (status lines, `--interval`).
    /// - Returns: how the capture ended: the interface as the input, libpcap's kernel counters,
    ///   and the files `-w` wrote.
    public func readLive(
        _ reader: LiveReader, interface: String, shouldStop: () -> Bool, stoppedBy: () -> String,
        periodic: (SessionTick) -> Void
    ) -> CaptureStopped {
        func tickNow() { periodic(tick(kernelDrops: reader.handle.statistics?.dropped ?? 0)) }
        reader.read(limit: options.packetLimit, shouldStop: shouldStop, idle: tickNow) { metadata, linkType, bytes in
            feed(metadata, linkType: linkType, bytes: bytes)
            if analyzer.stats.packets & 0x3FF == 0 { tickNow() }
        }
        // A signal or --duration ends a live capture without a reader stop reason of its own.
        var stop = stoppedBy()
        if let reason = reader.stop, reason != .endOfFile { stop = reason.code }
        return liveState(reader, interface: interface, stop: stop)
    }

    /// How a live capture stands: the interface as the input, libpcap's kernel counters and the
    /// `-w` files (`stop` is "running" for an interim report).
    public func liveState(_ reader: LiveReader, interface: String, stop: String) -> CaptureStopped {
        let kernel = reader.handle.statistics.map {
            KernelRecord(received: $0.received, dropped: $0.dropped, interfaceDropped: $0.interfaceDropped)
        }
        let input = InputRecord(
            path: "interface \(interface)", linkType: reader.handle.dataLinkType, linkTypeName: reader.handle.dataLinkName,
            snaplen: reader.handle.snapshotLength, packetsRead: reader.packets, stop: stop, error: reader.stop?.message)
        return CaptureStopped(inputs: [input], kernel: kernel, writtenFiles: reader.writtenFiles, writeFailure: reader.writeFailure)
    }
}

/// `--window` as given: "15m", "90s".
func windowPhrase(_ nanoseconds: Int64) -> String {
    let seconds = nanoseconds / 1_000_000_000
    if seconds % 3600 == 0 { return "\(seconds / 3600)h" }
    if seconds % 60 == 0 { return "\(seconds / 60)m" }
    return "\(seconds)s"
}
