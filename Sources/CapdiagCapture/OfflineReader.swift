import CPcap
import CapdiagWire

/// Why reading an input stopped.
public enum StopReason: Sendable, Equatable {
    /// The file ended normally.
    case endOfFile
    /// libpcap failed mid-file (truncated record, bogus length, …): its text.
    case readError(String)
    /// `-c N` was reached.
    case packetLimit

    /// The stable name used in reports: `end_of_file`, `read_error` or `packet_limit`.
    public var code: String {
        switch self {
        case .endOfFile: "end_of_file"
        case .readError: "read_error"
        case .packetLimit: "packet_limit"
        }
    }

    /// libpcap's text when reading failed.
    public var message: String? {
        if case .readError(let text) = self { return text }
        return nil
    }
}

/// What was read from one input file.
public struct InputSummary: Sendable {
    public var path: String
    public var linkType: Int32
    public var linkTypeName: String
    public var snapshotLength: Int
    /// Packets delivered for analysis (after the BPF filter).
    public var packetsRead = 0
    public var stop: StopReason?
}

/// Reads one or more capture files through libpcap, merged in timestamp order (as
/// `mergecap` does: the earliest pending packet goes first; ties go to the earlier file).
///
/// Each file keeps one pending packet whose bytes stay valid until that file is read again,
/// so merging copies nothing.
public final class OfflineReader {
    private let handles: [PcapHandle]
    private let linkTypes: [LinkType]
    public private(set) var inputs: [InputSummary]
    /// Each frame's file and its number there, when there are several files.
    public let frameRuns: FrameRuns?

    /// Opens every file and installs the filter on each.
    /// - Throws: `CaptureError` with libpcap's text for the first file that cannot be opened
    ///   or the filter that does not compile.
    public init(paths: [String], filter: String?) throws(CaptureError) {
        var handles: [PcapHandle] = []
        var inputs: [InputSummary] = []
        for path in paths {
            let handle = try PcapHandle.openFile(path: path)
            if let filter, !filter.isEmpty { try handle.setFilter(filter) }
            handles.append(handle)
            inputs.append(
                InputSummary(
                    path: path, linkType: handle.dataLinkType, linkTypeName: handle.dataLinkName,
                    snapshotLength: handle.snapshotLength))
        }
        self.handles = handles
        self.inputs = inputs
        self.linkTypes = handles.map { LinkType(dlt: $0.dataLinkType) }
        frameRuns = paths.count > 1 ? FrameRuns(paths: paths) : nil
    }

    /// Reads packets until every file ends or `limit` packets were delivered.
    /// - Parameters:
    ///   - limit: stop after this many packets (`-c`); nil reads everything.
    ///   - body: called once per packet, in timestamp order. The bytes are valid only during
    ///     the call. Return false to stop reading.
    public func read(limit: Int? = nil, _ body: (PacketMetadata, LinkType, RawSpan) -> Bool) {
        var pending: [(header: UnsafePointer<pcap_pkthdr>, data: UnsafePointer<UInt8>)?] =
            Array(repeating: nil, count: handles.count)
        for index in handles.indices { pending[index] = advance(index) }
        var delivered = 0
        while true {
            var chosen = -1
            var earliest = Int64.max
            for index in pending.indices {
                guard let packet = pending[index] else { continue }
                let time = Self.timestamp(packet.header).nanoseconds
                if chosen < 0 || time < earliest {
                    chosen = index
                    earliest = time
                }
            }
            guard chosen >= 0, let packet = pending[chosen] else { return }
            if let limit, delivered >= limit {
                // The pending packets were read from libpcap but never delivered.
                for index in pending.indices where pending[index] != nil {
                    inputs[index].stop = .packetLimit
                    inputs[index].packetsRead -= 1
                }
                return
            }
            delivered += 1
            // The pending packet was the last one read from its file: its number there.
            frameRuns?.note(global: delivered, input: chosen, local: inputs[chosen].packetsRead)
            let header = packet.header.pointee
            let captured = Int(header.caplen)
            let metadata = PacketMetadata(
                timestamp: Timestamp(nanoseconds: earliest), capturedLength: captured,
                wireLength: Int(header.len), sourceIndex: chosen)
            let keepGoing = body(metadata, linkTypes[chosen], UnsafeRawBufferPointer(start: packet.data, count: captured).bytes)
            guard keepGoing else { return }
            pending[chosen] = advance(chosen)
        }
    }

    private func advance(_ index: Int) -> (header: UnsafePointer<pcap_pkthdr>, data: UnsafePointer<UInt8>)? {
        guard inputs[index].stop == nil else { return nil }
        switch handles[index].next() {
        case .packet(let header, let data):
            inputs[index].packetsRead += 1
            return (header, data)
        case .endOfFile, .timeout:
            // A compressed input ends early, not cleanly, when its decompressor failed.
            inputs[index].stop = handles[index].decompressorFailure().map { .readError($0) } ?? .endOfFile
        case .error(let message):
            inputs[index].stop = .readError(handles[index].decompressorFailure().map { "\(message) (\($0))" } ?? message)
        }
        return nil
    }

    /// The header's time. Offline handles are opened with nanosecond precision, so `tv_usec`
    /// holds nanoseconds; a live handle may only have microseconds (`nanosecondsPerUnit` 1000).
    @inline(__always)
    static func timestamp(_ header: UnsafePointer<pcap_pkthdr>, nanosecondsPerUnit: Int64 = 1) -> Timestamp {
        Timestamp(seconds: Int64(header.pointee.ts.tv_sec), nanoseconds: Int64(header.pointee.ts.tv_usec) &* nanosecondsPerUnit)
    }
}
