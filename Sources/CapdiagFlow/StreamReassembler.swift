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
    /// Buffered pieces, sorted and disjoint. Empty (no allocation) until a segment arrives
    /// beyond a hole.
    var pieces = PieceList()
    var bufferedBytes = 0
    public private(set) var deliveredBytes: Int64 = 0
    public private(set) var gapBytes: Int64 = 0
    /// Overlapping segments whose bytes differed.
    public private(set) var overlapConflicts = 0
    /// Times a buffer limit forced a gap: this direction's, or the global reassembly memcap.
    public private(set) var bufferOverflows = 0

    public init(maximumBuffered: Int = StreamReassembler.defaultMaximumBuffered) {
        self.maximumBuffered = maximumBuffered
    }

    /// Whether bytes wait beyond a hole.
    public var hasBufferedData: Bool { !pieces.isEmpty }
    /// One past the last buffered byte.
    public var bufferedEnd: Int64? { pieces.last?.end }
    /// What the buffered pieces cost, as charged to `ReassemblyMemory`.
    var chargedBytes: Int { bufferedBytes + pieces.count * ReassemblyMemory.pieceOverhead }

    /// Adds a segment's payload at stream `offset`, with no global memory cap.
    public mutating func add(_ data: RawSpan, at offset: Int64, packet: PacketRef, to sink: inout some StreamSink) {
        var memory = ReassemblyMemory(limit: .max)
        add(data, at: offset, packet: packet, to: &sink, memory: &memory)
    }

    /// Adds a segment's payload at stream `offset`. Bytes it buffers are charged to `memory`;
    /// when this direction's buffer or `memory` is over its cap, the first hole is given up
    /// (reported as a gap) and delivery resumes after it.
    public mutating func add(
        _ data: RawSpan, at offset: Int64, packet: PacketRef, to sink: inout some StreamSink,
        memory: inout ReassemblyMemory
    ) {
        let end = offset + Int64(data.byteCount)
        guard end > next, data.byteCount > 0 else { return }
        if pieces.isEmpty && offset <= next {
            let skip = Int(next - offset)
            deliver(data.extracting(skip..<data.byteCount), packet: packet, to: &sink)
            return
        }
        let before = chargedBytes
        insertUncovered(data, at: offset, end: end)
        drain(packet: packet, to: &sink)
        memory.charge(chargedBytes - before)
        if let first = pieces.first, bufferedBytes > maximumBuffered || memory.isOver {
            bufferOverflows += 1
            if bufferedBytes > maximumBuffered { memory.directionCapHits += 1 } else { memory.memcapHits += 1 }
            skip(to: first.offset, packet: packet, to: &sink, memory: &memory)
        }
    }

    /// Declares everything before `offset` final, with no global memory cap.
    public mutating func skip(to offset: Int64, packet: PacketRef, to sink: inout some StreamSink) {
        var memory = ReassemblyMemory(limit: .max)
        skip(to: offset, packet: packet, to: &sink, memory: &memory)
    }

    /// Declares everything before `offset` final: buffered bytes below it are delivered and
    /// the holes between them reported as gaps.
    public mutating func skip(
        to offset: Int64, packet: PacketRef, to sink: inout some StreamSink, memory: inout ReassemblyMemory
    ) {
        let before = chargedBytes
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
        memory.charge(chargedBytes - before)
    }

    /// The stream ended: delivers whatever is buffered, with gaps for the holes.
    public mutating func flush(packet: PacketRef, to sink: inout some StreamSink) {
        var memory = ReassemblyMemory(limit: .max)
        flush(packet: packet, to: &sink, memory: &memory)
    }

    /// The stream ended: delivers whatever is buffered, with gaps for the holes.
    public mutating func flush(packet: PacketRef, to sink: inout some StreamSink, memory: inout ReassemblyMemory) {
        if let end = pieces.last?.end { skip(to: end, packet: packet, to: &sink, memory: &memory) }
    }

    /// Drops what is buffered without delivering it (the flow left the table), returning its
    /// charge to `memory`.
    public mutating func discard(memory: inout ReassemblyMemory) {
        memory.charge(-chargedBytes)
        pieces = PieceList()
        bufferedBytes = 0
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
    /// counts overlaps whose bytes differ. Only the pieces the segment overlaps are visited.
    private mutating func insertUncovered(_ data: RawSpan, at offset: Int64, end: Int64) {
        var cursor = max(offset, next)
        var added: [Piece] = []
        var position = pieces.firstPosition(endingAfter: cursor)
        while let piece = pieces[position], piece.offset < end {
            if piece.offset > cursor { added.append(copy(data, base: offset, from: cursor, to: piece.offset)) }
            let overlapStart = max(cursor, piece.offset)
            let overlapEnd = min(end, piece.end)
            var differs = false
            for at in overlapStart..<overlapEnd
            where data.unsafeLoad(fromByteOffset: Int(at - offset), as: UInt8.self) != piece.bytes[Int(at - piece.offset)]
            {
                differs = true
                break
            }
            if differs { overlapConflicts += 1 }
            cursor = max(cursor, piece.end)
            position = pieces.position(after: position)
        }
        if cursor < end { added.append(copy(data, base: offset, from: cursor, to: end)) }
        for piece in added {
            bufferedBytes += piece.bytes.count
            pieces.insert(piece)
        }
    }

    private func copy(_ data: RawSpan, base: Int64, from start: Int64, to end: Int64) -> Piece {
        let lower = Int(start - base)
        let upper = Int(end - base)
        let bytes = data.withUnsafeBytes { raw in Array(raw[lower..<upper]) }
        return Piece(offset: start, bytes: bytes)
    }
}

/// The buffered pieces of one direction, sorted by offset and disjoint, in chunks of at most
/// `2 * chunkSize`: finding a piece is a binary search, inserting one moves at most a chunk,
/// and taking the first is O(1) (a head index into the first chunk). A plain sorted array
/// made many small out-of-order segments quadratic (each insertion scanned and re-sorted
/// every piece buffered).
struct PieceList: Sendable {
    typealias Piece = StreamReassembler.Piece
    static let chunkSize = 256

    /// A place in the list: chunk and index within it.
    struct Position: Sendable {
        var chunk: Int
        var index: Int
    }

    private var chunks: [[Piece]] = []
    /// Pieces of `chunks[0]` already taken.
    private var head = 0
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }
    var first: Piece? { isEmpty ? nil : chunks[0][head] }
    var last: Piece? { isEmpty ? nil : chunks[chunks.count - 1].last }

    subscript(position: Position) -> Piece? {
        guard position.chunk < chunks.count, position.index < chunks[position.chunk].count else { return nil }
        return chunks[position.chunk][position.index]
    }

    func position(after position: Position) -> Position {
        if position.index + 1 < chunks[position.chunk].count { return Position(chunk: position.chunk, index: position.index + 1) }
        return Position(chunk: position.chunk + 1, index: 0)
    }

    /// The first piece that ends after `offset` (pieces are disjoint, so ends ascend), or the
    /// position past the end.
    func firstPosition(endingAfter offset: Int64) -> Position {
        var low = 0
        var high = chunks.count
        while low < high {
            let middle = (low + high) / 2
            if chunks[middle][chunks[middle].count - 1].end > offset { high = middle } else { low = middle + 1 }
        }
        guard low < chunks.count else { return Position(chunk: chunks.count, index: 0) }
        var lowIndex = low == 0 ? head : 0
        var highIndex = chunks[low].count
        while lowIndex < highIndex {
            let middle = (lowIndex + highIndex) / 2
            if chunks[low][middle].end > offset { highIndex = middle } else { lowIndex = middle + 1 }
        }
        return Position(chunk: low, index: lowIndex)
    }

    /// Inserts a piece that overlaps none held.
    mutating func insert(_ piece: Piece) {
        count += 1
        guard !chunks.isEmpty else {
            chunks.append([piece])
            head = 0
            return
        }
        var position = firstPosition(endingAfter: piece.offset)
        if position.chunk == chunks.count {
            // After every piece: the common case (segments beyond the hole arrive in order).
            position = Position(chunk: chunks.count - 1, index: chunks[chunks.count - 1].count)
        }
        if position.chunk == 0 && head > 0 {
            chunks[0].removeFirst(head)
            position.index -= head
            head = 0
        }
        chunks[position.chunk].insert(piece, at: position.index)
        if chunks[position.chunk].count > 2 * Self.chunkSize {
            let upper = Array(chunks[position.chunk][Self.chunkSize...])
            chunks[position.chunk].removeLast(chunks[position.chunk].count - Self.chunkSize)
            chunks.insert(upper, at: position.chunk + 1)
        }
    }

    /// Removes the first piece (nothing when empty).
    mutating func removeFirst() {
        guard !isEmpty else { return }
        count -= 1
        chunks[0][head] = Piece(offset: 0, bytes: [])  // release its bytes now
        head += 1
        if head == chunks[0].count {
            chunks.removeFirst()
            head = 0
        }
    }
}

/// Memory held by out-of-order buffers across all flows, against a global cap (Suricata's
/// `stream.reassembly.memcap`, gopacket's `MaxBufferedPagesTotal`). Each direction also has
/// its own cap (`StreamReassembler.maximumBuffered`). A cap reached is never fatal: the
/// direction that needs more gives up its first hole (reported as a gap), which frees what
/// waited behind it, and the hit is counted.
public struct ReassemblyMemory: Sendable {
    public static let defaultLimit = 256 * 1024 * 1024
    /// What one buffered piece costs beyond its bytes (the array header and allocator
    /// rounding, its slot in the list), so that many tiny pieces count for what they hold.
    public static let pieceOverhead = 64

    public var limit: Int
    /// Bytes charged now, and the most at once.
    public private(set) var buffered = 0
    public private(set) var peak = 0
    /// Times the global cap forced a gap.
    public internal(set) var memcapHits = 0
    /// Times a direction's own cap forced a gap (all flows).
    public internal(set) var directionCapHits = 0

    public init(limit: Int = ReassemblyMemory.defaultLimit) { self.limit = limit }

    var isOver: Bool { buffered > limit }

    mutating func charge(_ bytes: Int) {
        buffered += bytes
        if buffered > peak { peak = buffered }
    }
}
