/// A packet's place in the capture: its frame number (1-based, as Wireshark counts over the
/// merged input) and time.
public struct PacketRef: Hashable, Sendable {
    public var frame: Int
    public var time: Timestamp

    public init(frame: Int, time: Timestamp) {
        self.frame = frame
        self.time = time
    }
}
