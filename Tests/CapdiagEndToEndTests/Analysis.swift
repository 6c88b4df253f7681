import CapdiagCapture
import CapdiagEngine
import CapdiagFlow
import CapdiagReport

/// Runs the whole offline pipeline in process, as the CLI does, and returns the flow records
/// and the summary.
func analyze(_ paths: [String], filter: String? = nil, limit: Int? = nil, options: AnalyzerOptions = AnalyzerOptions())
    throws -> (flows: [FlowRecord], summary: SummaryRecord)
{
    let reader = try OfflineReader(paths: paths, filter: filter)
    var analyzer = Analyzer(options: options)
    var builder = ReportBuilder(keep: 1000)
    var flows: [FlowRecord] = []
    func take(_ flow: TCPFlow, _ session: ProtocolSession) {
        let record = FlowRecord(flow, session: session)
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
    return (flows, builder.summary(inputs: inputs, filter: filter, stats: analyzer.stats, table: analyzer.flows, dns: analyzer.dns))
}
