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

    /// In-order bytes from one side. Whole messages are read straight from `bytes`; only a
    /// message split across calls is buffered, and only until it completes, so the cost is
    /// linear in the bytes whatever the segmentation.
    public mutating func received(_ bytes: RawSpan, from side: StreamSide, packet: PacketRef) {
        guard !failed else { return }
        // The buffer is moved out while it is used (a copy would duplicate it on every append).
        var buffer: [UInt8] = []
        if side == .client { swap(&buffer, &clientBuffer) } else { swap(&buffer, &serverBuffer) }
        let (source, destination) = side == .client ? (client, server) : (server, client)
        let count = bytes.byteCount
        var index = 0
        func load(_ at: Int) -> Int { Int(bytes.unsafeLoad(fromByteOffset: at, as: UInt8.self)) }
        while index < count {
            if !buffer.isEmpty {
                // Complete the message begun in an earlier call: its 2-byte length first.
                let wanted = buffer.count < 2 ? 2 : 2 + (Int(buffer[0]) << 8 | Int(buffer[1]))
                let take = min(wanted - buffer.count, count - index)
                let start = index
                bytes.withUnsafeBytes { raw in buffer.append(contentsOf: raw[start..<(start + take)]) }
                index += take
                if buffer.count == wanted && wanted > 2 {
                    tracker.message(
                        Array(buffer[2...]), source: source, destination: destination, frame: packet.frame, time: packet.time)
                    buffer.removeAll(keepingCapacity: true)
                } else if buffer.count == 2 && wanted == 2 && buffer[0] == 0 && buffer[1] == 0 {
                    // An empty message: nothing to parse, as before (the tracker counts it malformed).
                    tracker.message([], source: source, destination: destination, frame: packet.frame, time: packet.time)
                    buffer.removeAll(keepingCapacity: true)
                }
                continue
            }
            guard count - index >= 2 else {
                buffer.append(UInt8(load(index)))
                index = count
                break
            }
            let length = load(index) << 8 | load(index + 1)
            guard count - index >= 2 + length else {
                let start = index
                bytes.withUnsafeBytes { raw in buffer.append(contentsOf: raw[start..<count]) }
                index = count
                break
            }
            let start = index + 2
            let message = bytes.withUnsafeBytes { raw in Array(raw[start..<(start + length)]) }
            tracker.message(message, source: source, destination: destination, frame: packet.frame, time: packet.time)
            index = start + length
        }
        if side == .client { swap(&buffer, &clientBuffer) } else { swap(&buffer, &serverBuffer) }
    }

    /// A gap loses the message framing for good.
    public mutating func gap() { failed = true }

    public mutating func finish() { tracker.finish() }
}
