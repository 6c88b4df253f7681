/// Reads the top level of one JSON object (RFC 8259) from a log line: string, number, boolean
/// and null members as text; nested objects and arrays are skipped (depth at most 32, counted
/// without recursion). Linear in the line's length; nil for anything that is not one object.
enum FlatJSON {
    enum Value: Equatable {
        case string(String)
        case number(String)
        case bool(Bool)
        case null
        case nested
    }

    static func object(_ bytes: [UInt8]) -> [String: Value]? {
        var cursor = ByteCursor(bytes)
        skipWhitespace(&cursor)
        guard cursor.skip(0x7B) else { return nil }
        var members: [String: Value] = [:]
        skipWhitespace(&cursor)
        if cursor.skip(0x7D) { return trailingOnly(&cursor) ? members : nil }
        while true {
            skipWhitespace(&cursor)
            guard let key = string(&cursor) else { return nil }
            skipWhitespace(&cursor)
            guard cursor.skip(0x3A) else { return nil }
            skipWhitespace(&cursor)
            guard let value = value(&cursor) else { return nil }
            guard members.count < 256 else { return nil }
            members[key] = value
            skipWhitespace(&cursor)
            if cursor.skip(0x2C) { continue }
            guard cursor.skip(0x7D) else { return nil }
            return trailingOnly(&cursor) ? members : nil
        }
    }

    private static func trailingOnly(_ cursor: inout ByteCursor) -> Bool {
        skipWhitespace(&cursor)
        return cursor.isAtEnd
    }

    private static func skipWhitespace(_ cursor: inout ByteCursor) {
        while let byte = cursor.peek(), byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0A {
            cursor.advance()
        }
    }

    private static func value(_ cursor: inout ByteCursor) -> Value? {
        switch cursor.peek() {
        case 0x22: return string(&cursor).map { .string($0) }
        case 0x7B, 0x5B: return skipNested(&cursor) ? .nested : nil
        case 0x74: return cursor.skip("true") ? .bool(true) : nil
        case 0x66: return cursor.skip("false") ? .bool(false) : nil
        case 0x6E: return cursor.skip("null") ? .null : nil
        default:
            let start = cursor.index
            while let byte = cursor.peek(),
                (byte >= 0x30 && byte <= 0x39) || byte == 0x2D || byte == 0x2B || byte == 0x2E || byte == 0x65
                    || byte == 0x45
            {
                cursor.advance()
            }
            guard cursor.index > start, cursor.index - start <= 40 else { return nil }
            return .number(LineText.string(cursor.bytes, start..<cursor.index))
        }
    }

    /// Skips a nested object or array, minding strings; fails past depth 32.
    private static func skipNested(_ cursor: inout ByteCursor) -> Bool {
        var depth = 0
        while let byte = cursor.peek() {
            switch byte {
            case 0x7B, 0x5B:
                depth += 1
                guard depth <= 32 else { return false }
                cursor.advance()
            case 0x7D, 0x5D:
                depth -= 1
                cursor.advance()
                if depth == 0 { return true }
            case 0x22:
                guard string(&cursor) != nil else { return false }
            default:
                cursor.advance()
            }
        }
        return false
    }

    /// A JSON string with its escapes (`\uXXXX` with surrogate pairs; a lone surrogate becomes U+FFFD).
    static func string(_ cursor: inout ByteCursor) -> String? {
        guard cursor.skip(0x22) else { return nil }
        var out: [UInt8] = []
        while let byte = cursor.peek() {
            cursor.advance()
            switch byte {
            case 0x22:
                return String(decoding: out, as: UTF8.self)
            case 0x5C:
                guard let escaped = cursor.peek() else { return nil }
                cursor.advance()
                switch escaped {
                case 0x22, 0x5C, 0x2F: out.append(escaped)
                case 0x62: out.append(0x08)
                case 0x66: out.append(0x0C)
                case 0x6E: out.append(0x0A)
                case 0x72: out.append(0x0D)
                case 0x74: out.append(0x09)
                case 0x75:
                    guard var scalar = hex4(&cursor) else { return nil }
                    if scalar >= 0xD800 && scalar < 0xDC00, cursor.peek() == 0x5C, cursor.peek(1) == 0x75 {
                        cursor.advance(2)
                        guard let low = hex4(&cursor) else { return nil }
                        scalar =
                            low >= 0xDC00 && low < 0xE000
                            ? 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00) : 0xFFFD
                    }
                    out.append(contentsOf: Array(String(Character(Unicode.Scalar(scalar) ?? "\u{FFFD}")).utf8))
                default: return nil
                }
            default:
                guard byte >= 0x20 else { return nil }
                out.append(byte)
            }
        }
        return nil
    }

    private static func hex4(_ cursor: inout ByteCursor) -> UInt32? {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let byte = cursor.peek() else { return nil }
            let digit: UInt32
            switch byte {
            case 0x30...0x39: digit = UInt32(byte - 0x30)
            case 0x41...0x46: digit = UInt32(byte - 0x41 + 10)
            case 0x61...0x66: digit = UInt32(byte - 0x61 + 10)
            default: return nil
            }
            value = value << 4 | digit
            cursor.advance()
        }
        return value
    }
}

extension FlatJSON.Value {
    /// The member as text: strings as they are, numbers and booleans as written; nil for null,
    /// nested values and Envoy's `"-"` (unset).
    var text: String? {
        switch self {
        case .string(let value): return value == "-" || value.isEmpty ? nil : value
        case .number(let value): return value
        case .bool(let value): return value ? "true" : "false"
        case .null, .nested: return nil
        }
    }
}
