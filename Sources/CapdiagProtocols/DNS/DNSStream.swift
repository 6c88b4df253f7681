import CapdiagWire

/// DNS over TCP (RFC 7766 §8): each message is preceded by a 2-byte length. Messages go to a
/// tracker of their own, per connection.
public struct DNSStream: Sendable {
    public private(set) var tracker = DNSTracker()
    var clientBuffer: [UInt8] = []
    var serverBuffer: [UInt8] = []
    var failed = false
    let client: String
    let server: String

    public init(client: String, server: String) {
        self.client = client
        self.server = server
    }

    public mutating func received(_ bytes: RawSpan, from side: StreamSide, packet: PacketRef) {
        guard !failed else { return }
        var buffer = side == .client ? clientBuffer : serverBuffer
        for index in 0..<bytes.byteCount { buffer.append(bytes.unsafeLoad(fromByteOffset: index, as: UInt8.self)) }
        while buffer.count >= 2 {
            let length = Int(buffer[0]) << 8 | Int(buffer[1])
            guard buffer.count >= 2 + length else { break }
            let message = Array(buffer[2..<(2 + length)])
            buffer.removeFirst(2 + length)
            let (source, destination) = side == .client ? (client, server) : (server, client)
            tracker.message(message, source: source, destination: destination, frame: packet.frame, time: packet.time)
        }
        if buffer.count > 70_000 {
            failed = true
            buffer = []
        }
        if side == .client { clientBuffer = buffer } else { serverBuffer = buffer }
    }

    /// A gap loses the message framing for good.
    public mutating func gap() { failed = true }

    public mutating func finish() { tracker.finish() }
}
