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
    /// `Connection: keep-alive` (what keeps an HTTP/1.0 connection open).
    public var connectionKeepAlive = false

    /// The sender ends the connection after this message: `Connection: close`, or HTTP/1.0
    /// without keep-alive (RFC 9112 §9.3).
    public var closesConnection: Bool { connectionClose || (version == "HTTP/1.0" && !connectionKeepAlive) }
    /// X-Request-Id, X-Amzn-Trace-Id, traceparent, X-B3-TraceId, X-Correlation-Id: link a gateway's two legs.
    public var requestIDs: [HeaderValue] = []
    /// Size of the header section in bytes, start line and final empty line included.
    public var headerSectionSize: Int = 0
    public var headerCount = 0
    /// Header lines continued with obs-fold (RFC 9112 §5.2): tolerated, noted.
    public var obsoleteLineFolding = false
    /// What says the sender is a proxy or load balancer, not an application: its `Server`
    /// product (nginx, HAProxy, Envoy, a cloud load balancer), `Via`, `Proxy-Status` (RFC 9209)
    /// or Envoy's `x-envoy-*` headers. The first such sign, as `name: value`.
    public var gatewaySign: String?
}

/// Gateways and load balancers by the product in their `Server` header (lower-cased prefixes).
let gatewayServerProducts = [
    "nginx", "openresty", "tengine", "haproxy", "envoy", "istio-envoy", "cloudflare", "awselb", "elb",
    "google frontend", "gfe", "gws-lb", "microsoft-azure-application-gateway", "akamaighost", "varnish", "caddy",
    "traefik", "kong", "apisix", "bigip", "big-ip", "cloudfront", "squid", "apache-traffic-server", "ats",
]

public struct HeaderValue: Sendable, Equatable, Codable {
    public var name: String
    public var value: String
}

/// Which gateways refuse a malformed upstream response, as observed in the lab against
/// nginx 1.22 and HAProxy 2.6 (`Captures/lab/framing-check.md`): both (a 502 whichever gateway
/// is in front), or only one of them.
public struct GatewaySet: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let nginx = GatewaySet(rawValue: 1)
    public static let haproxy = GatewaySet(rawValue: 2)
    public static let both: GatewaySet = [.nginx, .haproxy]

    /// "nginx 1.22 and HAProxy 2.6", "HAProxy 2.6 (nginx 1.22 passes it on)", …
    public var phrase: String {
        switch self {
        case .both: "nginx 1.22 and HAProxy 2.6 both refuse it"
        case .nginx: "nginx 1.22 refuses it, HAProxy 2.6 passes it on"
        case .haproxy: "HAProxy 2.6 refuses it, nginx 1.22 passes it on"
        default: "no gateway tested refuses it"
        }
    }
}

/// Why a message was rejected: stable codes plus a detail, after Zeek's HTTP weirds and
/// nginx's upstream errors. Response violations say which gateways refuse them.
public enum HTTPViolation: Error, Sendable, Equatable {
    /// The bytes are not HTTP: a TLS record, other binary data, or text that is no start line.
    case notHTTP(String, rejectedBy: GatewaySet = .both)
    case badStatusLine(String, rejectedBy: GatewaySet = .both)
    case badRequestLine(String)
    /// The header line (1-based, after the start line) is not `name: value`.
    case badHeaderLine(line: Int, text: String, rejectedBy: GatewaySet = .both)
    /// The header section was not finished within the limit.
    case headerSectionTooLarge(size: Int)
    case conflictingFraming(String)
    case badContentLength(String, rejectedBy: GatewaySet = .both)
    /// A Transfer-Encoding whose last coding is not chunked on a response.
    case badTransferEncoding(String, rejectedBy: GatewaySet = .both)
    case badChunkSize(String)
    /// A gap in the capture inside a header section: the rest of this direction is not parsed.
    case gapInHeaderSection

    /// The gateways that refuse a response with this violation.
    public var rejectedBy: GatewaySet {
        switch self {
        case .notHTTP(_, let set), .badStatusLine(_, let set), .badHeaderLine(_, _, let set), .badContentLength(_, let set),
            .badTransferEncoding(_, let set):
            set
        default: .both
        }
    }

    public var code: String {
        switch self {
        case .notHTTP: "not_http"
        case .badStatusLine: "bad_status_line"
        case .badRequestLine: "bad_request_line"
        case .badHeaderLine: "bad_header_line"
        case .headerSectionTooLarge: "header_section_too_large"
        case .conflictingFraming: "conflicting_content_length_transfer_encoding"
        case .badContentLength: "bad_content_length"
        case .badTransferEncoding: "bad_transfer_encoding"
        case .badChunkSize: "bad_chunk_size"
        case .gapInHeaderSection: "gap_in_header_section"
        }
    }

    public var detail: String {
        switch self {
        case .notHTTP(let what, _): what
        case .badStatusLine(let line, _), .badRequestLine(let line): line
        case .badHeaderLine(let line, let text, _): "header line \(line): \(text)"
        case .headerSectionTooLarge(let size): "more than \(size) bytes without the end of the header section"
        case .conflictingFraming(let text), .badContentLength(let text, _), .badTransferEncoding(let text, _), .badChunkSize(let text): text
        case .gapInHeaderSection: "bytes missing from the capture inside the header section"
        }
    }
}

/// Request-ID-like headers, lower-cased (matched against the raw name bytes, no `String` made).
let requestIDHeaderNameList: [StaticString] = [
    "x-request-id", "x-amzn-trace-id", "traceparent", "x-b3-traceid", "x-correlation-id", "x-cloud-trace-context",
]

/// The same names as strings (HTTP/2 header fields arrive decoded, lower case).
let requestIDHeaderNames: Set<String> = Set(requestIDHeaderNameList.map(\.description))

/// The longest text value kept from a message (targets, reasons, header values).
let maximumKeptValueLength = 512

enum HeadParser {
    /// Parses a complete header section (`bytes` ends with the empty line).
    /// - Parameter isResponse: parse a status line rather than a request line.
    ///
    /// Lines are index ranges into `bytes`, found one at a time, and header names are matched
    /// byte by byte without case: an array of line slices plus a lower-cased name and a value
    /// `String` for every header cost more than the rest of a message's analysis (profile of
    /// 2026-12, ~11 % of the text run). A `String` is made only for the fields kept.
    static func parse(_ bytes: [UInt8], isResponse: Bool) -> Result<HTTPMessageHead, HTTPViolation> {
        var cursor = 0
        var startRange: Range<Int>?
        while let line = nextLine(bytes, from: &cursor) {
            // Leading empty lines before a request line are ignored (RFC 9112 §2.2).
            if !isResponse && line.isEmpty { continue }
            startRange = line
            break
        }
        guard let startRange else {
            return .failure(isResponse ? .badStatusLine("") : .badRequestLine(""))
        }
        let startLine = bytes[startRange]
        var head = HTTPMessageHead(version: "")
        head.headerSectionSize = bytes.count
        if isResponse {
            // status-line = HTTP-version SP status-code SP [ reason-phrase ]. Judged as the
            // gateways do (framing-check.md): a CR anywhere in it, or a version other than
            // HTTP/d.d, is refused by both (nginx falls back to relaying HTTP/0.9 and logs "upstream
            // sent no valid HTTP/1.0 header"); HTTP/1.10 only by HAProxy; a status code of other
            // than three digits, or a tab after it, only by nginx. Extra spaces are accepted.
            if startLine.contains(UInt8(ascii: "\r")) { return .failure(.badStatusLine(text(startLine))) }
            let version = startLine.prefix { $0 != UInt8(ascii: " ") }
            var rest = startLine[version.endIndex...]
            guard rest.first == UInt8(ascii: " ") else { return .failure(.badStatusLine(text(startLine))) }
            while rest.first == UInt8(ascii: " ") { rest = rest.dropFirst() }
            let code = rest.prefix { $0.isASCIIDigitByte }
            let afterCode = rest[code.endIndex...]
            if !isHTTPVersion(version) {
                // HTTP/1.10: a longer minor version nginx accepts.
                let lenient = version.count > 8 && version.prefix(7).elementsEqual("HTTP/1.".utf8) && version.dropFirst(7).allSatisfy(\.isASCIIDigitByte)
                return .failure(.badStatusLine(text(startLine), rejectedBy: lenient ? .haproxy : .both))
            }
            guard !code.isEmpty, afterCode.isEmpty || afterCode.first == UInt8(ascii: " ") || afterCode.first == UInt8(ascii: "\t") else {
                return .failure(.badStatusLine(text(startLine)))
            }
            guard code.count == 3, afterCode.first != UInt8(ascii: "\t") else {
                return .failure(.badStatusLine(text(startLine), rejectedBy: .nginx))
            }
            head.version = versionText(version)
            head.status = code.reduce(0) { $0 * 10 + Int($1 &- UInt8(ascii: "0")) }
            head.reason = afterCode.isEmpty ? "" : text(afterCode.dropFirst())
        } else {
            // request-line = method SP request-target SP HTTP-version. It may be split on runs of
            // whitespace (RFC 9112 §3: recipients MAY).
            // Three words found in place (split would allocate an array for every request).
            var words: (ArraySlice<UInt8>, ArraySlice<UInt8>, ArraySlice<UInt8>) = ([], [], [])
            var count = 0
            var rest = startLine
            while true {
                while let first = rest.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") { rest = rest.dropFirst() }
                guard !rest.isEmpty else { break }
                let word = rest.prefix { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") }
                rest = rest[word.endIndex...]
                count += 1
                switch count {
                case 1: words.0 = word
                case 2: words.1 = word
                case 3: words.2 = word
                default: break
                }
            }
            guard count == 3, words.0.allSatisfy(isTokenCharacter), isHTTPVersion(words.2) else {
                return .failure(.badRequestLine(text(startLine)))
            }
            head.method = text(words.0)
            head.target = text(words.1)
            head.version = versionText(words.2)
        }
        var contentLengths: [Int64] = []
        var lineNumber = 0
        while let rawLine = nextLine(bytes, from: &cursor) {
            guard !rawLine.isEmpty else { continue }
            lineNumber += 1
            // Lines end in CRLF or LF; one CR was stripped. More CRs right before the LF are
            // refused by HAProxy only; a CR elsewhere in the line by both (framing-check.md).
            let lower = rawLine.lowerBound
            var upper = rawLine.upperBound
            var trailingCR = false
            while upper > lower && bytes[upper - 1] == UInt8(ascii: "\r") {
                upper -= 1
                trailingCR = true
            }
            let line = lower..<upper
            if isResponse && contains(bytes, line, { $0 == UInt8(ascii: "\r") }) {
                return .failure(.badHeaderLine(line: lineNumber, text: text(bytes[rawLine])))
            }
            if !line.isEmpty && (bytes[lower] == UInt8(ascii: " ") || bytes[lower] == UInt8(ascii: "\t")) {
                // obs-fold: a folded line before any field is invalid everywhere; after one, HAProxy
                // unfolds it and nginx refuses it ("upstream sent invalid header").
                guard head.headerCount > 0 else { return .failure(.badHeaderLine(line: lineNumber, text: text(bytes[line]))) }
                if isResponse { return .failure(.badHeaderLine(line: lineNumber, text: "obs-fold: " + text(bytes[line]), rejectedBy: .nginx)) }
                head.obsoleteLineFolding = true
                continue
            }
            guard let colon = firstIndex(bytes, line, of: UInt8(ascii: ":")), colon > lower else {
                // No colon: nginx passes a bare token line on; a line with a space or a control
                // byte it refuses too (the name ends in an invalid character).
                let nginxRefuses = contains(bytes, line, { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") || $0 < 0x20 || $0 == 0x7F })
                    || (!line.isEmpty && bytes[lower] == UInt8(ascii: ":"))
                return .failure(.badHeaderLine(line: lineNumber, text: text(bytes[line]), rejectedBy: nginxRefuses ? .both : .haproxy))
            }
            let name = lower..<colon
            // No whitespace between name and colon (RFC 9112 §5.1), and name is a token. nginx
            // refuses whitespace and control bytes in a name but passes other non-token bytes
            // ('(', '@', obs-text) on; HAProxy refuses them all.
            guard !contains(bytes, name, { !isTokenCharacter($0) }) else {
                let nginxRefuses = contains(bytes, name, { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") || $0 < 0x20 || $0 == 0x7F })
                return .failure(.badHeaderLine(line: lineNumber, text: text(bytes[line]), rejectedBy: nginxRefuses ? .both : .haproxy))
            }
            if isResponse && trailingCR {
                return .failure(.badHeaderLine(line: lineNumber, text: "CR CR LF ending: " + text(bytes[line]), rejectedBy: .haproxy))
            }
            let valueRange = (colon + 1)..<upper
            // A NUL in a value: nginx refuses it, HAProxy passes it on.
            if isResponse && contains(bytes, valueRange, { $0 == 0 }) {
                return .failure(.badHeaderLine(line: lineNumber, text: text(bytes[line]), rejectedBy: .nginx))
            }
            head.headerCount += 1
            // The name is a token (ASCII), so comparing without ASCII case is what comparing
            // its `lowercased()` text did.
            // Framing headers are read in place, on bytes: a String per item made them a tenth
            // of a busy gateway capture's time.
            if nameIs(bytes, name, "content-length") {
                if trimmedRange(bytes, valueRange).isEmpty { return .failure(.badContentLength("empty Content-Length", rejectedBy: .haproxy)) }
                var valid = true
                forEachItem(bytes, valueRange) { item, _ in
                    // 1*DIGIT (RFC 9110 §8.6): leading zeros are valid; the value must fit.
                    var number: Int64 = 0
                    var significant = 0
                    guard !item.isEmpty else { valid = false; return false }
                    for index in item {
                        let byte = bytes[index]
                        guard byte.isASCIIDigitByte else { valid = false; return false }
                        if significant == 0 && byte == UInt8(ascii: "0") { continue }
                        significant += 1
                        guard significant <= 18 else { valid = false; return false }
                        number = number * 10 + Int64(byte &- UInt8(ascii: "0"))
                    }
                    contentLengths.append(number)
                    return true
                }
                // nginx reads an unparsable length as "until close"; HAProxy refuses it.
                guard valid else { return .failure(.badContentLength("Content-Length: \(trimmed(bytes[valueRange]))", rejectedBy: .haproxy)) }
            } else if nameIs(bytes, name, "transfer-encoding") {
                head.hasTransferEncoding = true
                // The last coding decides (an empty item between commas is skipped, a blank one is not).
                var last: Range<Int>?
                forEachItem(bytes, valueRange) { item, rawEmpty in
                    if !rawEmpty { last = item }
                    return true
                }
                head.chunked = last.map { nameIs(bytes, $0, "chunked") } ?? false
            } else if nameIs(bytes, name, "host") {
                head.host = trimmed(bytes[valueRange])
            } else if nameIs(bytes, name, "server") {
                guard head.gatewaySign == nil else { continue }
                let value = trimmed(bytes[valueRange])
                let product = value.lowercased()
                if gatewayServerProducts.contains(where: { product.hasPrefix($0) }) { head.gatewaySign = "Server: \(value)" }
            } else if nameIs(bytes, name, "via") || nameIs(bytes, name, "proxy-status") {
                head.gatewaySign = "\(text(bytes[name]).lowercased()): \(trimmed(bytes[valueRange]))"
            } else if nameIs(bytes, name, "connection") {
                forEachItem(bytes, valueRange) { item, _ in
                    if nameIs(bytes, item, "close") { head.connectionClose = true }
                    if nameIs(bytes, item, "keep-alive") { head.connectionKeepAlive = true }
                    return true
                }
            } else if head.gatewaySign == nil && name.count >= 8 && nameIs(bytes, name.lowerBound..<(name.lowerBound + 8), "x-envoy-") {
                // The name as the text kept it: lower-cased and capped like every value.
                head.gatewaySign = "\(text(bytes[name]).lowercased()): \(trimmed(bytes[valueRange]))"
            } else if head.requestIDs.count < 8, let idName = requestIDHeaderNameList.first(where: { nameIs(bytes, name, $0) }) {
                head.requestIDs.append(HeaderValue(name: idName.description, value: trimmed(bytes[valueRange])))
            }
        }
        if let first = contentLengths.first {
            guard contentLengths.allSatisfy({ $0 == first }) else {
                // nginx takes the last value (and then cuts the body short); HAProxy refuses.
                return .failure(.badContentLength("differing Content-Length values: \(contentLengths)", rejectedBy: .haproxy))
            }
            head.contentLength = first
        }
        return .success(head)
    }

    /// The next line of `bytes` from `cursor` up to its LF (one CR before the LF dropped), moving
    /// `cursor` past the LF; nil when no LF follows (bytes after the last LF are no line).
    static func nextLine(_ bytes: [UInt8], from cursor: inout Int) -> Range<Int>? {
        let start = cursor
        guard start < bytes.count else { return nil }
        let newline = bytes.withUnsafeBufferPointer { buffer -> Int? in
            var index = start
            while index < buffer.count {
                if buffer[index] == UInt8(ascii: "\n") { return index }
                index += 1
            }
            return nil
        }
        guard let newline else {
            cursor = bytes.count
            return nil
        }
        cursor = newline + 1
        var end = newline
        if end > start && bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        return start..<end
    }

    /// Whether a byte of `bytes[range]` matches.
    static func contains(_ bytes: [UInt8], _ range: Range<Int>, _ matches: (UInt8) -> Bool) -> Bool {
        for index in range where matches(bytes[index]) { return true }
        return false
    }

    static func firstIndex(_ bytes: [UInt8], _ range: Range<Int>, of byte: UInt8) -> Int? {
        for index in range where bytes[index] == byte { return index }
        return nil
    }

    /// Whether `bytes[range]` spells `name` (lower-case ASCII), ignoring ASCII case.
    static func nameIs(_ bytes: [UInt8], _ range: Range<Int>, _ name: StaticString) -> Bool {
        guard range.count == name.utf8CodeUnitCount else { return false }
        return name.withUTF8Buffer { literal in
            var position = 0
            for index in range {
                var byte = bytes[index]
                if byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") { byte |= 0x20 }
                if byte != literal[position] { return false }
                position += 1
            }
            return true
        }
    }

    static func isHTTPVersion(_ bytes: ArraySlice<UInt8>) -> Bool {
        // HTTP-version = "HTTP/" DIGIT "." DIGIT
        guard bytes.count == 8 else { return false }
        let start = bytes.startIndex
        return bytes.prefix(5).elementsEqual("HTTP/".utf8) && bytes[start + 5].isASCIIDigitByte
            && bytes[start + 6] == UInt8(ascii: ".") && bytes[start + 7].isASCIIDigitByte
    }

    /// tchar (RFC 9110 §5.6.2).
    static func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
            UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
            UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            true
        default: false
        }
    }

    /// Bytes as text, capped, with invalid UTF-8 replaced.
    /// "HTTP/1.1" and "HTTP/1.0" as literals: nearly every message has one of them.
    static func versionText(_ bytes: ArraySlice<UInt8>) -> String {
        if bytes.elementsEqual("HTTP/1.1".utf8) { return "HTTP/1.1" }
        if bytes.elementsEqual("HTTP/1.0".utf8) { return "HTTP/1.0" }
        return text(bytes)
    }

    static func text(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes.prefix(maximumKeptValueLength), as: UTF8.self)
    }

    /// Each comma-separated item of a header value, spaces and tabs trimmed, in order, and
    /// whether it was empty before trimming (`a,,b`); `body` returns false to stop.
    static func forEachItem(_ bytes: [UInt8], _ range: Range<Int>, _ body: (Range<Int>, Bool) -> Bool) {
        var start = range.lowerBound
        while true {
            var end = start
            while end < range.upperBound && bytes[end] != UInt8(ascii: ",") { end += 1 }
            guard body(trimmedRange(bytes, start..<end), start == end), end < range.upperBound else { return }
            start = end + 1
        }
    }

    static func trimmedRange(_ bytes: [UInt8], _ range: Range<Int>) -> Range<Int> {
        var low = range.lowerBound, high = range.upperBound
        while low < high && (bytes[low] == UInt8(ascii: " ") || bytes[low] == UInt8(ascii: "\t")) { low += 1 }
        while high > low && (bytes[high - 1] == UInt8(ascii: " ") || bytes[high - 1] == UInt8(ascii: "\t")) { high -= 1 }
        return low..<high
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

