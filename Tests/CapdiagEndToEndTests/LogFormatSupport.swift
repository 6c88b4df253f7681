import CapdiagTestSupport
import Foundation

/// A JSON value that keeps what `JSONSerialization` blurs on Linux: integers apart from
/// fractional numbers, booleans apart from numbers, and the order of an object's keys.
enum JSONValue: Equatable {
    case string(String)
    case integer(Int64)
    case fraction(Double, text: String)
    case bool(Bool)
    case null
    case array([JSONValue])
    case object([(key: String, value: JSONValue)])

    static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.string(let a), .string(let b)): a == b
        case (.integer(let a), .integer(let b)): a == b
        case (.fraction(let a, _), .fraction(let b, _)): a == b
        case (.bool(let a), .bool(let b)): a == b
        case (.null, .null): true
        case (.array(let a), .array(let b)): a == b
        case (.object(let a), .object(let b)): a.map(\.key) == b.map(\.key) && a.map(\.value) == b.map(\.value)
        default: false
        }
    }

    subscript(_ key: String) -> JSONValue? {
        guard case .object(let fields) = self else { return nil }
        return fields.first { $0.key == key }?.value
    }

    /// A dotted path through nested objects: `event.duration`.
    subscript(path path: String) -> JSONValue? {
        var value: JSONValue? = self
        for part in path.split(separator: ".") { value = value?[String(part)] }
        return value
    }

    var string: String? { if case .string(let s) = self { s } else { nil } }
    var integer: Int64? { if case .integer(let i) = self { i } else { nil } }
    var double: Double? {
        switch self {
        case .integer(let i): Double(i)
        case .fraction(let d, _): d
        default: nil
        }
    }
    var array: [JSONValue]? { if case .array(let a) = self { a } else { nil } }
    var keys: [String] { if case .object(let fields) = self { fields.map(\.key) } else { [] } }

    /// Leaves by dotted name; an array of objects contributes its members' leaves under its
    /// own name (as Elasticsearch flattens it), an array of scalars is one leaf.
    func leaves(prefix: String = "") -> [(path: String, value: JSONValue)] {
        switch self {
        case .object(let fields):
            fields.flatMap { $0.value.leaves(prefix: prefix.isEmpty ? $0.key : prefix + "." + $0.key) }
        case .array(let items) where items.contains(where: { if case .object = $0 { true } else { false } }):
            items.flatMap { $0.leaves(prefix: prefix) }
        default: [(prefix, self)]
        }
    }
}

/// RFC 8259 parser for one line of output. Throws on anything that is not exactly one value.
struct StrictJSON {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private let bytes: [UInt8]
    private var index = 0

    static func parse(_ text: String) throws -> JSONValue {
        var parser = StrictJSON(bytes: Array(text.utf8))
        parser.skipSpace()
        let value = try parser.value()
        parser.skipSpace()
        guard parser.index == parser.bytes.count else { throw Failure(description: "trailing bytes at \(parser.index)") }
        return value
    }

    private init(bytes: [UInt8]) { self.bytes = bytes }

    private mutating func skipSpace() {
        while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
    }

    private mutating func expect(_ literal: String) throws {
        let expected = Array(literal.utf8)
        guard index + expected.count <= bytes.count, Array(bytes[index..<index + expected.count]) == expected else {
            throw Failure(description: "expected \(literal) at \(index)")
        }
        index += expected.count
    }

    private mutating func value() throws -> JSONValue {
        guard index < bytes.count else { throw Failure(description: "unexpected end") }
        switch bytes[index] {
        case UInt8(ascii: "{"):
            index += 1
            var fields: [(key: String, value: JSONValue)] = []
            skipSpace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
                index += 1
                return .object(fields)
            }
            while true {
                skipSpace()
                let key = try string()
                skipSpace()
                try expect(":")
                skipSpace()
                fields.append((key, try value()))
                skipSpace()
                if index < bytes.count, bytes[index] == UInt8(ascii: ",") {
                    index += 1
                    continue
                }
                try expect("}")
                return .object(fields)
            }
        case UInt8(ascii: "["):
            index += 1
            var items: [JSONValue] = []
            skipSpace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
                index += 1
                return .array(items)
            }
            while true {
                skipSpace()
                items.append(try value())
                skipSpace()
                if index < bytes.count, bytes[index] == UInt8(ascii: ",") {
                    index += 1
                    continue
                }
                try expect("]")
                return .array(items)
            }
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"):
            try expect("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expect("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expect("null")
            return .null
        default: return try number()
        }
    }

    private mutating func number() throws -> JSONValue {
        let start = index
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
        var fractional = false
        while index < bytes.count {
            let byte = bytes[index]
            if byte >= 0x30 && byte <= 0x39 {
                index += 1
            } else if byte == UInt8(ascii: ".") || byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E")
                || ((byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-")) && fractional)
            {
                fractional = true
                index += 1
            } else {
                break
            }
        }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        if !fractional, let integer = Int64(text) { return .integer(integer) }
        guard fractional, let double = Double(text) else { throw Failure(description: "bad number \(text) at \(start)") }
        return .fraction(double, text: text)
    }

    private mutating func string() throws -> String {
        try expect("\"")
        var scalars = String.UnicodeScalarView()
        var raw: [UInt8] = []
        func flush() {
            scalars.append(contentsOf: String(decoding: raw, as: UTF8.self).unicodeScalars)
            raw.removeAll()
        }
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                flush()
                return String(scalars)
            case UInt8(ascii: "\\"):
                flush()
                guard index < bytes.count else { throw Failure(description: "bad escape") }
                let escaped = bytes[index]
                index += 1
                switch escaped {
                case UInt8(ascii: "n"): scalars.append("\n")
                case UInt8(ascii: "t"): scalars.append("\t")
                case UInt8(ascii: "r"): scalars.append("\r")
                case UInt8(ascii: "b"): scalars.append("\u{08}")
                case UInt8(ascii: "f"): scalars.append("\u{0C}")
                case UInt8(ascii: "u"):
                    guard index + 4 <= bytes.count, let code = UInt32(String(decoding: bytes[index..<index + 4], as: UTF8.self), radix: 16)
                    else { throw Failure(description: "bad \\u escape") }
                    index += 4
                    scalars.append(Unicode.Scalar(code) ?? "\u{FFFD}")
                default: scalars.append(Unicode.Scalar(escaped))
                }
            case 0..<0x20: throw Failure(description: "control byte in a string at \(index - 1)")
            default: raw.append(byte)
            }
        }
        throw Failure(description: "unterminated string")
    }
}

/// Output lines of the command line, parsed.
enum LogFormatRun {
    static func lines(_ arguments: [String]) throws -> [JSONValue] {
        let run = try Locations.run(Locations.capdiagExecutable, arguments)
        guard run.status == 0 else { throw StrictJSON.Failure(description: "capdiag \(arguments) exited \(run.status): \(run.stderr)") }
        return try run.stdout.split(separator: "\n").map { try StrictJSON.parse(String($0)) }
    }

    /// Every capture of Captures/ and the lab's client-side captures.
    static var captures: [String] {
        func pcaps(_ folder: String, suffix: String) -> [String] {
            let directory = Locations.captures.appending(path: folder)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
            return names.filter { $0.hasSuffix(suffix) }.sorted().map { directory.appending(path: $0).path }
        }
        return pcaps("", suffix: ".pcap") + pcaps("lab", suffix: ".any.pcap")
    }
}
