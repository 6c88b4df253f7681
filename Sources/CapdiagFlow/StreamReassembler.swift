import CapdiagWire

/// Receives one direction's bytes in order from a `StreamReassembler`.
public protocol StreamSink {
    /// In-order bytes, starting where the previous call (or gap) ended. Valid during the call.
    mutating func data(_ bytes: RawSpan, packet: PacketRef)
    /// `length` bytes will never be seen (lost by the capture, or given up on).
    mutating func gap(_ length: Int64, packet: PacketRef)
}

/// Rebuilds one direction of a TCP connection into an ordered byte stream.
///
/// In-order segments are passed straight through (no copy). A segment beyond a hole is
/// copied into a bounded buffer until the hole fills; when the hole cannot fill (the peer
/// acknowledged past it, the buffer is full, or the stream ends) it is reported as a gap and
/// delivery resumes after it. Overlaps keep the bytes that arrived first; differing bytes in
/// an overlap are counted (Zeek's `rexmit_inconsistency`). Bytes already delivered are not
/// kept, so a retransmission of them is dropped unchecked.
///
/// Offsets are stream offsets: 0 is the first byte after the SYN (or the first byte seen when
/// the capture started mid-connection), so sequence wraparound never shows here.
public struct StreamReassembler: Sendable {
    public static let defaultMaximumBuffered = 256 * 1024

    struct Piece: Sendable {
        var offset: Int64
        var bytes: [UInt8]
        var end: Int64 { offset + Int64(bytes.count) }
    }

    public let maximumBuffered: Int
    /// The next offset to deliver.
    public private(set) var next: Int64 = 0
    var pieces: [Piece] = []
    var bufferedBytes = 0
    public private(set) var deliveredBytes: Int64 = 0
    public private(set) var gapBytes: Int64 = 0
    /// Overlapping segments whose bytes differed.
    public private(set) var overlapConflicts = 0
    /// Times the buffer limit forced a gap.
    public private(set) var bufferOverflows = 0

    public init(maximumBuffered: Int = StreamReassembler.defaultMaximumBuffered) {
        self.maximumBuffered = maximumBuffered
    }

    /// Whether bytes wait beyond a hole.
    public var hasBufferedData: Bool { !pieces.isEmpty }
    /// One past the last buffered byte.
    public var bufferedEnd: Int64? { pieces.last?.end }

    /// Adds a segment's payload at stream `offset`.
    public mutating func add(_ data: RawSpan, at offset: Int64, packet: PacketRef, to sink: inout some StreamSink) {
        let end = offset + Int64(data.byteCount)
        guard end > next, data.byteCount > 0 else { return }
        if pieces.isEmpty && offset <= next {
            let skip = Int(next - offset)
            deliver(data.extracting(skip..<data.byteCount), packet: packet, to: &sink)
            return
        }
        insertUncovered(data, at: offset, end: end)
        drain(packet: packet, to: &sink)
        if bufferedBytes > maximumBuffered, let first = pieces.first {
            bufferOverflows += 1
            skip(to: first.offset, packet: packet, to: &sink)
        }
    }

    /// Declares everything before `offset` final: buffered bytes below it are delivered and
    /// the holes between them reported as gaps.
    public mutating func skip(to offset: Int64, packet: PacketRef, to sink: inout some StreamSink) {
        while next < offset {
            if let first = pieces.first, first.offset <= next {
                drain(packet: packet, to: &sink)
                continue
            }
            let holeEnd = min(offset, pieces.first?.offset ?? offset)
            sink.gap(holeEnd - next, packet: packet)
            gapBytes += holeEnd - next
            next = holeEnd
            drain(packet: packet, to: &sink)
        }
    }

    /// The stream ended: delivers whatever is buffered, with gaps for the holes.
    public mutating func flush(packet: PacketRef, to sink: inout some StreamSink) {
        if let end = pieces.last?.end { skip(to: end, packet: packet, to: &sink) }
    }

    private mutating func deliver(_ bytes: RawSpan, packet: PacketRef, to sink: inout some StreamSink) {
        guard bytes.byteCount > 0 else { return }
        sink.data(bytes, packet: packet)
        next += Int64(bytes.byteCount)
        deliveredBytes += Int64(bytes.byteCount)
    }

    /// Delivers buffered pieces that now start at or before `next`.
    private mutating func drain(packet: PacketRef, to sink: inout some StreamSink) {
        while let first = pieces.first, first.offset <= next {
            pieces.removeFirst()
            bufferedBytes -= first.bytes.count
            if first.end > next {
                let skip = Int(next - first.offset)
                first.bytes.withUnsafeBytes { raw in
                    deliver(raw.bytes.extracting(skip..<raw.count), packet: packet, to: &sink)
                }
            }
        }
    }

    /// Stores the parts of [offset, end) that no buffered piece covers (first bytes win) and
    /// counts overlaps whose bytes differ.
    private mutating func insertUncovered(_ data: RawSpan, at offset: Int64, end: Int64) {
        var cursor = max(offset, next)
        var added: [Piece] = []
        for piece in pieces where piece.end > cursor && piece.offset < end {
            if piece.offset > cursor { added.append(copy(data, base: offset, from: cursor, to: piece.offset)) }
            let overlapStart = max(cursor, piece.offset)
            let overlapEnd = min(end, piece.end)
            var differs = false
            for position in overlapStart..<overlapEnd
            where data.unsafeLoad(fromByteOffset: Int(position - offset), as: UInt8.self)
                != piece.bytes[Int(position - piece.offset)]
            {
                differs = true
                break
            }
            if differs { overlapConflicts += 1 }
            cursor = max(cursor, piece.end)
        }
        if cursor < end { added.append(copy(data, base: offset, from: cursor, to: end)) }
        guard !added.isEmpty else { return }
        for piece in added { bufferedBytes += piece.bytes.count }
        pieces.append(contentsOf: added)
        pieces.sort { $0.offset < $1.offset }
    }

    private func copy(_ data: RawSpan, base: Int64, from start: Int64, to end: Int64) -> Piece {
        var bytes = [UInt8]()
        bytes.reserveCapacity(Int(end - start))
        for index in Int(start - base)..<Int(end - base) { bytes.append(data.unsafeLoad(fromByteOffset: index, as: UInt8.self)) }
        return Piece(offset: start, bytes: bytes)
    }
}
