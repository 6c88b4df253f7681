/// Maps 32-bit TCP sequence numbers into a 64-bit relative space starting at a base
/// (the ISN, or one before the first byte seen), following RFC 1982 serial-number
/// arithmetic: a number within 2^31 after the reference is ahead of it, otherwise behind.
/// The reference moves forward with the highest number seen, so wraparound is handled.
struct SequenceSpace: Sendable {
    private(set) var base: UInt32 = 0
    private var referenceRaw: UInt32 = 0
    private var referenceRelative: Int64 = 0

    init() {}

    init(base: UInt32) {
        self.base = base
        referenceRaw = base
        referenceRelative = 0
    }

    /// The relative position of `raw` (negative when before the base).
    @inline(__always)
    func relative(_ raw: UInt32) -> Int64 {
        referenceRelative &+ Int64(Int32(bitPattern: raw &- referenceRaw))
    }

    /// Moves the reference forward to `raw` if it is ahead.
    @inline(__always)
    mutating func advance(to raw: UInt32) {
        let position = relative(raw)
        if position > referenceRelative {
            referenceRaw = raw
            referenceRelative = position
        }
    }
}
