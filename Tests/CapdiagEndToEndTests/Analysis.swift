import CapdiagCapture
import CapdiagDiagnosis
import CapdiagEngine
import CapdiagFlow
import CapdiagReport

/// Runs the whole offline pipeline in process, as the CLI does, and returns the flow records
/// and the summary.
func analyze(
    _ paths: [String], filter: String? = nil, limit: Int? = nil, options: AnalyzerOptions = AnalyzerOptions(),
    thresholds: DiagnosisOptions = DiagnosisOptions()
) throws -> (flows: [FlowRecord], summary: SummaryRecord) {
    let reader = try OfflineReader(paths: paths, filter: filter)
    var analyzer = Analyzer(options: options)
    var builder = ReportBuilder(keep: 1000)
    var flows: [FlowRecord] = []
    let diagnoser = Diagnoser(options: thresholds)
    var collector = DiagnosisCollector(options: thresholds)
    func take(_ flow: TCPFlow, _ session: ProtocolSession) {
        let facts = session.facts(flow)
        let diagnosis = diagnoser.diagnose(facts)
        collector.add(facts, diagnosis)
        let record = FlowRecord(flow, session: session, diagnosis: diagnosis)
        flows.append(record)
        builder.add(record)
    }
    reader.read(limit: limit) { metadata, linkType, bytes in
        analyzer.feed(time: metadata.timestamp, wireLength: metadata.wireLength, linkType: linkType, bytes: bytes)
        analyzer.drainFinishedFlows(take)
        return true
    }
    analyzer.finish()
    analyzer.drainFinishedFlows(take)
    let inputs = reader.inputs.map { input in
        InputRecord(
            path: input.path, linkType: input.linkType, linkTypeName: input.linkTypeName, snaplen: input.snapshotLength,
            packetsRead: input.packetsRead,
            stop: (input.stop ?? .endOfFile).code, error: input.stop?.message)
    }
    var summary = builder.summary(inputs: inputs, filter: filter, stats: analyzer.stats, table: analyzer.flows, dns: analyzer.dns)
    summary.diagnosis = collector.conclude(dns: analyzer.dns)
    return (flows, summary)
}
