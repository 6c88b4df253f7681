import CapdiagWire
import Testing

@testable import CapdiagFlow

/// Hostile segment patterns (issue 13). These check results, not time: a quadratic path
/// reintroduced would make them take minutes instead of well under a second, which the suite
/// shows without a timing assertion (Benchmarks/hostile/run.sh measures the real thing).
@Suite struct HostileReassembly {
    /// One-byte segments: odd offsets ascending, even ones descending, byte 0 last, so that
    /// 25,000 holes are open at once and every even byte fills one in the middle.
    @Test func fiftyThousandOneByteOutOfOrderSegmentsArriveWhole() {
        let count = 50_000
        let stream = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        var order = Array(stride(from: 1, to: count, by: 2))
        order += Array(stride(from: (count - 1) / 2 * 2, to: 0, by: -2))
        order.append(0)
        var reassembler = StreamReassembler()
        var memory = ReassemblyMemory()
        var sink = Collector()
        for offset in order {
            stream[offset..<(offset + 1)].withUnsafeBytes { raw in
                reassembler.add(raw.bytes, at: Int64(offset), packet: packet, to: &sink, memory: &memory)
            }
            if offset == order[count / 2 - 1] {
                // All odd bytes wait: each charged with its bookkeeping.
                #expect(memory.buffered == (count / 2) * (1 + ReassemblyMemory.pieceOverhead))
            }
        }
        #expect(sink.bytes == stream)
        #expect(sink.gaps.isEmpty)
        #expect(reassembler.bufferOverflows == 0 && reassembler.overlapConflicts == 0)
        #expect(!reassembler.hasBufferedData)
        #expect(memory.buffered == 0 && memory.memcapHits == 0)
    }

    /// Overlaps over many small pieces: each differing piece counts once, first bytes win.
    @Test func aLargeSegmentOverManySmallPiecesKeepsTheFirstBytes() {
        var reassembler = StreamReassembler()
        var sink = Collector()
        let small: [UInt8] = [0x41]
        for offset in stride(from: 2, to: 2000, by: 2) {
            small.withUnsafeBytes { reassembler.add($0.bytes, at: Int64(offset), packet: packet, to: &sink) }
        }
        let big = [UInt8](repeating: 0x42, count: 2001)
        big.withUnsafeBytes { reassembler.add($0.bytes, at: 0, packet: packet, to: &sink) }
        #expect(sink.bytes.count == 2001)
        #expect(sink.bytes.enumerated().allSatisfy { $0.element == ($0.offset % 2 == 0 && $0.offset >= 2 && $0.offset < 2000 ? 0x41 : 0x42) })
        #expect(reassembler.overlapConflicts == 999)
    }

    /// Two streams share a global cap smaller than what they want to hold: the one that goes
    /// over gives up its first hole (a gap), the hit is counted, and every byte is still
    /// delivered or reported, with the memory returned at the end.
    @Test func theGlobalCapForcesAGapAndIsCounted() {
        var memory = ReassemblyMemory(limit: 6000)
        var first = StreamReassembler()
        var second = StreamReassembler()
        var sinkA = Collector()
        var sinkB = Collector()
        let chunk = [UInt8](repeating: 0x61, count: 1000)
        for index in 1...4 {
            chunk.withUnsafeBytes { first.add($0.bytes, at: Int64(index * 1000), packet: packet, to: &sinkA, memory: &memory) }
        }
        #expect(memory.memcapHits == 0 && first.hasBufferedData)
        for index in 1...4 {
            chunk.withUnsafeBytes { second.add($0.bytes, at: Int64(index * 1000), packet: packet, to: &sinkB, memory: &memory) }
        }
        // The second's second piece went over: it gave up [0, 1000) and delivered the rest.
        #expect(memory.memcapHits == 1)
        #expect(second.bufferOverflows == 1 && sinkB.gaps == [1000] && sinkB.bytes.count == 4000)
        #expect(!second.hasBufferedData)
        #expect(memory.buffered == 4 * (1000 + ReassemblyMemory.pieceOverhead))
        first.flush(packet: packet, to: &sinkA, memory: &memory)
        second.flush(packet: packet, to: &sinkB, memory: &memory)
        #expect(sinkA.gaps == [1000] && sinkA.bytes.count == 4000)
        #expect(memory.buffered == 0 && memory.peak > 6000)
    }

    /// Ending a table of many open flows hands them over one by one, in the same order as
    /// `finishAll` then `drainFinished`, with no reassembly memory held by SYN-only flows.
    @Test func finishAllDrainingGivesTheSameFlowsInOrder() {
        func table() -> Scenario {
            var s = Scenario()
            for index in 0..<3000 {
                let client = Endpoint(address: Scenario.gateway.address, port: UInt16(10_000 + (index * 7919) % 50_000))
                s.send(from: client, .syn, seq: UInt32(index))
            }
            return s
        }
        var a = table()
        #expect(a.table.reassemblyMemory.buffered == 0 && a.table.activeFlows == 3000)
        let expected = a.finishedFlows().map(\.id)
        var b = table()
        var ids: [Int] = []
        b.table.finishAll { flow, _ in ids.append(flow.id) }
        #expect(ids == expected && ids == Array(1...3000))
        #expect(b.table.activeFlows == 0)
    }
}
