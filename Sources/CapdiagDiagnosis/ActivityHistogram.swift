import CapdiagWire

/// Requests (or connection attempts) and failures over time for one upstream: what lets a
/// report's timeline show the failure rate, successes as well as failures.
///
/// At most `maximumBuckets` buckets on a grid aligned to the epoch, 100 ms wide at first and
/// doubled whenever the times seen would need more buckets, so memory is bounded whatever the
/// capture's span (one bucket for a server seen once) and two histograms merge bucket by bucket
/// once the finer is coarsened to the wider one's width (sliding windows merge their parts).
public struct ActivityHistogram: Sendable, Equatable {
    public static let maximumBuckets = 60
    static let baseWidth: Int64 = 100_000_000

    public private(set) var widthNs: Int64 = baseWidth
    /// The first bucket's index on the grid: it starts at `firstIndex * widthNs`.
    public private(set) var firstIndex: Int64 = 0
    public private(set) var attempts: [UInt32] = []
    public private(set) var failures: [UInt32] = []

    public init() {}

    public var isEmpty: Bool { attempts.isEmpty }
    public var start: Timestamp { Timestamp(nanoseconds: firstIndex &* widthNs) }

    /// Counts `count` attempts (of which `failed` failed) at `time`.
    mutating func add(_ time: Timestamp, count: Int = 1, failed: Int = 0) {
        guard count > 0 || failed > 0 else { return }
        let slot = reach(time)
        attempts[slot] = attempts[slot] &+ UInt32(clamping: count)
        failures[slot] = failures[slot] &+ UInt32(clamping: failed)
    }

    /// Spreads `count` attempts evenly over `from...to`: requests a connection made but did not
    /// keep in detail are known by number, not by time.
    mutating func spread(_ count: Int, from: Timestamp, to: Timestamp) {
        guard count > 0 else { return }
        // Both ends first: reaching the second may coarsen the grid under the first.
        _ = reach(from)
        _ = reach(max(from, to))
        let first = reach(from), last = reach(max(from, to))
        let buckets = last - first + 1
        for offset in 0..<buckets {
            let share = count / buckets + (offset < count % buckets ? 1 : 0)
            attempts[first + offset] = attempts[first + offset] &+ UInt32(clamping: share)
        }
    }

    mutating func absorb(_ other: ActivityHistogram) {
        guard !other.isEmpty else { return }
        while widthNs < other.widthNs { coarsen() }
        for (offset, count) in other.attempts.enumerated() {
            let time = Timestamp(nanoseconds: (other.firstIndex &+ Int64(offset)) &* other.widthNs)
            add(time, count: Int(count), failed: Int(other.failures[offset]))
        }
    }

    /// The bucket holding `time`, growing the histogram (or coarsening it) as needed.
    private mutating func reach(_ time: Timestamp) -> Int {
        var index = Self.floorDivide(time.nanoseconds, widthNs)
        if attempts.isEmpty {
            firstIndex = index
            attempts = [0]
            failures = [0]
            return 0
        }
        while true {
            let lastIndex = firstIndex &+ Int64(attempts.count - 1)
            let low = min(firstIndex, index), high = max(lastIndex, index)
            if high &- low < Int64(Self.maximumBuckets) || widthNs > Int64.max / 4 { break }
            coarsen()
            index = Self.floorDivide(time.nanoseconds, widthNs)
        }
        if index < firstIndex {
            let room = Int(min(firstIndex &- index, Int64(Self.maximumBuckets)))
            attempts.insert(contentsOf: repeatElement(0, count: room), at: 0)
            failures.insert(contentsOf: repeatElement(0, count: room), at: 0)
            firstIndex = firstIndex &- Int64(room)
        }
        let lastIndex = firstIndex &+ Int64(attempts.count - 1)
        if index > lastIndex {
            let room = Int(min(index &- lastIndex, Int64(Self.maximumBuckets)))
            attempts.append(contentsOf: repeatElement(0, count: room))
            failures.append(contentsOf: repeatElement(0, count: room))
        }
        // Only times beyond Int64's reach (a clamped width) land outside: the nearest end.
        return Int(min(max(index &- firstIndex, 0), Int64(attempts.count - 1)))
    }

    /// Doubles the bucket width, merging neighbours.
    private mutating func coarsen() {
        let newFirst = Self.floorDivide(firstIndex, 2)
        let lastIndex = firstIndex &+ Int64(attempts.count - 1)
        let count = Int(Self.floorDivide(lastIndex, 2) &- newFirst) + 1
        var newAttempts = [UInt32](repeating: 0, count: count), newFailures = [UInt32](repeating: 0, count: count)
        for offset in attempts.indices {
            let slot = Int(Self.floorDivide(firstIndex &+ Int64(offset), 2) &- newFirst)
            newAttempts[slot] = newAttempts[slot] &+ attempts[offset]
            newFailures[slot] = newFailures[slot] &+ failures[offset]
        }
        attempts = newAttempts
        failures = newFailures
        firstIndex = newFirst
        widthNs = widthNs &* 2
    }

    static func floorDivide(_ value: Int64, _ divisor: Int64) -> Int64 {
        let quotient = value / divisor
        return (value % divisor != 0 && (value < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}

/// The histogram as the JSON summary writes it (`activity` of an upstream).
public struct ActivityRecord: Sendable, Codable, Equatable {
    /// The first bucket's start.
    public var start: String
    public var bucketNs: Int64
    /// Requests, or connection attempts without a request, per bucket.
    public var attempts: [Int]
    public var failures: [Int]

    public init(_ histogram: ActivityHistogram) {
        start = histogram.start.iso8601
        bucketNs = histogram.widthNs
        attempts = histogram.attempts.map(Int.init)
        failures = histogram.failures.map(Int.init)
    }
}
