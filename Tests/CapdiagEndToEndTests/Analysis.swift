import CapdiagCapture
import CapdiagDiagnosis
import CapdiagEngine
import CapdiagFlow
import CapdiagReport
import CapdiagSession

/// Keeps every flow record the session hands over (tests read them all, not only the listed).
final class RecordingSink: SessionSink {
    var events: [FlowEnded] = []
    var flows: [FlowRecord] { events.map(\.record) }
    var conclusion: SessionConclusion?
    func flowEnded(_ event: FlowEnded) { events.append(event) }
    func concluded(_ conclusion: SessionConclusion) throws { self.conclusion = conclusion }
}

/// Runs the whole offline pipeline in process through the same session the CLI uses, and
/// returns the flow records and the summary.
func analyze(
    _ paths: [String], filter: String? = nil, limit: Int? = nil, options: AnalyzerOptions = AnalyzerOptions(),
    thresholds: DiagnosisOptions = DiagnosisOptions()
) throws -> (flows: [FlowRecord], summary: SummaryRecord) {
    var sessionOptions = SessionOptions()
    sessionOptions.analyzer = options
    sessionOptions.thresholds = thresholds
    sessionOptions.filter = filter
    sessionOptions.packetLimit = limit
    sessionOptions.listLimit = 1000
    let session = AnalysisSession(options: sessionOptions)
    let recorder = RecordingSink()
    session.attach(recorder)
    let reader = try OfflineReader(paths: paths, filter: filter)
    let inputs = session.readFiles(reader)
    let (conclusion, _) = session.conclude(CaptureStopped(inputs: inputs, kernel: nil, writtenFiles: []))
    return (recorder.flows, conclusion.summary)
}
