import CapdiagFlow
import CapdiagProtocols
import CapdiagWire

/// What a connection speaks, decided from its first payload bytes (by content, not port).
public enum Application: Sendable {
    case undecided
    case http(HTTPConnection)
    case tls(TLSConnection)
    case dns(DNSStream)
    /// Something else: the reason it is not analysed (e.g. "server spoke first").
    case other(String)

    public var name: String {
        switch self {
        case .undecided: "none"
        case .http: "http"
        case .tls: "tls"
        case .dns: "dns"
        case .other: "other"
        }
    }
}

/// Per-flow stream reassembly and protocol analysis, carried by the flow table beside each
/// `TCPFlow`.
public struct ProtocolSession: FlowSession, Sendable {
    public private(set) var clientStream = StreamReassembler()
    public private(set) var serverStream = StreamReassembler()
    public private(set) var application: Application = .undecided
    var clientClosed = false
    var serverClosed = false

    public init() {}

    public mutating func segment(
        _ segment: TCPSegment, payload: RawSpan, from direction: Direction, dataOffset: Int64?, flow: borrowing TCPFlow
    ) {
        let side: StreamSide = direction == .originator ? .client : .server
        let packet = segment.packet
        if let dataOffset, payload.byteCount > 0 {
            if case .undecided = application {
                let header = segment.header
                if header.sourcePort == 53 || header.destinationPort == 53 {
                    // DNS over TCP has no signature to detect; port 53 decides.
                    application = .dns(DNSStream(client: flow.originator.description, server: flow.responder.description))
                } else {
                    application = Self.detect(payload, from: side)
                }
            }
            var sink = ApplicationSink(application: application, side: side)
            application = .undecided
            if side == .client {
                clientStream.add(payload, at: dataOffset, packet: packet, to: &sink)
                if segment.payloadLength > payload.byteCount {
                    clientStream.skip(to: dataOffset + Int64(segment.payloadLength), packet: packet, to: &sink)
                }
            } else {
                serverStream.add(payload, at: dataOffset, packet: packet, to: &sink)
                if segment.payloadLength > payload.byteCount {
                    serverStream.skip(to: dataOffset + Int64(segment.payloadLength), packet: packet, to: &sink)
                }
            }
            application = sink.application
        }
        // Bytes the peer acknowledged but the capture never had will not come again: stop
        // waiting for them (capture loss).
        if segment.header.flags.contains(.ack) && !segment.header.flags.contains(.rst),
            let acknowledged = flow[direction.other].acknowledgedOffset
        {
            withStream(side == .client ? .server : .client) { stream, sink in
                if let end = stream.bufferedEnd, acknowledged > stream.next {
                    stream.skip(to: min(acknowledged, end), packet: packet, to: &sink)
                }
            }
        }
        let flags = segment.header.flags
        if flags.contains(.fin) || flags.contains(.rst) {
            close(side, by: flags.contains(.rst) ? .rst : .fin, packet: packet)
        }
    }

    public mutating func end(_ flow: TCPFlow) {
        // Only the end of the capture cuts a message short; an idle or evicted flow is not closed.
        let notify = flow.end == .endOfCapture
        if !clientClosed { close(.client, by: .endOfCapture, packet: flow.last, notify: notify) }
        if !serverClosed { close(.server, by: .endOfCapture, packet: flow.last, notify: notify) }
        switch application {
        case .http(var connection):
            connection.finish()
            application = .http(connection)
        case .dns(var stream):
            stream.finish()
            application = .dns(stream)
        default:
            break
        }
    }

    /// Flushes one side's stream and tells the application it closed.
    private mutating func close(_ side: StreamSide, by kind: CloseKind, packet: PacketRef, notify: Bool = true) {
        if side == .client {
            guard !clientClosed else { return }
            clientClosed = true
        } else {
            guard !serverClosed else { return }
            serverClosed = true
        }
        withStream(side) { stream, sink in
            stream.flush(packet: packet, to: &sink)
            if notify { sink.closed(kind, packet: packet) }
        }
    }

    /// Runs `body` with one side's reassembler and a sink owning the application state.
    private mutating func withStream(_ side: StreamSide, _ body: (inout StreamReassembler, inout ApplicationSink) -> Void) {
        var sink = ApplicationSink(application: application, side: side)
        application = .undecided
        if side == .client { body(&clientStream, &sink) } else { body(&serverStream, &sink) }
        application = sink.application
    }

    /// Decides the protocol from the first payload bytes seen.
    static func detect(_ bytes: RawSpan, from side: StreamSide) -> Application {
        let count = min(bytes.byteCount, 8)
        var prefix: [UInt8] = []
        prefix.reserveCapacity(count)
        for index in 0..<count { prefix.append(bytes.unsafeLoad(fromByteOffset: index, as: UInt8.self)) }
        if side == .server {
            return prefix.starts(with: Array("HTTP/".prefix(count).utf8)) ? .http(HTTPConnection()) : .other("server spoke first")
        }
        // A TLS handshake record: content type 22, version major 3 (RFC 8446 §5.1).
        if prefix.count >= 2 && prefix[0] == 0x16 && prefix[1] == 0x03 { return .tls(TLSConnection()) }
        // A request line starts with a method token and a space (RFC 9112 §3).
        let token = prefix.prefix { byte in
            (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
        }
        if !token.isEmpty && (token.count == prefix.count || prefix[token.count] == UInt8(ascii: " ")) {
            return .http(HTTPConnection())
        }
        return .other("not HTTP or TLS")
    }
}

/// Forwards reassembled bytes to the application analyzer of one side.
struct ApplicationSink: StreamSink {
    var application: Application
    let side: StreamSide

    mutating func data(_ bytes: RawSpan, packet: PacketRef) {
        let streamPacket = StreamPacket(frame: packet.frame, time: packet.time)
        switch application {
        case .http(var connection):
            application = .undecided
            connection.received(bytes, from: side, packet: streamPacket)
            application = .http(connection)
        case .tls(var connection):
            application = .undecided
            connection.received(bytes, from: side, packet: streamPacket)
            application = .tls(connection)
        case .dns(var stream):
            application = .undecided
            stream.received(bytes, from: side, packet: streamPacket)
            application = .dns(stream)
        case .undecided, .other:
            break
        }
    }

    mutating func gap(_ length: Int64, packet: PacketRef) {
        switch application {
        case .http(var connection):
            application = .undecided
            connection.gap(length, from: side, packet: StreamPacket(frame: packet.frame, time: packet.time))
            application = .http(connection)
        case .tls(var connection):
            application = .undecided
            connection.gap(from: side)
            application = .tls(connection)
        case .dns(var stream):
            application = .undecided
            stream.gap()
            application = .dns(stream)
        case .undecided, .other:
            break
        }
    }

    mutating func closed(_ kind: CloseKind, packet: PacketRef) {
        guard case .http(var connection) = application else { return }
        application = .undecided
        connection.closed(side, by: kind, packet: StreamPacket(frame: packet.frame, time: packet.time))
        application = .http(connection)
    }
}
