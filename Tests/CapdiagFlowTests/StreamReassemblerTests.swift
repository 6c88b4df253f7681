import CapdiagTestSupport
import CapdiagWire
import Testing

@testable import CapdiagFlow

/// Collects what the reassembler delivers.
struct Collector: StreamSink {
    var bytes: [UInt8] = []
    var gaps: [Int64] = []
    mutating func data(_ span: RawSpan, packet: PacketRef) {
        for index in 0..<span.byteCount { bytes.append(span.unsafeLoad(fromByteOffset: index, as: UInt8.self)) }
    }
    mutating func gap(_ length: Int64, packet: PacketRef) { gaps.append(length) }
}

let packet = PacketRef(frame: 1, time: Timestamp(nanoseconds: 0))

@Suite struct Reassembly {
    /// Any permutation, duplication and overlap of the segments of a stream yields the
    /// original bytes, with no gap.
    @Test(arguments: 0..<300)
    func anyOrderDuplicationOrOverlapYieldsTheOriginal(seed: Int) {
        var rng = SplitMix(state: UInt64(seed))
        let length = Int.random(in: 1...3000, using: &rng)
        let stream = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
        var segments: [Range<Int>] = []
        var position = 0
        while position < length {
            let size = min(length - position, Int.random(in: 1...400, using: &rng))
            segments.append(position..<(position + size))
            position += size
        }
        // Duplicates and overlapping re-segmentations (as a retransmission with another MSS would).
        for _ in 0..<Int.random(in: 0...8, using: &rng) {
            let start = Int.random(in: 0..<length, using: &rng)
            let end = min(length, start + Int.random(in: 1...600, using: &rng))
            segments.append(start..<end)
        }
        segments.shuffle(using: &rng)
        var reassembler = StreamReassembler()
        var sink = Collector()
        for range in segments {
            Array(stream[range]).withUnsafeBytes { raw in
                reassembler.add(raw.bytes, at: Int64(range.lowerBound), packet: packet, to: &sink)
            }
        }
        reassembler.flush(packet: packet, to: &sink)
        #expect(sink.bytes == stream, "seed \(seed)")
        #expect(sink.gaps.isEmpty, "seed \(seed)")
        #expect(reassembler.overlapConflicts == 0)
    }

    @Test func aHoleThatNeverFillsIsAGap() {
        var reassembler = StreamReassembler()
        var sink = Collector()
        let a: [UInt8] = Array("hello ".utf8), c: [UInt8] = Array("world".utf8)
        a.withUnsafeBytes { reassembler.add($0.bytes, at: 0, packet: packet, to: &sink) }
        c.withUnsafeBytes { reassembler.add($0.bytes, at: 10, packet: packet, to: &sink) }
        #expect(sink.bytes == a)
        reassembler.skip(to: 15, packet: packet, to: &sink)
        #expect(sink.gaps == [4])
        #expect(sink.bytes == a + c)
        #expect(reassembler.gapBytes == 4)
    }

    @Test func firstBytesWinAndConflictsAreCounted() {
        var reassembler = StreamReassembler()
        var sink = Collector()
        Array("BBBB".utf8).withUnsafeBytes { reassembler.add($0.bytes, at: 2, packet: packet, to: &sink) }
        Array("aaXXXX".utf8).withUnsafeBytes { reassembler.add($0.bytes, at: 0, packet: packet, to: &sink) }
        #expect(String(decoding: sink.bytes, as: UTF8.self) == "aaBBBB")
        #expect(reassembler.overlapConflicts == 1)
    }

    @Test func theBufferIsBounded() {
        var reassembler = StreamReassembler(maximumBuffered: 1000)
        var sink = Collector()
        let chunk = [UInt8](repeating: 7, count: 400)
        for index in 1...5 { chunk.withUnsafeBytes { reassembler.add($0.bytes, at: Int64(index * 400), packet: packet, to: &sink) } }
        // Beyond 1000 buffered bytes the first hole is given up on.
        #expect(reassembler.bufferOverflows >= 1)
        #expect(sink.gaps == [400])
        #expect(sink.bytes.count == 2000)
    }
}
