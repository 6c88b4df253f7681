import CapdiagDiagnosis
import CapdiagFlow
import CapdiagReport
import CapdiagWire

/// `-T ecs`: one Elastic Common Schema event per line — a flow as it ends, a verdict the moment
/// a live capture decides it, and the summary at the end (docs/json-schema.md, section ECS).
public final class ECSSink: SessionSink {
    let output: any TextOutput
    public init(output: any TextOutput) { self.output = output }

    public func flowEnded(_ event: FlowEnded) {
        // The flow's JSON record, built once and reused by the session for its listing.
        output.write(ECSRecord.flowEvent(event.record) + "\n")
        output.flush()
    }

    public func verdictDecided(_ event: VerdictDecided) {
        output.write(ECSRecord.verdictEvent(flow: event.flow, finding: event.finding) + "\n")
        output.flush()
    }

    public func concluded(_ conclusion: SessionConclusion) throws {
        output.write(ECSRecord.summaryEvent(conclusion.summary, now: .now) + "\n")
        output.flush()
    }
}
