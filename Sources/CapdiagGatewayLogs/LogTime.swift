import CapdiagWire

/// When a log line says something happened.
///
/// Gateways write local wall-clock time, often without a zone: nginx's error log
/// (`2026/11/25 14:24:05`) and HAProxy's `%tr` (`25/Nov/2026:14:24:05.123`) do not say which zone,
/// so the instant is unknown until someone supplies the offset (a join with a capture can estimate
/// it). nginx's `$time_iso8601`/`$time_local` and Envoy's `START_TIME` carry an offset, `$msec` is
/// epoch seconds: those give the instant.
public struct GatewayLogTime: Hashable, Sendable {
    /// The wall-clock reading as written, counted as if it were UTC (nanoseconds since the epoch of
    /// that civil date and time). For a line that gave only an instant (`$msec`), the instant.
    public var wallClock: Timestamp
    /// The writer's offset from UTC in seconds (east positive) when the line says it; nil when the
    /// zone is unknown.
    public var utcOffsetSeconds: Int?
    /// The finest unit the logged value can express, in nanoseconds: 1 s for nginx's error log and
    /// `$time_iso8601`, 1 ms for `$msec`, HAProxy and Envoy.
    public var resolution: Int64

    public init(wallClock: Timestamp, utcOffsetSeconds: Int?, resolution: Int64) {
        self.wallClock = wallClock
        self.utcOffsetSeconds = utcOffsetSeconds
        self.resolution = resolution
    }

    /// Whether the line said its zone (or gave an instant).
    public var isZoneKnown: Bool { utcOffsetSeconds != nil }

    /// The instant (UTC), when the zone is known.
    public var instant: Timestamp? { utcOffsetSeconds.map { instant(assumingUTCOffset: $0) } }

    /// The instant if the writer's zone was `seconds` east of UTC (for naive times, with an
    /// offset estimated elsewhere).
    public func instant(assumingUTCOffset seconds: Int) -> Timestamp {
        wallClock + (-Int64(seconds) &* 1_000_000_000)
    }
}

/// What a line's time marks. The join must know: nginx writes its access line when the request
/// ends, HAProxy's `%tr` and Envoy's `START_TIME` are when the request arrived, and an error-log
/// line is written when the failure happened.
public enum GatewayTimeMeaning: String, Hashable, Sendable {
    /// The moment the logged event happened (nginx error log).
    case event
    /// The request arrived (HAProxy `%tr`, Envoy `START_TIME`).
    case requestStart = "request_start"
    /// The request was finished and logged (nginx `$time_iso8601`, `$time_local`, `$msec`).
    case requestEnd = "request_end"
}

/// Date and time readers for the gateways' formats; all validate ranges and return nil otherwise.
enum LogTimeParser {
    static let nanosecondsPerSecond: Int64 = 1_000_000_000

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
    static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func civil(
        year: Int64, month: Int64, day: Int64, hour: Int64, minute: Int64, second: Int64, nanoseconds: Int64
    ) -> Timestamp? {
        guard year >= 1970, year <= 9999, month >= 1, month <= 12, day >= 1, day <= 31, hour <= 23, minute <= 59,
            second <= 60, nanoseconds >= 0, nanoseconds < nanosecondsPerSecond
        else { return nil }
        let seconds = days(year: year, month: month, day: day) * 86_400 + hour * 3600 + minute * 60 + second
        return Timestamp(seconds: seconds, nanoseconds: nanoseconds)
    }

    private static func number(_ bytes: [UInt8], _ start: Int, _ count: Int) -> Int64? {
        guard start >= 0, start + count <= bytes.count else { return nil }
        var value: Int64 = 0
        for index in start..<(start + count) {
            guard LineText.isDigit(bytes[index]) else { return nil }
            value = value * 10 + Int64(bytes[index] - 0x30)
        }
        return value
    }

    private static func expect(_ bytes: [UInt8], _ index: Int, _ byte: UInt8) -> Bool {
        index >= 0 && index < bytes.count && bytes[index] == byte
    }

    /// `2026/11/25 14:24:05` (nginx error log) at `start`; 19 bytes.
    static func nginxError(_ bytes: [UInt8], at start: Int) -> GatewayLogTime? {
        guard expect(bytes, start + 4, 0x2F), expect(bytes, start + 7, 0x2F), expect(bytes, start + 10, 0x20),
            expect(bytes, start + 13, 0x3A), expect(bytes, start + 16, 0x3A),
            let year = number(bytes, start, 4), let month = number(bytes, start + 5, 2),
            let day = number(bytes, start + 8, 2), let hour = number(bytes, start + 11, 2),
            let minute = number(bytes, start + 14, 2), let second = number(bytes, start + 17, 2),
            let wall = civil(
                year: year, month: month, day: day, hour: hour, minute: minute, second: second, nanoseconds: 0)
        else { return nil }
        return GatewayLogTime(wallClock: wall, utcOffsetSeconds: nil, resolution: nanosecondsPerSecond)
    }

    private static let months: [[UInt8]] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .map { Array($0.utf8) }

    private static func month(_ bytes: [UInt8], _ start: Int) -> Int64? {
        guard start >= 0, start + 3 <= bytes.count else { return nil }
        for (index, name) in months.enumerated()
        where bytes[start] == name[0] && bytes[start + 1] == name[1] && bytes[start + 2] == name[2] {
            return Int64(index + 1)
        }
        return nil
    }

    /// `25/Nov/2026:14:24:05` at `start` (HAProxy `%tr` continues `.123`, nginx `$time_local`
    /// continues ` +0530`); 20 bytes. Returns the naive wall clock.
    static func slashDate(_ bytes: [UInt8], at start: Int) -> Timestamp? {
        guard expect(bytes, start + 2, 0x2F), expect(bytes, start + 6, 0x2F), expect(bytes, start + 11, 0x3A),
            expect(bytes, start + 14, 0x3A), expect(bytes, start + 17, 0x3A),
            let day = number(bytes, start, 2), let month = month(bytes, start + 3),
            let year = number(bytes, start + 7, 4), let hour = number(bytes, start + 12, 2),
            let minute = number(bytes, start + 15, 2), let second = number(bytes, start + 18, 2)
        else { return nil }
        return civil(year: year, month: month, day: day, hour: hour, minute: minute, second: second, nanoseconds: 0)
    }

    /// HAProxy `%tr`: `25/Nov/2026:14:24:05.123`, exactly 24 bytes from `start`.
    static func haproxy(_ bytes: [UInt8], at start: Int) -> GatewayLogTime? {
        guard let wall = slashDate(bytes, at: start), expect(bytes, start + 20, 0x2E),
            let millis = number(bytes, start + 21, 3)
        else { return nil }
        return GatewayLogTime(wallClock: wall + millis * 1_000_000, utcOffsetSeconds: nil, resolution: 1_000_000)
    }

    /// nginx `$time_local`: `25/Nov/2026:14:24:05 +0530`, exactly 26 bytes from `start`.
    static func nginxLocal(_ bytes: [UInt8], at start: Int) -> GatewayLogTime? {
        guard let wall = slashDate(bytes, at: start), expect(bytes, start + 20, 0x20),
            let offset = numericOffset(bytes, (start + 21)..<(start + 26))
        else { return nil }
        return GatewayLogTime(wallClock: wall, utcOffsetSeconds: offset, resolution: nanosecondsPerSecond)
    }

    /// `+0530`, `-08:00`, `Z`: seconds east of UTC.
    static func numericOffset(_ bytes: [UInt8], _ range: Range<Int>) -> Int? {
        guard range.lowerBound >= 0, range.upperBound <= bytes.count, !range.isEmpty else { return nil }
        let start = range.lowerBound
        if range.count == 1 && (bytes[start] == 0x5A || bytes[start] == 0x7A) { return 0 }
        guard bytes[start] == 0x2B || bytes[start] == 0x2D else { return nil }
        let sign = bytes[start] == 0x2D ? -1 : 1
        let hours: Int64
        let minutes: Int64
        if range.count == 5, let h = number(bytes, start + 1, 2), let m = number(bytes, start + 3, 2) {
            (hours, minutes) = (h, m)
        } else if range.count == 6, expect(bytes, start + 3, 0x3A), let h = number(bytes, start + 1, 2),
            let m = number(bytes, start + 4, 2)
        {
            (hours, minutes) = (h, m)
        } else if range.count == 3, let h = number(bytes, start + 1, 2) {
            (hours, minutes) = (h, 0)
        } else {
            return nil
        }
        guard hours <= 23, minutes <= 59 else { return nil }
        return sign * Int(hours * 3600 + minutes * 60)
    }

    /// ISO 8601 / RFC 3339 in `range`: `2026-11-25T14:24:05`, optional fraction (up to 9 digits),
    /// optional `Z` or numeric offset. Without a zone the time is naive.
    static func iso8601(_ bytes: [UInt8], _ range: Range<Int>) -> GatewayLogTime? {
        let range = range.clamped(to: 0..<bytes.count)
        let start = range.lowerBound
        guard range.count >= 19, range.count <= 40, expect(bytes, start + 4, 0x2D), expect(bytes, start + 7, 0x2D),
            bytes[start + 10] == 0x54 || bytes[start + 10] == 0x20 || bytes[start + 10] == 0x74,
            expect(bytes, start + 13, 0x3A), expect(bytes, start + 16, 0x3A),
            let year = number(bytes, start, 4), let month = number(bytes, start + 5, 2),
            let day = number(bytes, start + 8, 2), let hour = number(bytes, start + 11, 2),
            let minute = number(bytes, start + 14, 2), let second = number(bytes, start + 17, 2)
        else { return nil }
        var position = start + 19
        var fraction: Int64 = 0
        var resolution = nanosecondsPerSecond
        if position < range.upperBound && (bytes[position] == 0x2E || bytes[position] == 0x2C) {
            position += 1
            var digits = 0
            while position < range.upperBound && LineText.isDigit(bytes[position]) {
                if digits < 9 {
                    fraction = fraction * 10 + Int64(bytes[position] - 0x30)
                    resolution /= 10
                }
                digits += 1
                position += 1
            }
            guard digits > 0 else { return nil }
            for _ in min(digits, 9)..<9 { fraction *= 10 }
        }
        var offset: Int?
        if position < range.upperBound {
            guard let parsed = numericOffset(bytes, position..<range.upperBound) else { return nil }
            offset = parsed
        }
        guard
            let wall = civil(
                year: year, month: month, day: day, hour: hour, minute: minute, second: second, nanoseconds: fraction)
        else { return nil }
        return GatewayLogTime(wallClock: wall, utcOffsetSeconds: offset, resolution: resolution)
    }

    /// Epoch seconds with an optional fraction (`1796144044.606`, nginx `$msec`, Envoy
    /// `%START_TIME(%s.%3f)%`): an instant.
    static func epoch(_ bytes: [UInt8], _ range: Range<Int>) -> GatewayLogTime? {
        let clamped = range.clamped(to: 0..<bytes.count)
        guard clamped.count >= 9, let nanoseconds = LineText.seconds(bytes, clamped) else { return nil }
        var digits = 0
        if let dot = LineText.firstIndex(of: [0x2E], in: bytes, clamped) {
            digits = min(9, clamped.upperBound - dot - 1)
        }
        var resolution = nanosecondsPerSecond
        for _ in 0..<digits { resolution /= 10 }
        return GatewayLogTime(
            wallClock: Timestamp(nanoseconds: nanoseconds), utcOffsetSeconds: 0, resolution: resolution)
    }
}
