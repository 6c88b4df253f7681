import CapdiagFlow
import CapdiagProtocols
import CapdiagWire

/// What a connection speaks, decided from its first payload bytes (by content, not port).
public enum Application: Sendable {
    case undecided
    case http(HTTPConnection)
    case tls(TLSConnection)
    case dns(DNSStream)
    /// HTTP/2 with prior knowledge (the client's first bytes are the connection preface,
    /// RFC 9113 §3.4, or the server's its SETTINGS): frames, streams, HPACK.
    case http2(HTTP2Connection)
    /// Something else: the reason it is not analysed (e.g. "server spoke first").
    case other(String)

    public var name: String {
        switch self {
        case .undecided: "none"
        case .http: "http"
        case .tls: "tls"
        case .dns: "dns"
        case .http2: "http2"
        case .other: "other"
        }
    }
}

/// The protocol analyzer of one connection, held by reference so that each packet updates it
/// in place: copying the analyzers' state in and out of an enum for every packet cost more than
/// the parsing. One is allocated per connection that carries payload, never per packet. The
/// pipeline is single-threaded; the box is never shared between threads.
///
/// HTTP/1 is held inline (most connections); TLS, DNS and HTTP/2 each in a box of their own,
/// allocated only for a connection that speaks them. With all four inline every connection's
/// state took about 2.5 KB, three quarters of it never used, and a terminated flow keeps its
/// state through the close linger.
final class ApplicationState: @unchecked Sendable {
    /// What the connection speaks now: lets the packet path pick the analyzer without reading
    /// (and so copying) the optional analyzers themselves.
    enum Kind { case undecided, http, tls, dns, http2, other }

    private(set) var kind = Kind.undecided
    var http: HTTPConnection?
    private var tlsBox: Box<TLSConnection>?
    private var dnsBox: Box<DNSStream>?
    private var http2Box: Box<HTTP2Connection>?
    var other: String?

    init(_ application: Application) {
        switch application {
        case .http(let connection): http = connection
        case .tls(let connection): tls = connection
        case .dns(let stream): dns = stream
        case .other(let reason): other = reason
        case .http2(let connection): http2 = connection
        case .undecided: break
        }
        updateKind()
    }

    var tls: TLSConnection? {
        get { tlsBox?.value }
        set { tlsBox = newValue.map(Box.init); updateKind() }
    }

    var dns: DNSStream? {
        get { dnsBox?.value }
        set { dnsBox = newValue.map(Box.init); updateKind() }
    }

    /// Set once an HTTP/1.1 connection upgrades to h2c (or for prior knowledge).
    var http2: HTTP2Connection? {
        get { http2Box?.value }
        set { http2Box = newValue.map(Box.init); updateKind() }
    }

    /// The analyzers updated in place through their box (a `set` through the optional
    /// properties above would copy the analyzer out and back).
    func updateTLS(_ change: (inout TLSConnection) -> Void) { if let tlsBox { change(&tlsBox.value) } }
    func updateDNS(_ change: (inout DNSStream) -> Void) { if let dnsBox { change(&dnsBox.value) } }
    func updateHTTP2(_ change: (inout HTTP2Connection) -> Void) { if let http2Box { change(&http2Box.value) } }

    /// Runs `change` on the HTTP/1 connection where it is stored (nil without one).
    func updateHTTP<Result>(_ change: (inout HTTPConnection) -> Result) -> Result? { http?.update(change) }

    private func updateKind() {
        // The same precedence as `application`.
        kind = http2Box != nil ? .http2 : http != nil ? .http : tlsBox != nil ? .tls : dnsBox != nil ? .dns
            : other != nil ? .other : .undecided
    }

    var application: Application {
        // An HTTP/1.1 connection upgraded to h2c is an HTTP/2 connection from then on.
        if let http2 { return .http2(http2) }
        if let http { return .http(http) }
        if let tls { return .tls(tls) }
        if let dns { return .dns(dns) }
        if let other { return .other(other) }
        return .undecided
    }
}

extension HTTPConnection {
    /// Optional chaining on a mutating method works on the stored value in place.
    fileprivate mutating func update<Result>(_ change: (inout HTTPConnection) -> Result) -> Result { change(&self) }
}

/// A rarely used analyzer, allocated apart from the common connection state.
private final class Box<Value> {
    var value: Value
    init(_ value: Value) { self.value = value }
}

/// How the protocol analysis of every flow is configured: passed down from the analysis's
/// options, never global.
public struct ProtocolOptions: Sendable, Equatable {
    /// Mask credentials (targets, quoted header lines) in what the analysis keeps.
    public var redact = true
    public init() {}
}

/// Per-flow stream reassembly and protocol analysis, carried by the flow table beside each
/// `TCPFlow`.
public struct ProtocolSession: FlowSession, Sendable {
    public private(set) var clientStream = StreamReassembler()
    public private(set) var serverStream = StreamReassembler()
    var state: ApplicationState?
    var clientClosed = false
    var serverClosed = false
    /// The server spoke first; the client's first bytes may still say HTTP/2 (an h2c server
    /// sends its SETTINGS before the client's preface arrives).
    var awaitingClientFirstBytes = false

    /// Mask credentials in what the HTTP analysis keeps (from the analysis's options).
    var redact = true

    public init() {}

    public init(configuration: ProtocolOptions) { redact = configuration.redact }

    /// What the connection speaks and its analysis (a copy, for reports).
    public var application: Application { state?.application ?? .undecided }

    public mutating func segment(
        _ segment: TCPSegment, payload: RawSpan, from direction: Direction, dataOffset: Int64?, flow: SegmentContext,
        memory: inout ReassemblyMemory
    ) {
        let side: StreamSide = direction == .originator ? .client : .server
        let packet = segment.packet
        if let dataOffset, payload.byteCount > 0 {
            if state == nil {
                let header = segment.header
                if header.sourcePort == 53 || header.destinationPort == 53 {
                    // DNS over TCP has no signature to detect; port 53 decides.
                    state = ApplicationState(
                        .dns(DNSStream(client: flow.originator.description, server: flow.responder.description)))
                } else {
                    state = ApplicationState(Self.detect(payload, from: side, redact: redact))
                    awaitingClientFirstBytes = side == .server && state?.other != nil
                }
            } else if awaitingClientFirstBytes && side == .client && dataOffset == 0 {
                awaitingClientFirstBytes = false
                if case .http2 = Self.detect(payload, from: .client) { state = ApplicationState(.http2(HTTP2Connection(redact: redact))) }
            }
            var sink = ApplicationSink(state: state, side: side)
            if side == .client {
                clientStream.add(payload, at: dataOffset, packet: packet, to: &sink, memory: &memory)
                if segment.payloadLength > payload.byteCount {
                    clientStream.skip(to: dataOffset + Int64(segment.payloadLength), packet: packet, to: &sink, memory: &memory)
                }
            } else {
                serverStream.add(payload, at: dataOffset, packet: packet, to: &sink, memory: &memory)
                if segment.payloadLength > payload.byteCount {
                    serverStream.skip(to: dataOffset + Int64(segment.payloadLength), packet: packet, to: &sink, memory: &memory)
                }
            }
        }
        // Bytes the peer acknowledged but the capture never had will not come again: stop
        // waiting for them (capture loss).
        if segment.header.flags.contains(.ack) && !segment.header.flags.contains(.rst),
            let acknowledged = flow.peerBytesAcknowledged
        {
            var sink = ApplicationSink(state: state, side: side == .client ? .server : .client)
            if side == .client {
                if let end = serverStream.bufferedEnd, acknowledged > serverStream.next {
                    serverStream.skip(to: min(acknowledged, end), packet: packet, to: &sink, memory: &memory)
                }
            } else if let end = clientStream.bufferedEnd, acknowledged > clientStream.next {
                clientStream.skip(to: min(acknowledged, end), packet: packet, to: &sink, memory: &memory)
            }
        }
        let flags = segment.header.flags
        if flags.contains(.fin) || flags.contains(.rst) {
            close(side, by: flags.contains(.rst) ? .rst : .fin, packet: packet, memory: &memory)
        }
    }

    public mutating func end(_ flow: TCPFlow, memory: inout ReassemblyMemory) {
        // Only the end of the capture cuts a message short; an idle or evicted flow is not closed.
        let notify = flow.end == .endOfCapture
        if !clientClosed { close(.client, by: .endOfCapture, packet: flow.last, notify: notify, memory: &memory) }
        if !serverClosed { close(.server, by: .endOfCapture, packet: flow.last, notify: notify, memory: &memory) }
        // Bytes that arrived beyond a hole after a side closed are never delivered (as before);
        // their memory goes back.
        clientStream.discard(memory: &memory)
        serverStream.discard(memory: &memory)
        state?.http?.finish()
        state?.updateHTTP2 { $0.finish() }
        state?.updateDNS { $0.finish() }
    }

    public mutating func terminated() { state?.http?.releaseSpareCapacity() }

    /// Flushes one side's stream and tells the application it closed.
    private mutating func close(
        _ side: StreamSide, by kind: CloseKind, packet: PacketRef, notify: Bool = true, memory: inout ReassemblyMemory
    ) {
        var sink = ApplicationSink(state: state, side: side)
        if side == .client {
            guard !clientClosed else { return }
            clientClosed = true
            clientStream.flush(packet: packet, to: &sink, memory: &memory)
        } else {
            guard !serverClosed else { return }
            serverClosed = true
            serverStream.flush(packet: packet, to: &sink, memory: &memory)
        }
        if notify { sink.closed(kind, packet: packet) }
    }

    /// Methods a request line starts with (RFC 9110 §9, WebDAV, and a few in common use).
    static let knownMethods: Set<String> = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "PROPFIND", "PROPPATCH",
        "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "SEARCH", "REPORT", "MKACTIVITY", "CHECKOUT", "MERGE", "M-SEARCH",
        "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE", "PURGE", "LINK", "UNLINK", "ACL", "BIND", "REBIND", "UNBIND",
        "MKCALENDAR", "VERSION-CONTROL", "UPDATE", "LABEL", "BASELINE-CONTROL", "MKWORKSPACE", "ORDERPATCH", "QUERY",
    ]

    /// Decides the protocol from the first payload bytes seen (the first segment).
    static func detect(_ bytes: RawSpan, from side: StreamSide, redact: Bool = true) -> Application {
        let count = min(bytes.byteCount, 8)
        var prefix: [UInt8] = []
        prefix.reserveCapacity(count)
        for index in 0..<count { prefix.append(bytes.unsafeLoad(fromByteOffset: index, as: UInt8.self)) }
        if side == .server {
            if prefix.starts(with: Array("HTTP/".prefix(count).utf8)) { return .http(HTTPConnection(redact: redact)) }
            // An h2c server speaks first: its SETTINGS frame (type 4 on stream 0, a whole number
            // of 6-byte parameters; RFC 9113 §3.4, §6.5).
            if bytes.byteCount >= 9 && prefix[3] == 4 && prefix[5] & 0x7F == 0 && prefix[6] == 0 && prefix[7] == 0
                && bytes.unsafeLoad(fromByteOffset: 8, as: UInt8.self) == 0
                && (Int(prefix[0]) << 16 | Int(prefix[1]) << 8 | Int(prefix[2])) % 6 == 0
            {
                return .http2(HTTP2Connection(redact: redact))
            }
            return .other("server spoke first")
        }
        // The HTTP/2 connection preface, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" (RFC 9113 §3.4): its
        // first eight bytes are no HTTP/1 request a client would send.
        if prefix.count >= 8 && prefix.elementsEqual("PRI * HT".utf8) { return .http2(HTTP2Connection(redact: redact)) }
        // A TLS handshake record: content type 22, version major 3 (RFC 8446 §5.1).
        if prefix.count >= 2 && prefix[0] == 0x16 && prefix[1] == 0x03 { return .tls(TLSConnection()) }
        // A request line starts with a method token and a space (RFC 9112 §3). A line protocol
        // ("HELLO host", "USER x") looks the same, so the token must be a known method or the
        // first line must end in an HTTP version.
        let token = prefix.prefix { byte in
            (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
        }
        guard !token.isEmpty, token.count == prefix.count || prefix[token.count] == UInt8(ascii: " ") else {
            return .other("not HTTP or TLS")
        }
        if knownMethods.contains(String(decoding: token, as: UTF8.self)) || firstLineEndsInHTTPVersion(bytes) {
            return .http(HTTPConnection(redact: redact))
        }
        // A long method cut at eight bytes: decide on the whole first line.
        return .other("not HTTP or TLS")
    }

    /// Whether the first line of `bytes` (within 4 KiB) ends in ` HTTP/d.d`.
    static func firstLineEndsInHTTPVersion(_ bytes: RawSpan) -> Bool {
        let limit = min(bytes.byteCount, 4096)
        var end = -1
        for index in 0..<limit where bytes.unsafeLoad(fromByteOffset: index, as: UInt8.self) == UInt8(ascii: "\n") {
            end = index
            break
        }
        guard end >= 0 else { return false }
        if end > 0 && bytes.unsafeLoad(fromByteOffset: end - 1, as: UInt8.self) == UInt8(ascii: "\r") { end -= 1 }
        guard end >= 9 else { return false }
        var tail: [UInt8] = []
        for index in (end - 9)..<end { tail.append(bytes.unsafeLoad(fromByteOffset: index, as: UInt8.self)) }
        return tail[0..<6].elementsEqual(" HTTP/".utf8) && tail[6].isASCIIDigit && tail[7] == UInt8(ascii: ".") && tail[8].isASCIIDigit
    }
}

extension UInt8 {
    fileprivate var isASCIIDigit: Bool { self >= UInt8(ascii: "0") && self <= UInt8(ascii: "9") }
}

/// Forwards reassembled bytes of one side to the connection's analyzer, in place.
struct ApplicationSink: StreamSink {
    /// Not retained: a sink lives only for one call on the session that owns the state (a local
    /// of `segment` or `close`), and retaining the state for every packet took a cache miss on
    /// its reference count under an atomic (locked) instruction, about 6 % of the run.
    unowned(unsafe) let state: ApplicationState?
    let side: StreamSide

    mutating func data(_ bytes: RawSpan, packet: PacketRef) {
        guard let state else { return }
        let side = self.side
        switch state.kind {
        case .http2:
            state.updateHTTP2 { $0.received(bytes, from: side, packet: packet) }
        case .http:
            // In place: reading the connection out of its box for every chunk (to look at its
            // tunnel) copied its 730 bytes and retained everything in it.
            let tunnelStart = state.updateHTTP { http -> Int64? in
                let before = side == .client ? http.tunnelledBytes.client : http.tunnelledBytes.server
                http.received(bytes, from: side, packet: packet)
                // Only where this side's tunnel may just have begun.
                guard before == 0, http.tunnelled else { return nil }
                return side == .client ? http.tunnelledBytes.client : http.tunnelledBytes.server
            }
            if let fresh = tunnelStart ?? nil, let http = state.http {
                Self.switchToHTTP2IfUpgraded(state, http, bytes, side: side, fresh: fresh, packet: packet)
            }
        case .tls:
            state.updateTLS { $0.received(bytes, from: side, packet: packet) }
        case .dns:
            state.updateDNS { $0.received(bytes, from: side, packet: packet) }
        case .other, .undecided:
            break
        }
    }

    /// After `101 Switching Protocols` the HTTP/1 parser only counts tunnel bytes. When the
    /// first of them are HTTP/2 — the client's connection preface, or the server's SETTINGS
    /// frame that an h2c server sends at once (RFC 9113 §3.2) — the connection continues as
    /// HTTP/2 from that byte on, with the upgrade request as stream 1.
    static func switchToHTTP2IfUpgraded(
        _ state: ApplicationState, _ http: HTTPConnection, _ bytes: RawSpan, side: StreamSide, fresh: Int64, packet: PacketRef
    ) {
        // Only at the very first tunnel bytes of this side, all of them in this chunk.
        guard fresh > 0, fresh <= Int64(bytes.byteCount), let upgrade = http.exchanges.last(where: { $0.status == 101 })
        else { return }
        let tunnel = bytes.extracting((bytes.byteCount - Int(fresh))..<bytes.byteCount)
        guard case .http2 = ProtocolSession.detect(tunnel, from: side) else { return }
        var connection = HTTP2Connection(upgradedFrom: upgrade, redact: http.redact)
        connection.received(tunnel, from: side, packet: packet)
        state.http2 = connection
    }

    mutating func gap(_ length: Int64, packet: PacketRef) {
        guard let state else { return }
        let side = self.side
        // After an h2c upgrade both the HTTP/1 and the HTTP/2 connection hear of it.
        state.http?.gap(length, from: side, packet: packet)
        state.updateHTTP2 { $0.gap(length, from: side, packet: packet) }
        state.updateTLS { $0.gap(from: side) }
        state.updateDNS { $0.gap() }
    }

    func closed(_ kind: CloseKind, packet: PacketRef) {
        state?.http?.closed(side, by: kind, packet: packet)
        state?.updateHTTP2 { $0.closed(side, by: kind, packet: packet) }
    }
}
