import CapdiagDiagnosis
import CapdiagFlow
import CapdiagWire

/// A verdict the moment a live capture decided it (`"type": "verdict"` in JSON Lines): the
/// flow's endpoints and the finding. The flow's full record still follows when it leaves the
/// table (after its close linger).
public struct VerdictRecord: Codable, Sendable, Equatable {
    public var type = "verdict"
    public var flow: Int
    public var originator: EndpointRecord
    public var responder: EndpointRecord
    public var communityId: String
    public var finding: FindingRecord

    public init(flow: Int, originator: Endpoint, responder: Endpoint, finding: Finding) {
        self.flow = flow
        communityId = CommunityID.tcp(originator, responder)
        self.originator = EndpointRecord(originator)
        self.responder = EndpointRecord(responder)
        self.finding = FindingRecord(finding)
    }

    /// One line for the text output: when, what, where.
    public var textLine: String {
        "verdict \(finding.time) \(finding.code) [\(finding.severity)] flow #\(flow): \(Markup.visible(finding.summary))"
    }
}

/// A rolling summary of a live capture every `--interval` (`"type": "interval"` in JSON Lines).
public struct IntervalRecord: Codable, Sendable, Equatable {
    public var type = "interval"
    public var time: String
    public var packets: Int
    public var openFlows: Int
    public var endedFlows: Int
    public var flagged: Int
    public var kernelDrops: UInt64
    /// Verdicts so far at medium or above, by code.
    public var verdicts: [String: Int]

    public init(packets: Int, openFlows: Int, endedFlows: Int, flagged: Int, kernelDrops: UInt64, verdicts: [String: Int]) {
        time = Timestamp.now.iso8601
        self.packets = packets
        self.openFlows = openFlows
        self.endedFlows = endedFlows
        self.flagged = flagged
        self.kernelDrops = kernelDrops
        self.verdicts = verdicts
    }
}
