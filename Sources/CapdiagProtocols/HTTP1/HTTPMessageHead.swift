/// Parsed start line and header fields of an HTTP/1.x message (RFC 9112 §2–§6).
///
/// Only what diagnosis needs is kept: method, target, status, framing headers, Host and
/// request-ID-like headers. Values are capped in length; bodies are never stored.
public struct HTTPMessageHead: Sendable, Equatable {
    public var method: String?
    public var target: String?
    public var version: String
    public var status: Int?
    public var reason: String?
    public var host: String?
    /// `Content-Length`, when present and valid.
    public var contentLength: Int64?
    /// Whether `Transfer-Encoding`'s final coding is `chunked`.
    public var chunked = false
    /// Whether any `Transfer-Encoding` was present.
    public var hasTransferEncoding = false
    /// `Connection: close`.
    public var connectionClose = false
    /// X-Request-Id, X-Amzn-Trace-Id, traceparent, X-B3-TraceId, X-Correlation-Id: link a gateway's two legs.
    public var requestIDs: [HeaderValue] = []
    /// Size of the header section in bytes, start line and final empty line included.
    public var headerSectionSize: Int = 0
    public var headerCount = 0
    /// Header lines continued with obs-fold (RFC 9112 §5.2): tolerated, noted.
    public var obsoleteLineFolding = false
}

public struct HeaderValue: Sendable, Equatable, Codable {
    public var name: String
    public var value: String
}

/// Why a message was rejected: stable codes plus a detail, after Zeek's HTTP weirds and
/// nginx's upstream errors.
public enum HTTPViolation: Error, Sendable, Equatable {
    /// The bytes are not HTTP: a TLS record, other binary data, or text that is no start line.
    case notHTTP(String)
    case badStatusLine(String)
    case badRequestLine(String)
    /// The header line (1-based, after the start line) is not `name: value`.
    case badHeaderLine(line: Int, text: String)
    /// The header section was not finished within the limit.
    case headerSectionTooLarge(size: Int)
    case conflictingFraming(String)
    case badContentLength(String)
    case badChunkSize(String)
    /// A gap in the capture inside a header section: the rest of this direction is not parsed.
    case gapInHeaderSection

    public var code: String {
        switch self {
        case .notHTTP: "not_http"
        case .badStatusLine: "bad_status_line"
        case .badRequestLine: "bad_request_line"
        case .badHeaderLine: "bad_header_line"
        case .headerSectionTooLarge: "header_section_too_large"
        case .conflictingFraming: "conflicting_content_length_transfer_encoding"
        case .badContentLength: "bad_content_length"
        case .badChunkSize: "bad_chunk_size"
        case .gapInHeaderSection: "gap_in_header_section"
        }
    }

    public var detail: String {
        switch self {
        case .notHTTP(let what): what
        case .badStatusLine(let line), .badRequestLine(let line): line
        case .badHeaderLine(let line, let text): "header line \(line): \(text)"
        case .headerSectionTooLarge(let size): "more than \(size) bytes without the end of the header section"
        case .conflictingFraming(let text), .badContentLength(let text), .badChunkSize(let text): text
        case .gapInHeaderSection: "bytes missing from the capture inside the header section"
        }
    }
}

/// Request-ID-like headers, lower-cased.
let requestIDHeaderNames: Set<String> = [
    "x-request-id", "x-amzn-trace-id", "traceparent", "x-b3-traceid", "x-correlation-id", "x-cloud-trace-context",
]

/// The longest text value kept from a message (targets, reasons, header values).
let maximumKeptValueLength = 512

enum HeadParser {
    /// Parses a complete header section (`bytes` ends with the empty line).
    /// - Parameter isResponse: parse a status line rather than a request line.
    static func parse(_ bytes: [UInt8], isResponse: Bool) -> Result<HTTPMessageHead, HTTPViolation> {
        var lines: [ArraySlice<UInt8>] = []
        var start = 0
        for index in bytes.indices where bytes[index] == UInt8(ascii: "\n") {
            var end = index
            if end > start && bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            lines.append(bytes[start..<end])
            start = index + 1
        }
        // Leading empty lines before a request line are ignored (RFC 9112 §2.2).
        while !isResponse, let first = lines.first, first.isEmpty { lines.removeFirst() }
        guard let startLine = lines.first else {
            return .failure(isResponse ? .badStatusLine("") : .badRequestLine(""))
        }
        var head = HTTPMessageHead(version: "")
        head.headerSectionSize = bytes.count
        // A request line may be split on runs of whitespace (RFC 9112 §3: recipients MAY); a
        // status line is parsed strictly.
        let parts =
            isResponse
            ? startLine.split(separator: UInt8(ascii: " "), maxSplits: 2, omittingEmptySubsequences: false)
            : startLine.split(whereSeparator: { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") })
        if isResponse {
            // status-line = HTTP-version SP status-code SP [ reason-phrase ]
            guard parts.count >= 2, isHTTPVersion(parts[0]), parts[1].count == 3,
                parts[1].allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
            else { return .failure(.badStatusLine(text(startLine))) }
            head.version = text(parts[0])
            head.status = Int(text(parts[1]))
            head.reason = parts.count > 2 ? text(parts[2]) : ""
        } else {
            // request-line = method SP request-target SP HTTP-version
            guard parts.count == 3, !parts[0].isEmpty, parts[0].allSatisfy(isTokenCharacter), !parts[1].isEmpty,
                isHTTPVersion(parts[2])
            else { return .failure(.badRequestLine(text(startLine))) }
            head.method = text(parts[0])
            head.target = text(parts[1])
            head.version = text(parts[2])
        }
        var contentLengths: [Int64] = []
        var lineNumber = 0
        for line in lines.dropFirst() where !line.isEmpty {
            lineNumber += 1
            if line.first == UInt8(ascii: " ") || line.first == UInt8(ascii: "\t") {
                // obs-fold: a proxy replaces it with a space (RFC 9112 §5.2); a folded line
                // before any field is invalid.
                guard head.headerCount > 0 else { return .failure(.badHeaderLine(line: lineNumber, text: text(line))) }
                head.obsoleteLineFolding = true
                continue
            }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex else {
                return .failure(.badHeaderLine(line: lineNumber, text: text(line)))
            }
            let nameBytes = line[line.startIndex..<colon]
            // No whitespace between name and colon (RFC 9112 §5.1), and name is a token.
            guard nameBytes.allSatisfy(isTokenCharacter) else {
                return .failure(.badHeaderLine(line: lineNumber, text: text(line)))
            }
            head.headerCount += 1
            let name = text(nameBytes).lowercased()
            let value = trimmed(line[(colon + 1)...])
            switch name {
            case "content-length":
                for item in value.split(separator: ",") {
                    let digits = item.trimmingSpaces
                    // 1*DIGIT (RFC 9110 §8.6): leading zeros are valid; the value must fit.
                    let significant = digits.drop { $0 == "0" }
                    guard !digits.isEmpty, significant.count <= 18, digits.allSatisfy(\.isASCIIDigit),
                        let number = Int64(significant.isEmpty ? "0" : String(significant))
                    else { return .failure(.badContentLength("Content-Length: \(value)")) }
                    contentLengths.append(number)
                }
            case "transfer-encoding":
                head.hasTransferEncoding = true
                let codings = value.lowercased().split(separator: ",").map(\.trimmingSpaces)
                head.chunked = codings.last == "chunked"
            case "host": head.host = value
            case "connection": head.connectionClose = value.lowercased().split(separator: ",").contains { $0.trimmingSpaces == "close" }
            default:
                if requestIDHeaderNames.contains(name) && head.requestIDs.count < 8 {
                    head.requestIDs.append(HeaderValue(name: name, value: value))
                }
            }
        }
        if let first = contentLengths.first {
            guard contentLengths.allSatisfy({ $0 == first }) else {
                return .failure(.badContentLength("differing Content-Length values: \(contentLengths)"))
            }
            head.contentLength = first
        }
        return .success(head)
    }

    static func isHTTPVersion(_ bytes: ArraySlice<UInt8>) -> Bool {
        // HTTP-version = "HTTP/" DIGIT "." DIGIT
        let chars = Array(bytes)
        return chars.count == 8 && chars[0..<5].elementsEqual("HTTP/".utf8) && chars[5].isASCIIDigitByte
            && chars[6] == UInt8(ascii: ".") && chars[7].isASCIIDigitByte
    }

    /// tchar (RFC 9110 §5.6.2).
    static func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default: "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }

    /// Bytes as text, capped, with invalid UTF-8 replaced.
    static func text(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes.prefix(maximumKeptValueLength), as: UTF8.self)
    }

    static func trimmed(_ bytes: ArraySlice<UInt8>) -> String {
        var slice = bytes
        while let first = slice.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") { slice = slice.dropFirst() }
        while let last = slice.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { slice = slice.dropLast() }
        return text(slice)
    }
}

extension UInt8 {
    var isASCIIDigitByte: Bool { self >= UInt8(ascii: "0") && self <= UInt8(ascii: "9") }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}

extension StringProtocol {
    var trimmingSpaces: String {
        var slice = Substring(self)
        while slice.first == " " || slice.first == "\t" { slice = slice.dropFirst() }
        while slice.last == " " || slice.last == "\t" { slice = slice.dropLast() }
        return String(slice)
    }
}
