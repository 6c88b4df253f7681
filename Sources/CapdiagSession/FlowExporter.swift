import CapdiagCapture
import CapdiagProtocols
import CapdiagWire

/// How much of each packet's TCP payload an exported pcap keeps (`--export-payload`).
public enum ExportPayload: String, Sendable, CaseIterable {
    /// Only link, IP and TCP headers (the packets look cut by a small snaplen).
    case none
    /// HTTP message heads (request and status lines, header sections), with credential header
    /// values masked; bodies and other payload are cut.
    case headers
    /// Everything; credential header values still masked unless redaction is off.
    case all
}

/// One flow to write: its two ends, its frames, and the file.
public struct FlowSelection: Sendable {
    public var id: Int
    public var originator: (address: IPAddress, port: UInt16)
    public var responder: (address: IPAddress, port: UInt16)
    public var firstFrame: Int
    public var lastFrame: Int
    public var path: String

    public init(id: Int, originator: (IPAddress, UInt16), responder: (IPAddress, UInt16), firstFrame: Int, lastFrame: Int, path: String) {
        self.id = id
        self.originator = originator
        self.responder = responder
        self.firstFrame = firstFrame
        self.lastFrame = lastFrame
        self.path = path
    }

    func matches(_ source: IPAddress, _ sourcePort: UInt16, _ destination: IPAddress, _ destinationPort: UInt16) -> Bool {
        (source == originator.address && sourcePort == originator.port && destination == responder.address && destinationPort == responder.port)
            || (source == responder.address && sourcePort == responder.port && destination == originator.address
                && destinationPort == originator.port)
    }
}

/// Writes selected flows, each to its own pcap, in a second pass over the same inputs (same
/// files, same filter, so frame numbers match the analysis). A flow's file holds its TCP
/// packets, the ICMP errors that quote it, and the DNS answers (with their queries) that gave
/// out the upstream's address during the minute before the flow, with payload cut or masked.
public struct FlowExporter {
    /// A DNS packet seen recently, kept to be written ahead of the flows it led to.
    struct DNSPacket {
        var time: Timestamp
        var linkType: Int32
        var wireLength: Int
        var bytes: [UInt8]
        var id: UInt16
        var isResponse: Bool
        var answers: [String]
        var source: IPAddress
        var destination: IPAddress
    }
    static let dnsWindow: Int64 = 60_000_000_000
    static let dnsKept = 256

    public private(set) var written: [Int: Int] = [:]
    /// Packets not written because their link type differed from the flow's first packet.
    public private(set) var skippedLinkType = 0
    /// Mask credentials in the payload kept (on unless `--no-redact`).
    public var redact = true

    public init(redact: Bool = true) { self.redact = redact }

    public mutating func export(
        paths: [String], filter: String?, limit: Int?, flows: [FlowSelection], payload: ExportPayload
    ) throws(CaptureError) {
        guard !flows.isEmpty else { return }
        let reader = try OfflineReader(paths: paths, filter: filter)
        let byFirst = flows.sorted { $0.firstFrame < $1.firstFrame }
        var next = 0
        var open: [Int: (selection: FlowSelection, file: PcapDumpFile, linkType: Int32)] = [:]
        var frame = 0
        var failure: CaptureError?
        var buffer: [UInt8] = []
        var recentDNS: [DNSPacket] = []
        let redact = self.redact
        func close(_ file: PcapDumpFile) {
            do { try file.close() } catch { if failure == nil { failure = error } }
        }
        reader.read(limit: limit) { metadata, linkType, bytes in
            frame += 1
            let decoded = try? PacketDecoder.decode(bytes, linkType: linkType)
            if let decoded, case .udp(let udp) = decoded.transport, udp.sourcePort == 53 || udp.destinationPort == 53 {
                var copy: [UInt8] = []
                for index in 0..<bytes.byteCount { copy.append(bytes.unsafeLoad(fromByteOffset: index, as: UInt8.self)) }
                let payloadEnd = min(copy.count, decoded.payloadOffset + decoded.capturedPayloadLength)
                if decoded.payloadOffset < payloadEnd, let message = DNSMessage(Array(copy[decoded.payloadOffset..<payloadEnd])) {
                    recentDNS.append(
                        DNSPacket(
                            time: metadata.timestamp, linkType: reader.inputs[metadata.sourceIndex].linkType, wireLength: metadata.wireLength,
                            bytes: copy, id: message.id, isResponse: message.isResponse, answers: message.answers,
                            source: decoded.ip.source, destination: decoded.ip.destination))
                    recentDNS.removeAll { metadata.timestamp - $0.time > Self.dnsWindow }
                    if recentDNS.count > Self.dnsKept { recentDNS.removeFirst(recentDNS.count - Self.dnsKept) }
                }
            }
            while next < byFirst.count && byFirst[next].firstFrame <= frame {
                let selection = byFirst[next]
                next += 1
                let dlt = reader.inputs[metadata.sourceIndex].linkType
                let file: PcapDumpFile
                do { file = try PcapDumpFile(path: selection.path, linkType: dlt) } catch let error as CaptureError {
                    failure = error
                    return false
                } catch {
                    return false
                }
                open[selection.id] = (selection, file, dlt)
                // The latest DNS answer that named this upstream, and the query it answers.
                let address = selection.responder.address.description
                let answers = recentDNS.last { $0.isResponse && $0.answers.contains(address) && $0.linkType == dlt }.map { [$0] } ?? []
                let related = recentDNS.filter { packet in
                    answers.contains { answer in
                        answer.id == packet.id && (packet.isResponse ? answer.time == packet.time : packet.source == answer.destination)
                    }
                }
                for packet in related {
                    file.write(time: packet.time, bytes: packet.bytes, count: packet.bytes.count, wireLength: packet.wireLength)
                    written[selection.id, default: 0] += 1
                }
            }
            guard !open.isEmpty, let decoded else { return next < byFirst.count || !open.isEmpty }
            var owners: [Int] = []
            switch decoded.transport {
            case .tcp(let tcp):
                owners = open.values.filter { $0.selection.matches(decoded.ip.source, tcp.sourcePort, decoded.ip.destination, tcp.destinationPort) }.map(\.selection.id)
            case .icmp(let message):
                if message.isError, let quoted = message.quoted {
                    owners = open.values.filter { $0.selection.matches(quoted.source, quoted.sourcePort, quoted.destination, quoted.destinationPort) }.map(\.selection.id)
                }
            default:
                break
            }
            for id in owners {
                guard let entry = open[id] else { continue }
                guard entry.linkType == reader.inputs[metadata.sourceIndex].linkType else {
                    skippedLinkType += 1
                    continue
                }
                buffer.removeAll(keepingCapacity: true)
                for index in 0..<bytes.byteCount { buffer.append(bytes.unsafeLoad(fromByteOffset: index, as: UInt8.self)) }
                let kept = Self.keep(
                    &buffer, payloadOffset: decoded.payloadOffset, payloadLength: decoded.capturedPayloadLength, payload: payload,
                    redact: redact)
                entry.file.write(time: metadata.timestamp, bytes: buffer, count: kept, wireLength: metadata.wireLength)
                written[id, default: 0] += 1
            }
            for (id, entry) in open where entry.selection.lastFrame <= frame {
                close(entry.file)
                open[id] = nil
            }
            return next < byFirst.count || !open.isEmpty
        }
        for entry in open.values { close(entry.file) }
        if let failure { throw failure }
    }

    /// Applies the payload policy to one packet's bytes and returns how many to write.
    static func keep(_ bytes: inout [UInt8], payloadOffset: Int, payloadLength: Int, payload: ExportPayload, redact: Bool) -> Int {
        let payloadEnd = min(bytes.count, payloadOffset + payloadLength)
        guard payloadLength > 0, payloadOffset <= payloadEnd else { return bytes.count }
        switch payload {
        case .none:
            return payloadOffset
        case .all:
            if redact { Redaction.maskHeaders(in: &bytes, from: payloadOffset, to: payloadEnd) }
            return bytes.count
        case .headers:
            guard startsHTTPMessage(bytes, at: payloadOffset, end: payloadEnd) else { return payloadOffset }
            var headEnd = payloadEnd
            var index = payloadOffset
            while index + 3 < payloadEnd {
                if bytes[index] == 0x0D && bytes[index + 1] == 0x0A && bytes[index + 2] == 0x0D && bytes[index + 3] == 0x0A {
                    headEnd = index + 4
                    break
                }
                index += 1
            }
            if redact { Redaction.maskHeaders(in: &bytes, from: payloadOffset, to: headEnd) }
            return headEnd
        }
    }

    /// Whether a segment's payload begins an HTTP request (`TOKEN SP`) or response (`HTTP/`).
    static func startsHTTPMessage(_ bytes: [UInt8], at start: Int, end: Int) -> Bool {
        if end - start >= 5 && bytes[start..<(start + 5)].elementsEqual("HTTP/".utf8) { return true }
        var index = start
        while index < end && index - start < 16 {
            let byte = bytes[index]
            if byte == 0x20 { return index > start }
            guard (0x41...0x5A).contains(byte) || byte == 0x2D || byte == 0x5F else { return false }
            index += 1
        }
        return false
    }
}
