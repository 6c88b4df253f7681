/// A read position in one log line. Every read checks the bounds first and answers `nil` (or an
/// empty range) past the end, so no input can trap; every loop moves forward, so a line is read
/// in time linear in its length.
struct ByteCursor {
    let bytes: [UInt8]
    private(set) var index: Int

    init(_ bytes: [UInt8], at index: Int = 0) {
        self.bytes = bytes
        self.index = min(max(0, index), bytes.count)
    }

    var isAtEnd: Bool { index >= bytes.count }
    var remaining: Int { bytes.count - index }

    func peek(_ offset: Int = 0) -> UInt8? {
        let position = index + offset
        return position >= 0 && position < bytes.count ? bytes[position] : nil
    }

    mutating func advance(_ count: Int = 1) { index = min(bytes.count, index + max(0, count)) }

    mutating func seek(to position: Int) { index = min(max(0, position), bytes.count) }

    /// Consumes `byte` when it is next.
    mutating func skip(_ byte: UInt8) -> Bool {
        guard peek() == byte else { return false }
        index += 1
        return true
    }

    /// Consumes `literal` when the next bytes are exactly it.
    mutating func skip(_ literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard remaining >= count else { return false }
        let matches = literal.withUTF8Buffer { literalBytes in
            var i = 0
            while i < count {
                if bytes[index + i] != literalBytes[i] { return false }
                i += 1
            }
            return true
        }
        if matches { index += count }
        return matches
    }

    mutating func skipSpaces() {
        while let byte = peek(), byte == 0x20 || byte == 0x09 { index += 1 }
    }

    /// Reads up to (not including) the next space or tab, or to the end.
    mutating func token() -> Range<Int> {
        let start = index
        while let byte = peek(), byte != 0x20 && byte != 0x09 { index += 1 }
        return start..<index
    }

    /// Reads up to (not including) `byte` and consumes it; nil (position unchanged) when absent.
    mutating func upTo(_ byte: UInt8) -> Range<Int>? {
        var position = index
        while position < bytes.count {
            if bytes[position] == byte {
                let range = index..<position
                index = position + 1
                return range
            }
            position += 1
        }
        return nil
    }

    /// Reads a double-quoted value (the cursor is on the opening quote) up to the closing quote,
    /// taking `\"` as an escaped quote. Nil when there is no opening or closing quote.
    mutating func quoted() -> Range<Int>? {
        guard peek() == 0x22 else { return nil }
        var position = index + 1
        while position < bytes.count {
            let byte = bytes[position]
            if byte == 0x5C {  // backslash: the next byte is escaped
                position += 2
                continue
            }
            if byte == 0x22 {
                let range = (index + 1)..<position
                index = position + 1
                return range
            }
            position += 1
        }
        return nil
    }

    /// The rest of the line.
    mutating func rest() -> Range<Int> {
        let range = index..<bytes.count
        index = bytes.count
        return range
    }
}

/// Text helpers over byte ranges of a line. Invalid UTF-8 is repaired (U+FFFD), never rejected.
enum LineText {
    static func string(_ bytes: [UInt8], _ range: Range<Int>) -> String {
        let clamped = range.clamped(to: 0..<bytes.count)
        return String(decoding: bytes[clamped], as: UTF8.self)
    }

    /// A decimal integer of at most 18 digits with an optional sign; nil otherwise.
    static func integer(_ bytes: [UInt8], _ range: Range<Int>) -> Int64? {
        let clamped = range.clamped(to: 0..<bytes.count)
        var position = clamped.lowerBound
        var negative = false
        if position < clamped.upperBound, bytes[position] == 0x2D || bytes[position] == 0x2B {
            negative = bytes[position] == 0x2D
            position += 1
        }
        let digits = clamped.upperBound - position
        guard digits > 0, digits <= 18 else { return nil }
        var value: Int64 = 0
        while position < clamped.upperBound {
            let byte = bytes[position]
            guard byte >= 0x30, byte <= 0x39 else { return nil }
            value = value * 10 + Int64(byte - 0x30)
            position += 1
        }
        return negative ? -value : value
    }

    static func integer(_ text: Substring) -> Int64? { integer(Array(text.utf8), 0..<text.utf8.count) }

    /// A non-negative decimal number of seconds with up to 9 fractional digits ("0.001", "12",
    /// "1796144044.606"), in nanoseconds; nil for "-" and anything else.
    static func seconds(_ bytes: [UInt8], _ range: Range<Int>) -> Int64? {
        let clamped = range.clamped(to: 0..<bytes.count)
        var whole: Int64 = 0
        var wholeDigits = 0
        var fraction: Int64 = 0
        var fractionDigits = 0
        var inFraction = false
        for position in clamped {
            let byte = bytes[position]
            if byte == 0x2E {
                if inFraction { return nil }
                inFraction = true
                continue
            }
            guard byte >= 0x30, byte <= 0x39 else { return nil }
            if inFraction {
                guard fractionDigits < 9 else { continue }  // finer than ns: dropped
                fraction = fraction * 10 + Int64(byte - 0x30)
                fractionDigits += 1
            } else {
                guard wholeDigits < 11 else { return nil }
                whole = whole * 10 + Int64(byte - 0x30)
                wholeDigits += 1
            }
        }
        guard wholeDigits > 0 || fractionDigits > 0 else { return nil }
        var scale: Int64 = 1
        for _ in fractionDigits..<9 { scale *= 10 }
        let (wholeNanoseconds, overflow) = whole.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return nil }
        return wholeNanoseconds + fraction * scale  // fraction * scale < 1e9: cannot overflow past the check
    }

    /// A logged count of milliseconds in nanoseconds; nil when negative or too large to hold.
    static func milliseconds(_ value: Int64) -> Int64? {
        guard value >= 0, value <= Int64.max / 1_000_000 else { return nil }
        return value * 1_000_000
    }

    static func seconds(_ text: Substring) -> Int64? { seconds(Array(text.utf8), 0..<text.utf8.count) }

    static func isDigit(_ byte: UInt8?) -> Bool { byte.map { $0 >= 0x30 && $0 <= 0x39 } ?? false }

    /// Whether `needle` occurs in `bytes[range]` (a plain scan: needles are short constants).
    static func contains(_ bytes: [UInt8], _ range: Range<Int>, _ needle: [UInt8]) -> Bool {
        firstIndex(of: needle, in: bytes, range) != nil
    }

    static func firstIndex(of needle: [UInt8], in bytes: [UInt8], _ range: Range<Int>) -> Int? {
        let clamped = range.clamped(to: 0..<bytes.count)
        guard !needle.isEmpty, clamped.count >= needle.count else { return nil }
        var position = clamped.lowerBound
        let last = clamped.upperBound - needle.count
        while position <= last {
            if bytes[position] == needle[0] {
                var i = 1
                while i < needle.count && bytes[position + i] == needle[i] { i += 1 }
                if i == needle.count { return position }
            }
            position += 1
        }
        return nil
    }

    static func lastIndex(of needle: [UInt8], in bytes: [UInt8], _ range: Range<Int>) -> Int? {
        let clamped = range.clamped(to: 0..<bytes.count)
        guard !needle.isEmpty, clamped.count >= needle.count else { return nil }
        var position = clamped.upperBound - needle.count
        while position >= clamped.lowerBound {
            if bytes[position] == needle[0] {
                var i = 1
                while i < needle.count && bytes[position + i] == needle[i] { i += 1 }
                if i == needle.count { return position }
            }
            position -= 1
        }
        return nil
    }
}
