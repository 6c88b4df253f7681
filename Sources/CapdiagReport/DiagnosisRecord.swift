import CapdiagDiagnosis
import CapdiagWire

/// A flow's scores in JSON: 0–100 per dimension.
public struct ScoresRecord: Codable, Sendable, Equatable {
    public var reset: Int
    public var handshake: Int
    public var timeout: Int
    public var invalidResponse: Int
    public var networkQuality: Int

    init(_ scores: Scores) {
        reset = scores.reset
        handshake = scores.handshake
        timeout = scores.timeout
        invalidResponse = scores.invalidResponse
        networkQuality = scores.networkQuality
    }
}

public struct EvidenceRecord: Codable, Sendable, Equatable {
    public var frame: Int
    public var time: String
    /// "originator", "responder" or "network".
    public var from: String
    public var what: String
    public var offsetNs: Int64
    public var sinceRequestNs: Int64?

    init(_ evidence: Evidence) {
        frame = evidence.packet.frame
        time = evidence.packet.time.iso8601
        from = evidence.actor.rawValue
        what = evidence.what
        offsetNs = evidence.sinceFlowStart
        sinceRequestNs = evidence.sinceRequest
    }
}

/// The numbers a verdict measured (absent when not measured).
public struct MeasurementsRecord: Codable, Sendable, Equatable {
    /// Idle time of a reused connection before the request (keep-alive race), or before the
    /// upstream closed it (idle close).
    public var idleBeforeNs: Int64?
    /// Upstream FIN/RST time minus request time; negative when the upstream closed first.
    public var closeAfterRequestNs: Int64?
    /// How long the gateway waited before giving up.
    public var waitedNs: Int64?
    /// SYN send times from the first SYN (connect backoff).
    public var synTimesNs: [Int64]?
    public var missingBytes: Int64?
    public var headerBytes: Int?
    public var status: Int?

    init?(_ measurements: Measurements) {
        guard measurements != Measurements() else { return nil }
        idleBeforeNs = measurements.idleBefore
        closeAfterRequestNs = measurements.closeAfterRequest
        waitedNs = measurements.waited
        synTimesNs = measurements.synTimes
        missingBytes = measurements.missingBytes
        headerBytes = measurements.headerBytes
        status = measurements.status
    }
}

public struct FindingRecord: Codable, Sendable, Equatable {
    public var code: String
    public var proxyStatus: String?
    public var severity: String
    public var dimension: String
    public var score: Int
    public var rule: String
    public var time: String
    public var exchange: Int?
    public var method: String?
    public var target: String?
    public var reason: String?
    public var summary: String
    public var evidence: [EvidenceRecord]
    public var measurements: MeasurementsRecord?

    init(_ finding: Finding) {
        code = finding.code
        proxyStatus = finding.proxyStatus
        severity = finding.severity.name
        dimension = finding.dimension.name
        score = finding.score
        rule = finding.rule
        time = finding.time.iso8601
        exchange = finding.exchange
        method = finding.method
        target = finding.target
        reason = finding.reason
        summary = finding.summary
        evidence = finding.evidence.map(EvidenceRecord.init)
        measurements = MeasurementsRecord(finding.measurements)
    }
}

/// A flow's diagnosis in JSON: scores, the worst severity ("none" when healthy), verdicts.
public struct FlowDiagnosisRecord: Codable, Sendable, Equatable {
    public var healthy: Bool
    public var severity: String
    public var scores: ScoresRecord
    public var findings: [FindingRecord]

    public init(_ diagnosis: FlowDiagnosis) {
        healthy = diagnosis.isHealthy
        severity = diagnosis.severity?.name ?? "none"
        scores = ScoresRecord(diagnosis.scores)
        findings = diagnosis.findings.map(FindingRecord.init)
    }
}

extension Dimension {
    public var name: String {
        switch self {
        case .reset: "reset"
        case .handshake: "handshake"
        case .timeout: "timeout"
        case .invalidResponse: "invalid_response"
        case .networkQuality: "network_quality"
        }
    }
}
