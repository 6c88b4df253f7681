import CapdiagWire

/// What a ClientHello offered (RFC 8446 §4.1.2).
public struct TLSClientHello: Sendable, Equatable {
    public var legacyVersion: UInt16
    public var serverName: String?
    /// From `supported_versions`, or the legacy version alone.
    public var offeredVersions: [UInt16]
    public var alpn: [String]
    public var cipherSuiteCount: Int
}

/// What a ServerHello chose (RFC 8446 §4.1.3).
public struct TLSServerHello: Sendable, Equatable {
    /// `supported_versions` if present (TLS 1.3), else the legacy version.
    public var version: UInt16
    public var cipherSuite: UInt16
    public var alpn: String?
}

/// An alert record. After encryption started only the sender and time are known.
public struct TLSAlert: Sendable, Equatable {
    public var side: StreamSide
    public var packet: PacketRef
    public var encrypted: Bool
    public var level: UInt8?
    public var description: UInt8?

    public init(side: StreamSide, packet: PacketRef, encrypted: Bool, level: UInt8?, description: UInt8?) {
        self.side = side
        self.packet = packet
        self.encrypted = encrypted
        self.level = level
        self.description = description
    }

    /// The RFC 8446 §6 / RFC 5246 §7.2 name, e.g. `unknown_ca`.
    public var descriptionName: String? { description.map(tlsAlertName) }
}

/// Follows a TLS connection's records in both directions, keeping only handshake facts:
/// hellos, ChangeCipherSpec, the first application data, alerts, and whether what came back
/// was TLS at all. Record bodies other than handshake messages and alerts are skipped unread.
public struct TLSConnection: Sendable {
    public static let maximumRecordLength = 16_384 + 2048
    public static let maximumHandshakeBuffer = 65_536

    public private(set) var clientHello: TLSClientHello?
    /// The packet that completed the ClientHello's first record.
    public private(set) var clientHelloPacket: PacketRef?
    public private(set) var serverHello: TLSServerHello?
    public private(set) var clientChangeCipherSpec: PacketRef?
    public private(set) var serverChangeCipherSpec: PacketRef?
    public private(set) var firstClientApplicationData: PacketRef?
    public private(set) var firstServerApplicationData: PacketRef?
    /// Encrypted records (application_data type) each side sent after the ServerHello.
    public private(set) var clientEncryptedRecords = 0
    public private(set) var serverEncryptedRecords = 0
    public private(set) var alerts: [TLSAlert] = []
    /// The packet that completed the server's first flight, after which it was the client's
    /// turn: ServerHelloDone (TLS 1.2 full handshake), the server's ChangeCipherSpec (TLS 1.2
    /// resumption), or the first encrypted record after a TLS 1.3 ServerHello.
    public private(set) var serverFlightComplete: PacketRef?
    /// The client's Finished: its ChangeCipherSpec (TLS 1.2; Finished follows it encrypted) or
    /// its first encrypted record (TLS 1.3).
    public private(set) var clientFinished: PacketRef?
    /// TLS 1.3: the client's first encrypted record after its Finished, and that record's
    /// length. An alert is 19 bytes there (2 bytes, the inner type, a 16-byte AEAD tag); any
    /// request is longer.
    public private(set) var clientRecordAfterFinished: (packet: PacketRef, length: Int)?
    /// The server answered with plain HTTP (the port does not speak TLS).
    public private(set) var plaintextHTTPReply: PacketRef?
    /// Why a direction stopped being parsed (not TLS, bad record).
    public private(set) var clientViolation: String?
    public private(set) var serverViolation: String?

    var client = RecordReader()
    var server = RecordReader()
    /// Handshake bytes not yet forming a whole message, per side.
    var clientHandshake: [UInt8] = []
    var serverHandshake: [UInt8] = []

    public init() {}

    /// Whether the handshake finished: both ChangeCipherSpecs for TLS 1.2 and earlier; for
    /// TLS 1.3, a ServerHello and then encrypted records from both sides beyond the client's
    /// Finished (an encrypted alert alone looks the same on the wire, so one is not enough).
    public var handshakeCompleted: Bool {
        guard let serverHello else { return false }
        if serverHello.version >= 0x0304 { return clientEncryptedRecords >= 2 || (clientEncryptedRecords >= 1 && serverEncryptedRecords >= 3) }
        return clientChangeCipherSpec != nil && serverChangeCipherSpec != nil
    }

    /// The longest TLS 1.3 record that can only be an alert: 2 alert bytes, the inner content
    /// type and a 16-byte tag, with a little room for padding.
    public static let longestEncryptedAlert = 24

    /// The handshake completed, then the client sent an alert and no application data — how a
    /// client rejecting the server's certificate after the handshake (nginx verifies with
    /// `proxy_ssl_verify` only then) looks on the wire, and also how a client closes a spare
    /// connection it never used (close_notify): the timing tells them apart (see the rule).
    /// TLS 1.3 hides the alert inside an application-data record: one short record after the
    /// client's Finished and nothing more.
    public var alertAfterHandshakeWithoutData: Bool { clientAlertAfterHandshake != nil }

    /// The packet of that alert.
    public var clientAlertAfterHandshake: PacketRef? {
        guard handshakeCompleted, let serverHello else { return nil }
        if serverHello.version >= 0x0304 {
            guard clientEncryptedRecords == 2, let record = clientRecordAfterFinished,
                record.length <= Self.longestEncryptedAlert
            else { return nil }
            return record.packet
        }
        guard firstClientApplicationData == nil else { return nil }
        return alerts.first { $0.side == .client && $0.encrypted }?.packet
    }

    /// When the handshake was over for the client: TLS 1.2, the later of both Finished
    /// flights; TLS 1.3, the client's Finished.
    public var handshakeDone: PacketRef? {
        guard handshakeCompleted, let clientFinished else { return nil }
        if (serverHello?.version ?? 0) >= 0x0304 { return clientFinished }
        guard let serverChangeCipherSpec else { return clientFinished }
        return serverChangeCipherSpec.time > clientFinished.time ? serverChangeCipherSpec : clientFinished
    }

    /// Worth an engineer's look: an alert other than close_notify, an answer that is not TLS,
    /// or the client alerting right after the handshake.
    public var hasProblem: Bool {
        alerts.contains { $0.description != 0 } || plaintextHTTPReply != nil || serverViolation != nil
            || alertAfterHandshakeWithoutData
    }

    public mutating func received(_ bytes: RawSpan, from side: StreamSide, packet: PacketRef) {
        var reader = side == .client ? client : server
        if side == .client { client = RecordReader() } else { server = RecordReader() }
        reader.feed(bytes) { record in handle(record, from: side, packet: packet) }
        if side == .client { client = reader } else { server = reader }
    }

    /// Bytes lost from the capture: record boundaries are lost with them.
    public mutating func gap(from side: StreamSide) {
        if side == .client { client.failed = true } else { server.failed = true }
    }

    // MARK: - Records

    private mutating func handle(_ event: RecordReader.Event, from side: StreamSide, packet: PacketRef) {
        switch event {
        case .notTLS(let prefix):
            if side == .server && prefix.starts(with: Array("HTTP/".utf8)) {
                plaintextHTTPReply = packet
                serverViolation = "plain HTTP instead of TLS"
            } else if side == .server {
                serverViolation = "not TLS: " + describe(prefix)
            } else {
                clientViolation = "not TLS: " + describe(prefix)
            }
        case .badRecord(let reason):
            if side == .client { clientViolation = reason } else { serverViolation = reason }
        case .record(let type, let body, let length):
            record(type: type, body: body, length: length, from: side, packet: packet)
        }
    }

    private mutating func record(type: UInt8, body: [UInt8], length: Int, from side: StreamSide, packet: PacketRef) {
        let tls13 = (serverHello?.version ?? 0) >= 0x0304
        let encrypted = side == .client ? (clientChangeCipherSpec != nil && !tls13) : (serverChangeCipherSpec != nil && !tls13)
        switch type {
        case 20:
            // In TLS 1.3 a ChangeCipherSpec is only middlebox compatibility (RFC 8446 §D.4).
            if side == .client {
                if clientChangeCipherSpec == nil { clientChangeCipherSpec = packet }
                if !tls13 && clientFinished == nil { clientFinished = packet }
            } else if serverChangeCipherSpec == nil {
                serverChangeCipherSpec = packet
                // A resumed TLS 1.2 session: the server's flight ends with its Finished.
                if !tls13 && serverHello != nil && serverFlightComplete == nil { serverFlightComplete = packet }
            }
        case 21:
            guard alerts.count < 8 else { return }
            if !encrypted && !(tls13 && serverHello != nil && side == .server) && body.count == 2 {
                alerts.append(TLSAlert(side: side, packet: packet, encrypted: false, level: body[0], description: body[1]))
            } else {
                alerts.append(TLSAlert(side: side, packet: packet, encrypted: true, level: nil, description: nil))
            }
        case 22 where !encrypted:
            if side == .client && clientHelloPacket == nil { clientHelloPacket = packet }
            handshake(body, from: side, packet: packet)
        case 23:
            if tls13 {
                if side == .client { clientEncryptedRecords += 1 } else { serverEncryptedRecords += 1 }
                if side == .server && serverFlightComplete == nil { serverFlightComplete = packet }
                if side == .client && clientEncryptedRecords == 1 { clientFinished = packet }
                if side == .client && clientEncryptedRecords == 2 { clientRecordAfterFinished = (packet, length) }
                // The first records of TLS 1.3 are handshake messages inside application_data;
                // count application data from the client's second record on.
                if side == .client && clientEncryptedRecords >= 2 && firstClientApplicationData == nil {
                    firstClientApplicationData = packet
                }
                if side == .server && serverEncryptedRecords >= 4 && firstServerApplicationData == nil {
                    firstServerApplicationData = packet
                }
            } else if side == .client {
                if firstClientApplicationData == nil { firstClientApplicationData = packet }
            } else if firstServerApplicationData == nil {
                firstServerApplicationData = packet
            }
        default:
            break
        }
    }

    /// Handshake messages in one record (RFC 8446 §4: type, 24-bit length, body). Messages
    /// split over records are joined by the record reader's handshake buffer.
    private mutating func handshake(_ body: [UInt8], from side: StreamSide, packet: PacketRef) {
        var buffer = side == .client ? clientHandshake : serverHandshake
        buffer.append(contentsOf: body.prefix(max(0, Self.maximumHandshakeBuffer - buffer.count)))
        var offset = 0
        while buffer.count - offset >= 4 {
            let length = Int(buffer[offset + 1]) << 16 | Int(buffer[offset + 2]) << 8 | Int(buffer[offset + 3])
            guard buffer.count - offset - 4 >= length else { break }
            let message = Array(buffer[(offset + 4)..<(offset + 4 + length)])
            switch buffer[offset] {
            case 1 where side == .client && clientHello == nil: clientHello = parseClientHello(message)
            case 2 where side == .server && serverHello == nil: serverHello = parseServerHello(message)
            case 14 where side == .server && serverFlightComplete == nil: serverFlightComplete = packet
            default: break
            }
            offset += 4 + length
        }
        buffer.removeFirst(offset)
        if side == .client { clientHandshake = buffer } else { serverHandshake = buffer }
    }
}

/// Splits one direction into TLS records (RFC 8446 §5.1): content type, legacy version,
/// 16-bit length, body. Only handshake and alert bodies are collected.
struct RecordReader: Sendable {
    enum Event {
        case notTLS([UInt8])
        case badRecord(String)
        case record(type: UInt8, body: [UInt8], length: Int)
    }

    var header: [UInt8] = []
    var body: [UInt8] = []
    var remaining = 0
    var recordType: UInt8 = 0
    var recordLength = 0
    var sawRecord = false
    var failed = false

    mutating func feed(_ bytes: RawSpan, _ event: (Event) -> Void) {
        var index = 0
        while index < bytes.byteCount && !failed {
            if remaining == 0 && header.count < 5 {
                header.append(bytes.unsafeLoad(fromByteOffset: index, as: UInt8.self))
                index += 1
                guard header.count == 5 else { continue }
                let length = Int(header[3]) << 8 | Int(header[4])
                guard (20...24).contains(header[0]), header[1] == 3 else {
                    // Decided on the five header bytes alone, so the result does not depend on
                    // how the stream was segmented.
                    failed = true
                    event(sawRecord ? .badRecord("bad record header") : .notTLS(header))
                    return
                }
                guard length <= TLSConnection.maximumRecordLength else {
                    failed = true
                    event(.badRecord("record length \(length) over the limit"))
                    return
                }
                sawRecord = true
                recordType = header[0]
                recordLength = length
                remaining = length
                body.removeAll(keepingCapacity: true)
                if length == 0 {
                    header.removeAll(keepingCapacity: true)
                    event(.record(type: recordType, body: [], length: 0))
                }
                continue
            }
            let take = min(remaining, bytes.byteCount - index)
            if recordType == 21 || recordType == 22 {
                for offset in index..<(index + take) { body.append(bytes.unsafeLoad(fromByteOffset: offset, as: UInt8.self)) }
            }
            index += take
            remaining -= take
            if remaining == 0 {
                header.removeAll(keepingCapacity: true)
                event(.record(type: recordType, body: body, length: recordLength))
            }
        }
    }
}
