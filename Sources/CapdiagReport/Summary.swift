import CapdiagDiagnosis
import CapdiagLogJoin
import CapdiagEngine
import CapdiagFlow
import CapdiagProtocols
import CapdiagWire

/// One input file as the report shows it.
public struct InputRecord: Codable, Sendable, Equatable {
    public var path: String
    public var linkType: Int32
    public var linkTypeName: String
    public var snaplen: Int
    public var packetsRead: Int
    /// "end_of_file", "read_error" or "packet_limit".
    public var stop: String
    /// libpcap's text when reading failed mid-file.
    public var error: String?

    public init(
        path: String, linkType: Int32, linkTypeName: String, snaplen: Int, packetsRead: Int, stop: String,
        error: String?
    ) {
        self.path = path
        self.linkType = linkType
        self.linkTypeName = linkTypeName
        self.snaplen = snaplen
        self.packetsRead = packetsRead
        self.stop = stop
        self.error = error
    }
}

public struct SkipRecord: Codable, Sendable, Equatable {
    public var layer: String
    public var reason: String
    public var count: Int
}

public struct PacketCounts: Codable, Sendable, Equatable {
    public var read: Int
    public var decoded: Int
    public var skipped: Int
    public var tcp: Int
    public var udp: Int
    public var icmp: Int
    public var icmpErrorsMatched: Int
    public var icmpErrorsUnmatched: Int
    public var snaplenCut: Int
    public var capturedBytes: Int
}

/// Out-of-order buffering across all flows: the global cap, the most held at once, and how
/// often a cap forced a gap (never fatal: the direction gives up its first hole).
public struct ReassemblyRecord: Codable, Sendable, Equatable {
    /// The global cap (`--reassembly-memcap`), in bytes.
    public var memcapBytes: Int = ReassemblyMemory.defaultLimit
    /// The most bytes held at once (buffered bytes plus a fixed cost per buffered piece).
    public var peakBufferedBytes: Int = 0
    /// Times the global cap forced a gap.
    public var memcapHits: Int = 0
    /// Times a direction's own buffer cap (256 KiB) forced a gap, over all flows.
    public var directionCapHits: Int = 0

    public init() {}

    public init(_ memory: ReassemblyMemory) {
        memcapBytes = memory.limit
        peakBufferedBytes = memory.peak
        memcapHits = memory.memcapHits
        directionCapHits = memory.directionCapHits
    }
}

/// Kernel counters of a live capture (`pcap_stats`).
public struct KernelRecord: Codable, Sendable, Equatable {
    public var received: UInt64
    public var dropped: UInt64
    public var interfaceDropped: UInt64

    public init(received: UInt64, dropped: UInt64, interfaceDropped: UInt64) {
        self.received = received
        self.dropped = dropped
        self.interfaceDropped = interfaceDropped
    }
}

public struct CaptureRecord: Codable, Sendable, Equatable {
    public var inputs: [InputRecord]
    /// Live capture only.
    public var kernel: KernelRecord? { didSet { caveats = Self.caveats(inputs: inputs, kernel: kernel, packets: packets) } }
    public var filter: String?
    public var firstPacket: String?
    public var lastPacket: String?
    public var durationNs: Int64
    public var packets: PacketCounts
    public var skipped: [SkipRecord]
    /// Out-of-order buffering and its caps.
    public var reassembly = ReassemblyRecord()
    /// What limits the evidence, said before any verdict: payloads cut by the snapshot
    /// length, an input that ended early, packets the kernel dropped.
    public var caveats: [String] = []

    init(
        inputs: [InputRecord], filter: String?, firstPacket: String?, lastPacket: String?, durationNs: Int64,
        packets: PacketCounts, skipped: [SkipRecord]
    ) {
        self.inputs = inputs
        self.filter = filter
        self.firstPacket = firstPacket
        self.lastPacket = lastPacket
        self.durationNs = durationNs
        self.packets = packets
        self.skipped = skipped
        caveats = Self.caveats(inputs: inputs, kernel: nil, packets: packets)
    }

    static func caveats(inputs: [InputRecord], kernel: KernelRecord?, packets: PacketCounts) -> [String] {
        var caveats: [String] = []
        if packets.snaplenCut > 0 {
            let snaplens = Set(inputs.map(\.snaplen)).sorted().map(String.init).joined(separator: ", ")
            caveats.append(
                "Payloads were cut: \(packets.snaplenCut) of \(packets.read) packets are shorter than on the wire (snapshot length \(snaplens) bytes). HTTP-level verdicts (status, headers, framing) are limited to what was captured; verdicts on those connections rest on the TCP headers (who sent what, when).")
        }
        for input in inputs where input.stop == "read_error" {
            caveats.append(
                "The input \(input.path) ended early after \(input.packetsRead) packets (\(input.error ?? "read error")): connections still open at that point are not judged by how they ended.")
        }
        if let kernel, kernel.dropped + kernel.interfaceDropped > 0 {
            caveats.append(
                "The kernel dropped \(kernel.dropped) packets (the interface \(kernel.interfaceDropped)) during the capture: a verdict that rests on a missing packet may be wrong.")
        }
        return caveats
    }
}

public struct FlowCounts: Codable, Sendable, Equatable {
    public var total: Int
    public var byConnState: [String: Int]
    public var flagged: Int
    public var peakActive: Int
    public var evicted: Int
}

/// The end-of-analysis document (JSON `capture` and `flows` summary, and the text header).
public struct SummaryRecord: Codable, Sendable, Equatable {
    public var type = "summary"
    public var schema: String
    public var capture: CaptureRecord
    public var flows: FlowCounts
    /// DNS over UDP; absent when there was none.
    public var dns: DNSRecord?
    /// The capture-wide diagnosis: per upstream causes, inferences, client-side failures.
    public var diagnosis: Conclusions?
    /// The gateway's log lines joined to the flows (`--gateway-log`); absent without logs.
    public var gatewayLogs: GatewayLogConclusions?
}

/// Collects flow records as they finish, keeping counts for all and the records of at most
/// `keep` flagged and `keep` other flows, so memory stays bounded on long captures.
public struct ReportBuilder: Sendable {
    public static let schema = "capdiag/3"
    public let keep: Int
    public private(set) var total = 0
    public private(set) var byConnState: [String: Int] = [:]
    public private(set) var flaggedCount = 0
    public private(set) var flagged: [FlowRecord] = []
    public private(set) var others: [FlowRecord] = []

    /// Keeps the newest flows of each kind rather than the first (a capture that runs for
    /// weeks lists what happened lately).
    public let newest: Bool

    public init(keep: Int = 50, newest: Bool = false) {
        self.keep = keep
        self.newest = newest
    }

    public mutating func add(_ record: FlowRecord) {
        count(connState: record.connState, flagged: record.isFlagged)
        if record.isFlagged {
            Self.keep(record, in: &flagged, limit: keep, newest: newest)
        } else {
            Self.keep(record, in: &others, limit: keep, newest: newest)
        }
    }

    private static func keep(_ record: FlowRecord, in list: inout [FlowRecord], limit: Int, newest: Bool) {
        if list.count < limit {
            list.append(record)
        } else if newest && limit > 0 {
            list.removeFirst()
            list.append(record)
        }
    }

    /// Counts a flow, building its record only when it is one of those kept: formatting
    /// every flow's times would cost more than tracking it.
    public mutating func add(_ flow: TCPFlow, session: ProtocolSession? = nil, diagnosis: FlowDiagnosis? = nil, frameRuns: FrameRuns? = nil) {
        let isFlagged = diagnosis.map { !$0.isHealthy } ?? FlowRecord.isFlagged(flow, session: session)
        let kept = (newest && keep > 0) || (isFlagged ? flagged.count < keep : others.count < keep)
        guard kept else {
            count(connState: flow.connState.rawValue, flagged: isFlagged)
            return
        }
        add(FlowRecord(flow, session: session, diagnosis: diagnosis, frameRuns: frameRuns))
    }

    private mutating func count(connState: String, flagged isFlagged: Bool) {
        total += 1
        byConnState[connState, default: 0] += 1
        if isFlagged { flaggedCount += 1 }
    }

    public func summary(
        inputs: [InputRecord], filter: String?, stats: AnalyzerStats, table: FlowTable<ProtocolSession>,
        dns: DNSTracker? = nil
    ) -> SummaryRecord {
        let skipped = stats.skipped.map { SkipRecord(layer: $0.key.layer.name, reason: $0.key.reason.name, count: $0.value) }
            .sorted { ($0.count, $1.layer, $1.reason) > ($1.count, $0.layer, $0.reason) }
        var capture = CaptureRecord(
            inputs: inputs, filter: filter, firstPacket: stats.firstTime?.iso8601, lastPacket: stats.lastTime?.iso8601,
            durationNs: stats.firstTime.flatMap { first in stats.lastTime.map { $0 - first } } ?? 0,
            packets: PacketCounts(
                read: stats.packets, decoded: stats.decoded, skipped: stats.skippedTotal, tcp: stats.tcp,
                udp: stats.udp, icmp: stats.icmp, icmpErrorsMatched: stats.icmpErrorsMatched,
                icmpErrorsUnmatched: stats.icmpErrorsUnmatched, snaplenCut: stats.snaplenCut,
                capturedBytes: stats.capturedBytes),
            skipped: skipped)
        capture.reassembly = ReassemblyRecord(table.reassemblyMemory)
        return SummaryRecord(
            schema: Self.schema, capture: capture,
            flows: FlowCounts(
                total: total, byConnState: byConnState, flagged: flaggedCount, peakActive: table.peakFlows,
                evicted: table.evictedFlows),
            dns: dns.flatMap { $0.queries + $0.responses + $0.malformed > 0 ? DNSRecord($0) : nil })
    }
}
