import CapdiagCapture
import CapdiagDiagnosis
import CapdiagFlow
import CapdiagReport
import CapdiagWire
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Where a sink writes text (stdout in the command line, a buffer in tests).
public protocol TextOutput: AnyObject {
    func write(_ text: String)
    func flush()
}

/// Collects text in memory: for tests and for outputs written in one piece.
public final class TextBuffer: TextOutput {
    public private(set) var text = ""
    public init() {}
    public func write(_ text: String) { self.text += text }
    public func flush() {}
}

/// `-T text`: the diagnosis, the capture facts and the flows kept, at the end.
public final class TextReportSink: SessionSink {
    let output: any TextOutput
    public init(output: any TextOutput) { self.output = output }

    /// Live capture: a line per verdict as it is decided, before the final report.
    public func verdictDecided(_ event: VerdictDecided) {
        output.write(event.record.textLine + "\n")
        output.flush()
    }

    public func concluded(_ conclusion: SessionConclusion) throws {
        output.write(TextReport.render(summary: conclusion.summary, builder: conclusion.builder))
        output.flush()
    }
}

/// `-T json`: one document, flows as they finish, the summary last. Nothing is written before
/// the first flow or the conclusions, so an input that cannot be opened leaves no partial
/// document behind.
public final class JSONDocumentSink: SessionSink {
    let output: any TextOutput
    private var document: JSONDocumentWriter?

    public init(output: any TextOutput) { self.output = output }

    private func started() -> JSONDocumentWriter {
        if let document { return document }
        let document = JSONDocumentWriter(write: output.write)
        self.document = document
        return document
    }

    public func flowEnded(_ event: FlowEnded) {
        var document = started()
        document.add(event.record)
        self.document = document
    }

    public func concluded(_ conclusion: SessionConclusion) throws {
        started().finish(conclusion.summary)
        output.flush()
    }
}

/// `-T jsonl`: one line per flow as it ends, then the summary line.
public final class JSONLinesSink: SessionSink {
    let output: any TextOutput
    public init(output: any TextOutput) { self.output = output }

    public func flowEnded(_ event: FlowEnded) {
        output.write(event.record.jsonLine + "\n")
        output.flush()
    }

    /// Live capture: `{"type":"verdict",…}` the moment a verdict is decided.
    public func verdictDecided(_ event: VerdictDecided) {
        output.write(JSONOutput.line(event.record) + "\n")
        output.flush()
    }

    public func concluded(_ conclusion: SessionConclusion) throws {
        output.write(JSONOutput.line(conclusion.summary) + "\n")
        output.flush()
    }
}

/// `--interval N` during a live capture: a rolling summary on the output — a text line, or
/// with JSON Lines a `{"type":"interval",…}` record, so stdout stays valid JSON Lines. Driven by
/// the live loop's clock, not by session events.
public final class RollingLineWriter {
    let output: any TextOutput
    let asJSON: Bool
    public init(output: any TextOutput, asJSON: Bool = false) {
        self.output = output
        self.asJSON = asJSON
    }

    /// The `{"type":"interval",…}` record of a tick.
    public static func record(_ tick: SessionTick, builder: ReportBuilder) -> IntervalRecord {
        IntervalRecord(
            packets: tick.packets, openFlows: tick.openFlows, endedFlows: builder.total, flagged: tick.flagged,
            kernelDrops: tick.kernelDrops, verdicts: tick.verdicts)
    }

    /// Called by the live loop every interval (ticks in between go to the status line).
    public func rollingLine(_ tick: SessionTick, builder: ReportBuilder) {
        if asJSON {
            output.write(JSONOutput.line(Self.record(tick, builder: builder)) + "\n")
        } else {
            output.write(
                TextReport.rollingLine(
                    builder: builder, packets: tick.packets, openFlows: tick.openFlows, drops: tick.kernelDrops, causes: tick.verdicts)
                    + "\n")
        }
        output.flush()
    }
}

/// `--export DIR`: the flagged flows (or all, `--export-all`) as small pcaps, written by a
/// second pass over the same inputs once the analysis is done.
public final class FlowExportSink: SessionSink {
    public let directory: String
    public let all: Bool
    public let limit: Int
    public let payload: ExportPayload
    public let redact: Bool
    private var candidates: [ExportCandidate] = []
    public private(set) var notSelected = 0
    /// Flow id → written file, once concluded.
    public private(set) var written: [Int: String] = [:]

    public init(directory: String, all: Bool, limit: Int, payload: ExportPayload, redact: Bool) {
        self.directory = directory
        self.all = all
        self.limit = limit
        self.payload = payload
        self.redact = redact
    }

    public func flowEnded(_ event: FlowEnded) {
        guard all || !event.diagnosis.isHealthy else { return }
        guard candidates.count < limit else {
            notSelected += 1
            return
        }
        candidates.append(ExportCandidate(flow: event.flow, code: event.diagnosis.findings.max { $0.severity < $1.severity }?.code))
    }

    public func concluded(_ conclusion: SessionConclusion) throws {
        try AtomicFile.createDirectories(directory)
        let selections = candidates.map { candidate in
            FlowSelection(
                id: candidate.id, originator: (candidate.originator.address, candidate.originator.port),
                responder: (candidate.responder.address, candidate.responder.port), firstFrame: candidate.firstFrame,
                lastFrame: candidate.lastFrame, path: PathText.appending(directory, candidate.fileName))
        }
        var exporter = FlowExporter(redact: redact)
        do {
            try exporter.export(
                paths: conclusion.replayPaths, filter: conclusion.options.filter, limit: nil, flows: selections, payload: payload)
        } catch {
            throw SinkError("export: \(error)")
        }
        written = Dictionary(uniqueKeysWithValues: selections.map { ($0.id, $0.path) })
    }
}

/// A flow chosen for `--export` while the analysis ran: enough to find its packets again.
struct ExportCandidate {
    var id: Int
    var originator: Endpoint
    var responder: Endpoint
    var firstFrame: Int
    var lastFrame: Int
    var start: Timestamp
    var code: String?

    init(flow: TCPFlow, code: String?) {
        id = flow.id
        originator = flow.originator
        responder = flow.responder
        firstFrame = flow.first.frame
        // The first ICMP error quoting the flow may come after its last TCP packet.
        lastFrame = max(flow.last.frame, flow.firstICMPError?.packet.frame ?? 0)
        start = flow.first.time
        self.code = code
    }

    /// `20261125T142405.565Z_10.77.2.2-9012_keepalive_race_flow5.pcap`: sorts by time, names
    /// the upstream and the verdict, and holds only characters safe in any file system.
    var fileName: String {
        let iso = start.iso8601  // 2026-11-25T14:24:05.565569000Z
        let compact = iso.prefix(23).filter { $0 != "-" && $0 != ":" } + "Z"
        let upstream = "\(responder.address)-\(responder.port)".map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" ? $0 : "-" }
        return "\(compact)_\(String(upstream))_\(code ?? "flow")_flow\(id).pcap"
    }
}

/// `--report FILE.md|.html`: the ticket report, linking to the exported flows when an export
/// sink ran before it.
public final class TicketReportSink: SessionSink {
    public let path: String
    let exports: FlowExportSink?
    let redacted: Bool

    let standardOutput: (any TextOutput)?

    /// - Parameter standardOutput: where `path` "-" writes (the Markdown report).
    public init(path: String, exports: FlowExportSink?, redacted: Bool, standardOutput: (any TextOutput)? = nil) {
        self.path = path
        self.exports = exports
        self.redacted = redacted
        self.standardOutput = standardOutput
    }

    public func concluded(_ conclusion: SessionConclusion) throws {
        let toStandardOutput = path == "-"
        let base = toStandardOutput ? "report.md" : path
        let links = (exports?.written ?? [:]).mapValues { relativePath(from: base, to: $0) }
        let report = TicketReport(summary: conclusion.summary, flows: conclusion.builder.flagged, exports: links, redacted: redacted)
        if toStandardOutput, let standardOutput {
            standardOutput.write(MarkdownReport.render(report))
            standardOutput.flush()
            return
        }
        let text = path.lowercased().hasSuffix(".md") ? MarkdownReport.render(report) : HTMLReport.render(report)
        try AtomicFile.write(text, to: path)
    }
}

/// `target` relative to the directory holding `file`, for links inside a report.
func relativePath(from file: String, to target: String) -> String {
    let cwd = FileManager.default.currentDirectoryPath
    func absolute(_ path: String) -> [String] {
        let full = path.hasPrefix("/") ? path : cwd + "/" + path
        return URL(fileURLWithPath: full).standardizedFileURL.pathComponents
    }
    let base = Array(absolute(file).dropLast())
    let goal = absolute(target)
    var common = 0
    while common < base.count && common < goal.count && base[common] == goal[common] { common += 1 }
    return (Array(repeating: "..", count: base.count - common) + goal[common...]).joined(separator: "/")
}
