#if canImport(Glibc)
import Glibc
#endif

/// A capture timestamp in nanoseconds since the Unix epoch (UTC). libpcap is opened with
/// nanosecond precision, so microsecond files are scaled up and nothing is lost.
public struct Timestamp: Hashable, Comparable, Sendable {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    public init(seconds: Int64, nanoseconds: Int64) {
        self.nanoseconds = seconds &* 1_000_000_000 &+ nanoseconds
    }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    public static func - (lhs: Timestamp, rhs: Timestamp) -> Int64 { lhs.nanoseconds &- rhs.nanoseconds }

    public static func + (lhs: Timestamp, rhs: Int64) -> Timestamp { Timestamp(nanoseconds: lhs.nanoseconds &+ rhs) }

    public static let zero = Timestamp(nanoseconds: 0)

    /// The wall clock (for live status lines; analysis uses packet times only).
    public static var now: Timestamp {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Timestamp(seconds: Int64(spec.tv_sec), nanoseconds: Int64(spec.tv_nsec))
    }

    /// RFC 3339 / ISO 8601 in UTC with nine fractional digits, e.g. `2026-11-25T12:44:07.123456789Z`.
    public var iso8601: String {
        var seconds = nanoseconds / 1_000_000_000
        var fraction = nanoseconds % 1_000_000_000
        if fraction < 0 {
            fraction += 1_000_000_000
            seconds -= 1
        }
        var days = seconds / 86_400
        var secondOfDay = seconds % 86_400
        if secondOfDay < 0 {
            secondOfDay += 86_400
            days -= 1
        }
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm, proleptic Gregorian).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func pad(_ value: Int64, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(secondOfDay / 3600, 2)):"
            + "\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2)).\(pad(fraction, 9))Z"
    }
}

/// A duration readable at any scale, the one unit rule of every output: milliseconds below a
/// second ("0.27 ms", "12.4 ms"), seconds above ("1.068 s"). Integer arithmetic: no rounding
/// surprises and no trap for any value.
public func formatDuration(_ nanoseconds: Int64) -> String {
    let sign = nanoseconds < 0 ? "-" : ""
    let magnitude = nanoseconds.magnitude
    func decimals(_ value: UInt64, _ digits: Int) -> String {
        var scale: UInt64 = 1
        for _ in 0..<digits { scale *= 10 }
        let fraction = String(value % scale)
        return "\(value / scale)." + String(repeating: "0", count: digits - fraction.count) + fraction
    }
    if magnitude < 1_000_000 { return sign + decimals((magnitude + 5_000) / 10_000, 2) + " ms" }
    if magnitude < 999_950_000 { return sign + decimals((magnitude + 50_000) / 100_000, 1) + " ms" }
    return sign + decimals(magnitude / 1_000_000 + (magnitude % 1_000_000 >= 500_000 ? 1 : 0), 3) + " s"
}

/// `1 connection`, `3 connections`; `counted(2, "retry", "retries")`. Reports say "3 times", not
/// "3 time(s)".
public func counted<Count: BinaryInteger>(_ count: Count, _ singular: String, _ plural: String? = nil) -> String {
    "\(count) " + (count == 1 ? singular : plural ?? singular + "s")
}
