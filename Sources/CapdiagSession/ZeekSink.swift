import CapdiagDiagnosis
import CapdiagFlow
import CapdiagReport

/// `-T zeek`: Zeek `conn`, `http` and `notice` records in Zeek's JSON form, one stream tagged
/// by `_path` (docs/json-schema.md, section Zeek). Records of a flow go out when it ends; in a
/// live capture a verdict's notice goes out when it is decided, and not again at the flow's end.
public final class ZeekSink: SessionSink {
    let output: any TextOutput
    /// Verdict codes already written as notices, per open flow; an entry goes with its flow.
    private var announced: [Int: Set<String>] = [:]

    public init(output: any TextOutput) { self.output = output }

    public func flowEnded(_ event: FlowEnded) {
        let told = announced.removeValue(forKey: event.flow.id) ?? []
        let lines = ZeekRecord.lines(flow: event.flow, session: event.session, diagnosis: event.diagnosis, announced: told)
        output.write(lines.joined(separator: "\n") + "\n")
        output.flush()
    }

    public func verdictDecided(_ event: VerdictDecided) {
        guard announced[event.flow.id, default: []].insert(event.finding.code).inserted else { return }
        output.write(ZeekRecord.notice(event.finding, flow: event.flow) + "\n")
        output.flush()
    }

    public func concluded(_ conclusion: SessionConclusion) throws {
        output.flush()
    }
}
