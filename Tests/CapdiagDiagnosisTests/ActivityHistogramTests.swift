@testable import CapdiagDiagnosis
import CapdiagWire
import Testing

/// The timeline's histogram: bounded whatever the span, nothing lost when it coarsens or
/// merges, and hostile times (before 1970, far apart) neither trap nor grow it.
@Suite struct ActivityHistogramTests {
    static func at(_ milliseconds: Int64) -> Timestamp { Timestamp(nanoseconds: 1_700_000_000_000_000_000 + milliseconds * 1_000_000) }

    @Test func countsStayExactWhileTheGridCoarsens() {
        var histogram = ActivityHistogram()
        // One attempt every 100 ms for an hour, every tenth failed.
        for step in 0..<36_000 { histogram.add(Self.at(Int64(step) * 100), failed: step % 10 == 0 ? 1 : 0) }
        #expect(histogram.attempts.count <= ActivityHistogram.maximumBuckets)
        #expect(histogram.attempts.reduce(0, +) == 36_000 && histogram.failures.reduce(0, +) == 3_600)
        #expect(histogram.widthNs >= 3_600_000_000_000 / Int64(ActivityHistogram.maximumBuckets))
        #expect(histogram.start <= Self.at(0))
    }

    @Test func earlierTimesGrowTheFront() {
        var histogram = ActivityHistogram()
        histogram.add(Self.at(5_000))
        histogram.add(Self.at(0), failed: 1)
        #expect(histogram.attempts.reduce(0, +) == 2 && histogram.failures.first == 1 && histogram.attempts.last == 1)
    }

    @Test func spreadCoversTheConnectionsLifetime() {
        var histogram = ActivityHistogram()
        histogram.spread(10, from: Self.at(0), to: Self.at(450))
        #expect(histogram.attempts == [2, 2, 2, 2, 2] && histogram.failures.allSatisfy { $0 == 0 })
    }

    @Test func mergingKeepsEveryCount() {
        var fine = ActivityHistogram(), coarse = ActivityHistogram()
        for step in 0..<50 { fine.add(Self.at(Int64(step) * 100), failed: 1) }
        for step in 0..<500 { coarse.add(Self.at(Int64(step) * 1_000)) }
        var merged = fine
        merged.absorb(coarse)
        #expect(merged.attempts.reduce(0, +) == 550 && merged.failures.reduce(0, +) == 50)
        #expect(merged.widthNs >= coarse.widthNs && merged.attempts.count <= ActivityHistogram.maximumBuckets)
    }

    @Test func hostileTimesAreBounded() {
        var histogram = ActivityHistogram()
        histogram.add(Timestamp(nanoseconds: .min / 2))
        histogram.add(Timestamp(nanoseconds: .max / 2))
        histogram.add(Timestamp(nanoseconds: -1))
        histogram.spread(3, from: Timestamp(nanoseconds: .max / 2), to: Timestamp(nanoseconds: .min / 2))
        #expect(histogram.attempts.count <= ActivityHistogram.maximumBuckets)
        #expect(histogram.attempts.reduce(0, +) == 6)
    }
}
