import CapdiagEngine
import CapdiagProtocols
import CapdiagWire

/// A packet reference for protocol events: frame and time.
public struct EventRecord: Codable, Sendable, Equatable {
    public var frame: Int
    public var time: String

    init(_ packet: PacketRef) {
        frame = packet.frame
        time = packet.time.iso8601
    }
}

public struct TLSAlertRecord: Codable, Sendable, Equatable {
    /// "client" (the originator) or "server".
    public var side: String
    public var frame: Int
    public var time: String
    public var encrypted: Bool
    /// 1 warning, 2 fatal (plaintext alerts only).
    public var level: Int?
    public var descriptionCode: Int?
    public var description: String?
}

/// A TLS handshake in the JSON output.
public struct TLSRecord: Codable, Sendable, Equatable {
    public var serverName: String?
    public var offeredVersions: [String]
    public var offeredAlpn: [String]
    public var version: String?
    /// The chosen cipher suite as hex, e.g. `0x1301`.
    public var cipherSuite: String?
    public var alpn: String?
    public var handshakeCompleted: Bool
    public var clientChangeCipherSpec: EventRecord?
    public var serverChangeCipherSpec: EventRecord?
    public var firstClientApplicationData: EventRecord?
    public var firstServerApplicationData: EventRecord?
    public var alerts: [TLSAlertRecord]
    /// TLS 1.2: the handshake completed, then the client alerted and sent no data.
    public var alertAfterHandshakeWithoutData: Bool
    /// The server answered the ClientHello with plain HTTP.
    public var plaintextHttpReply: EventRecord?
    public var clientViolation: String?
    public var serverViolation: String?
    /// An alert other than close_notify, an answer that is not TLS, or an alert right after
    /// the handshake: the flow is flagged.
    public var hasProblem: Bool

    init?(_ session: ProtocolSession?) {
        guard let session, case .tls(let tls) = session.application else { return nil }
        serverName = tls.clientHello?.serverName
        offeredVersions = (tls.clientHello?.offeredVersions ?? []).map(tlsVersionName)
        offeredAlpn = tls.clientHello?.alpn ?? []
        version = tls.serverHello.map { tlsVersionName($0.version) }
        cipherSuite = tls.serverHello.map { "0x" + hex4($0.cipherSuite) }
        alpn = tls.serverHello?.alpn
        handshakeCompleted = tls.handshakeCompleted
        clientChangeCipherSpec = tls.clientChangeCipherSpec.map(EventRecord.init)
        serverChangeCipherSpec = tls.serverChangeCipherSpec.map(EventRecord.init)
        firstClientApplicationData = tls.firstClientApplicationData.map(EventRecord.init)
        firstServerApplicationData = tls.firstServerApplicationData.map(EventRecord.init)
        alerts = tls.alerts.map { alert in
            TLSAlertRecord(
                side: alert.side == .client ? "client" : "server", frame: alert.packet.frame,
                time: alert.packet.time.iso8601, encrypted: alert.encrypted, level: alert.level.map(Int.init),
                descriptionCode: alert.description.map(Int.init), description: alert.descriptionName)
        }
        alertAfterHandshakeWithoutData = tls.alertAfterHandshakeWithoutData
        plaintextHttpReply = tls.plaintextHTTPReply.map(EventRecord.init)
        clientViolation = tls.clientViolation
        serverViolation = tls.serverViolation
        hasProblem = tls.hasProblem
    }
}

/// Four lower-case hex digits.
func hex4(_ value: UInt16) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
}
