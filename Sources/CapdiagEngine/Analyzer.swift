import CapdiagFlow
import CapdiagProtocols
import CapdiagWire

/// Options of one analysis.
public struct AnalyzerOptions: Sendable {
    public var flowTable = FlowTableOptions()
    /// What the protocol analysis keeps (redaction).
    public var protocols = ProtocolOptions()
    public init() {}
}

/// The packet pipeline: decode each frame, feed TCP segments to the flow table, tie ICMP
/// errors to their flows, and count everything that could not be decoded.
///
/// Synchronous and single-owner; feed packets in capture order. Per packet it allocates
/// nothing: headers decode into stack values and flows are updated in place.
public struct Analyzer {
    public private(set) var stats = AnalyzerStats()
    public private(set) var flows: FlowTable<ProtocolSession>
    /// DNS over UDP (port 53).
    public private(set) var dns = DNSTracker()

    public init(options: AnalyzerOptions = AnalyzerOptions()) {
        flows = FlowTable(options: options.flowTable, configuration: options.protocols)
    }

    /// Analyses one captured frame.
    /// - Parameters:
    ///   - time: capture timestamp.
    ///   - wireLength: the frame's length on the wire (the captured length is `bytes.byteCount`).
    ///   - linkType: the link-layer header type of the frame's source.
    ///   - bytes: the captured bytes, borrowed for the duration of the call.
    public mutating func feed(time: Timestamp, wireLength: Int, linkType: LinkType, bytes: RawSpan) {
        stats.packets += 1
        stats.capturedBytes += bytes.byteCount
        if stats.firstTime == nil { stats.firstTime = time }
        if stats.lastTime.map({ time > $0 }) ?? true { stats.lastTime = time }
        if bytes.byteCount < wireLength { stats.snaplenCut += 1 }
        let packet = PacketRef(frame: stats.packets, time: time)
        let decoded: DecodedPacket
        do {
            decoded = try PacketDecoder.decode(bytes, linkType: linkType)
        } catch {
            stats.count(error)
            return
        }
        stats.decoded += 1
        switch decoded.transport {
        case .tcp(let header):
            stats.tcp += 1
            let segment = TCPSegment(
                packet: packet, header: header, payloadLength: decoded.payloadLength,
                capturedPayloadLength: decoded.capturedPayloadLength,
                ipLength: decoded.ip.totalLength, ipIdentification: decoded.ip.identification)
            let payload = bytes.extracting(
                decoded.payloadOffset..<(decoded.payloadOffset + decoded.capturedPayloadLength))
            flows.apply(
                segment, payload: payload,
                sender: Endpoint(address: decoded.ip.source, port: header.sourcePort),
                receiver: Endpoint(address: decoded.ip.destination, port: header.destinationPort))
        case .udp(let udp):
            stats.udp += 1
            if udp.sourcePort == 53 || udp.destinationPort == 53 {
                // DNS is rare next to TCP: copying its payload costs one allocation per message.
                var message: [UInt8] = []
                message.reserveCapacity(decoded.capturedPayloadLength)
                for index in decoded.payloadOffset..<(decoded.payloadOffset + decoded.capturedPayloadLength) {
                    message.append(bytes.unsafeLoad(fromByteOffset: index, as: UInt8.self))
                }
                dns.message(
                    message, source: Endpoint(address: decoded.ip.source, port: udp.sourcePort).description,
                    destination: Endpoint(address: decoded.ip.destination, port: udp.destinationPort).description,
                    frame: packet.frame, time: time)
            }
        case .icmp(let message):
            stats.icmp += 1
            guard message.isError, let quoted = message.quoted, quoted.transportProtocol == IPProtocol.tcp else { return }
            let mark = ICMPMark(
                packet: packet, version: message.version, type: message.type, code: message.code, mtu: message.mtu,
                reporter: decoded.ip.source, aboutDirection: .originator)
            let matched = flows.attachICMPError(
                quotedSender: Endpoint(address: quoted.source, port: quoted.sourcePort),
                quotedReceiver: Endpoint(address: quoted.destination, port: quoted.destinationPort), mark: mark)
            if matched { stats.icmpErrorsMatched += 1 } else { stats.icmpErrorsUnmatched += 1 }
        }
    }

    /// Ends the analysis: every flow still held is finished.
    public mutating func finish() {
        flows.finishAll()
        dns.finish()
    }

    /// Ends the analysis, handing every flow still held (and any that ended before) to `body`
    /// as it ends, so the ended flows are never all held at once.
    public mutating func finish(draining body: (TCPFlow, ProtocolSession) -> Void) {
        flows.finishAll(draining: body)
        dns.finish()
    }

    /// Hands every flow that has ended since the last call to `body`.
    public mutating func drainFinishedFlows(_ body: (TCPFlow, ProtocolSession) -> Void) { flows.drainFinished(body) }

    /// Hands every flow decided since the last call (see `FlowTable.drainDecided`).
    public mutating func drainDecidedFlows(_ body: (TCPFlow, ProtocolSession) -> Void) { flows.drainDecided(body) }
}
