/// How a message ended when its connection closed mid-message.
public enum CloseKind: String, Sendable, Codable {
    case fin, rst, endOfCapture = "end_of_capture"
}

/// An incremental HTTP/1.x parser for one direction of a connection (RFC 9112).
///
/// Push bytes with `feed`; events come back through the callback in order. Header sections are
/// buffered up to `maximumHeaderSection` bytes; bodies are only counted, never stored. After a
/// violation the direction is abandoned (the rest of the stream cannot be framed).
public struct HTTPMessageParser: Sendable {
    public enum Role: Sendable { case request, response }

    public enum Event: Sendable, Equatable {
        /// The first byte of a new message.
        case messageStarted
        /// The header section is complete.
        case head(HTTPMessageHead)
        /// The message is complete, with its body length.
        case complete(bodyBytes: Int64)
        /// The stream is not valid HTTP from here on.
        case violation(HTTPViolation)
        /// The rest of the stream is not HTTP (CONNECT or 101 Switching Protocols).
        case tunnel
        /// Bytes lost from the capture broke the message in progress; the parser waits for a
        /// chunk that starts a new message.
        case lostSync
    }

    enum State: Sendable, Equatable {
        case idle
        case head
        case fixedBody(remaining: Int64)
        case chunkSize
        case chunkData(remaining: Int64)
        case chunkDataEnd
        case trailers
        case untilClose
        case tunnel
        case failed
        /// After a gap: waiting for a delivered chunk that begins a new message.
        case resync
    }

    public let role: Role
    public let maximumHeaderSection: Int
    var state: State = .idle
    var headBuffer: [UInt8] = []
    /// Bytes on the current line, CR excluded: an empty line ends a header section.
    var lineLength = 0
    var chunkLine: [UInt8] = []
    var bodyBytes: Int64 = 0
    /// Request methods awaiting a response, oldest first (response parsers only).
    var pendingMethods = FIFOQueue<String>()
    /// Bytes that went through after the stream became a tunnel (CONNECT, 101), and the
    /// first of them, to tell what the tunnel carries (TLS, HTTP/2).
    public private(set) var tunnelledBytes: Int64 = 0
    /// Empty lines came before the current response's status line.
    var emptyLinesBeforeStart = false
    /// A message started on this stream already.
    var sawMessage = false
    public private(set) var tunnelPrefix: [UInt8] = []

    /// An empty parser to swap in while the real one runs.
    static let placeholder = HTTPMessageParser(role: .request)

    public init(role: Role, maximumHeaderSection: Int = 65536) {
        self.role = role
        self.maximumHeaderSection = maximumHeaderSection
    }

    /// Tells a response parser that a request with this method was sent, so the matching
    /// response is framed right (HEAD and CONNECT; RFC 9112 §6.3).
    public mutating func expectResponse(toMethod method: String) {
        if pendingMethods.count < 1024 { pendingMethods.append(method) }
    }

    /// The other direction became a tunnel (a 2xx to CONNECT, 101 Switching Protocols): this
    /// one carries tunnelled bytes from now on too.
    public mutating func enterTunnel() {
        if state != .tunnel { state = .tunnel }
    }

    /// Frees the header and chunk-line buffers when no message is in progress (they are
    /// cleared before the next use), and an empty method queue.
    mutating func releaseIdleBuffers() {
        switch state {
        case .idle, .failed, .tunnel, .resync:
            headBuffer = []
            chunkLine = []
        default:
            break
        }
        if pendingMethods.isEmpty { pendingMethods = FIFOQueue() }
    }

    /// Whether the parser is between messages.
    public var isIdle: Bool { state == .idle }
    public var hasFailed: Bool { state == .failed }
    public var isInHead: Bool { state == .head }

    /// Bytes of the current message's body seen so far.
    public var currentBodyBytes: Int64 { bodyBytes }

    /// Bytes still expected for a message with a known length, if any.
    public var remainingDeclaredBytes: Int64? {
        if case .fixedBody(let remaining) = state { return remaining }
        return nil
    }

    /// Parses `bytes`, calling `event` for everything that happens, in order.
    public mutating func feed(_ bytes: RawSpan, _ event: (Event) -> Void) {
        var index = 0
        let count = bytes.byteCount
        if state == .resync {
            // Messages start at segment boundaries in practice: resume at a chunk that looks
            // like a start line.
            guard startsMessage(bytes) else { return }
            state = .idle
        }
        while index < count {
            switch state {
            case .tunnel:
                // Not HTTP/1 any more: counted, never parsed (no exchange is made of it).
                tunnelledBytes += Int64(count - index)
                while tunnelPrefix.count < 16 && index < count {
                    tunnelPrefix.append(bytes.unsafeLoad(fromByteOffset: index, as: UInt8.self))
                    index += 1
                }
                return
            case .failed, .resync:
                return
            case .idle:
                // Between messages, stray CRLFs are skipped (RFC 9112 §2.2). Before a status
                // line nginx 1.22 does not skip them (it relays the response as HTTP/0.9 and
                // logs an error), HAProxy does: noted, and judged when the head is complete.
                let byte = bytes.unsafeLoad(fromByteOffset: index, as: UInt8.self)
                if byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n") {
                    // Only before a connection's first response: after one, a stray CRLF is the
                    // previous body running long, which a gateway does not hold against the next.
                    if role == .response && !sawMessage { emptyLinesBeforeStart = true }
                    index += 1
                    continue
                }
                state = .head
                sawMessage = true
                headBuffer.removeAll(keepingCapacity: true)
                lineLength = 0
                bodyBytes = 0
                event(.messageStarted)
            case .head where headBuffer.count >= 8:
                // Past the first 8 bytes (checked one by one below): copy up to the end of the
                // line in one append, never past the header-section limit.
                let limit = min(count, index + (maximumHeaderSection - headBuffer.count))
                var end = index
                var printable = 0
                var sawNewline = false
                while end < limit {
                    let byte = bytes.unsafeLoad(fromByteOffset: end, as: UInt8.self)
                    end += 1
                    if byte == UInt8(ascii: "\n") {
                        sawNewline = true
                        break
                    }
                    if byte != UInt8(ascii: "\r") { printable += 1 }
                }
                let start = index
                bytes.withUnsafeBytes { raw in headBuffer.append(contentsOf: raw[start..<end]) }
                index = end
                lineLength += printable
                if sawNewline {
                    if lineLength == 0 { headComplete(event) }
                    lineLength = 0
                }
                if state == .head && headBuffer.count >= maximumHeaderSection {
                    fail(.headerSectionTooLarge(size: headBuffer.count), event)
                }
            case .head:
                let byte = bytes.unsafeLoad(fromByteOffset: index, as: UInt8.self)
                index += 1
                headBuffer.append(byte)
                if headBuffer.count == 8, let violation = notHTTPViolation() {
                    fail(violation, event)
                    continue
                }
                if byte == UInt8(ascii: "\n") {
                    if lineLength == 0 && headBuffer.count > 2 {
                        headComplete(event)
                    }
                    lineLength = 0
                } else if byte != UInt8(ascii: "\r") {
                    lineLength += 1
                }
                if state == .head && headBuffer.count >= maximumHeaderSection {
                    fail(.headerSectionTooLarge(size: headBuffer.count), event)
                }
            case .fixedBody(let remaining):
                let take = Int64(min(Int64(count - index), remaining))
                index += Int(take)
                bodyBytes += take
                if take == remaining {
                    finishMessage(event)
                } else {
                    state = .fixedBody(remaining: remaining - take)
                }
            case .chunkSize, .chunkDataEnd, .trailers:
                let byte = bytes.unsafeLoad(fromByteOffset: index, as: UInt8.self)
                index += 1
                chunkLineByte(byte, event)
            case .chunkData(let remaining):
                let take = Int64(min(Int64(count - index), remaining))
                index += Int(take)
                bodyBytes += take
                state = take == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - take)
            case .untilClose:
                bodyBytes += Int64(count - index)
                index = count
            }
        }
        // A stream shorter than 8 bytes can still be recognised as not HTTP at its end.
    }

    /// The connection closed in this direction (or the capture ended).
    /// - Returns: how many declared bytes were missing when the message was cut short
    ///   (nil when the length was not known); `complete` is true when the close ended the
    ///   message normally (close-delimited body).
    public mutating func close(_ kind: CloseKind, _ event: (Event) -> Void) -> (cutShort: Bool, missing: Int64?) {
        switch state {
        case .idle, .failed, .tunnel, .resync:
            return (false, nil)
        case .untilClose:
            if kind == .fin {
                finishMessage(event)
                return (false, nil)
            }
            state = .failed
            return (true, nil)
        case .head:
            if headBuffer.count < 8, let violation = notHTTPViolation(final: true) {
                fail(violation, event)
                return (false, nil)
            }
            state = .failed
            return (true, nil)
        case .fixedBody(let remaining):
            state = .failed
            return (true, remaining)
        case .chunkSize, .chunkData, .chunkDataEnd, .trailers:
            state = .failed
            return (true, nil)
        }
    }

    /// Bytes were lost from the capture. A known-length body skips them and carries on;
    /// anywhere else the direction cannot be framed any more.
    /// - Returns: true when parsing continues.
    public mutating func gap(_ length: Int64, _ event: (Event) -> Void) -> Bool {
        switch state {
        case .fixedBody(let remaining) where length < remaining:
            bodyBytes += length
            state = .fixedBody(remaining: remaining - length)
            return true
        case .fixedBody(let remaining) where length == remaining:
            bodyBytes += length
            finishMessage(event)
            return true
        case .chunkData(let remaining) where length <= remaining:
            bodyBytes += length
            state = length == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - length)
            return true
        case .tunnel:
            tunnelledBytes += length
            return true
        case .untilClose, .failed, .resync:
            return true
        case .idle:
            state = .resync
            return true
        default:
            state = .resync
            event(.lostSync)
            return true
        }
    }

    /// Whether a chunk begins with a start line: `HTTP/1.` for a response, an upper-case
    /// method and a space for a request.
    private func startsMessage(_ bytes: RawSpan) -> Bool {
        let count = min(bytes.byteCount, 16)
        guard count >= 4 else { return false }
        var prefix: [UInt8] = []
        for index in 0..<count { prefix.append(bytes.unsafeLoad(fromByteOffset: index, as: UInt8.self)) }
        switch role {
        case .response:
            return prefix.count >= 7 && prefix[0..<7].elementsEqual("HTTP/1.".utf8)
        case .request:
            guard let space = prefix.firstIndex(of: UInt8(ascii: " ")), space >= 3 else { return false }
            return prefix[..<space].allSatisfy { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) }
        }
    }

    // MARK: - Internals

    private mutating func fail(_ violation: HTTPViolation, _ event: (Event) -> Void) {
        emptyLinesBeforeStart = false
        state = .failed
        event(.violation(violation))
    }

    /// Checks the first bytes of a message: a response starts with `HTTP/`, a request with a
    /// method token and a space.
    private func notHTTPViolation(final: Bool = false) -> HTTPViolation? {
        let prefix = headBuffer.prefix(8)
        switch role {
        case .response:
            let expected = Array("HTTP/".utf8)
            let compared = min(prefix.count, expected.count)
            if prefix.prefix(compared).elementsEqual(expected.prefix(compared)) && (compared == 5 || !final) { return nil }
        case .request:
            if let space = prefix.firstIndex(of: UInt8(ascii: " ")) {
                if space > 0 && prefix[..<space].allSatisfy(HeadParser.isTokenCharacter) { return nil }
            } else if prefix.allSatisfy(HeadParser.isTokenCharacter) && !final {
                return nil
            }
        }
        return .notHTTP(describe(Array(prefix)))
    }

    private mutating func headComplete(_ event: (Event) -> Void) {
        switch HeadParser.parse(headBuffer, isResponse: role == .response) {
        case .failure(let violation):
            fail(violation, event)
        case .success(let head):
            if role == .response && emptyLinesBeforeStart {
                // The head itself is sound (HAProxy serves it): keep its status, then stop.
                emptyLinesBeforeStart = false
                event(.head(head))
                fail(.badStatusLine("empty line(s) before the status line", rejectedBy: .nginx), event)
                return
            }
            event(.head(head))
            startBody(head, event)
        }
    }

    /// Message body length, RFC 9112 §6.3.
    private mutating func startBody(_ head: HTTPMessageHead, _ event: (Event) -> Void) {
        // A request with both is a smuggling attempt. A response with both is framed by
        // Transfer-Encoding (RFC 9112 §6.3), as nginx 1.22 and HAProxy 2.6 both do.
        if role == .request && head.hasTransferEncoding && head.contentLength != nil {
            fail(.conflictingFraming("both Transfer-Encoding and Content-Length"), event)
            return
        }
        if role == .response && head.hasTransferEncoding && !head.chunked {
            // HAProxy refuses a response whose last coding is not chunked; nginx reads to close.
            fail(.badTransferEncoding("Transfer-Encoding does not end in chunked", rejectedBy: .haproxy), event)
            return
        }
        if role == .response {
            let status = head.status ?? 0
            if (100..<200).contains(status) {
                if status == 101 {
                    state = .tunnel
                    event(.tunnel)
                    return
                }
                // An interim response: the final one for the same request follows.
                event(.complete(bodyBytes: 0))
                state = .idle
                return
            }
            let method = pendingMethods.popFirst()
            if method == "CONNECT" && (200..<300).contains(status) {
                state = .tunnel
                event(.complete(bodyBytes: 0))
                event(.tunnel)
                return
            }
            if method == "HEAD" || status == 204 || status == 304 {
                finishMessage(event)
                return
            }
            if head.hasTransferEncoding {
                if head.chunked { beginChunk() } else { state = .untilClose }
            } else if let length = head.contentLength {
                if length == 0 { finishMessage(event) } else { state = .fixedBody(remaining: length) }
            } else {
                state = .untilClose
            }
        } else {
            if head.hasTransferEncoding && !head.chunked {
                fail(.conflictingFraming("request Transfer-Encoding is not chunked"), event)
            } else if head.chunked {
                beginChunk()
            } else if let length = head.contentLength, length > 0 {
                state = .fixedBody(remaining: length)
            } else {
                finishMessage(event)
            }
        }
    }

    private mutating func beginChunk() {
        state = .chunkSize
        chunkLine.removeAll(keepingCapacity: true)
    }

    private mutating func finishMessage(_ event: (Event) -> Void) {
        state = .idle
        event(.complete(bodyBytes: bodyBytes))
    }

    /// One byte of a chunk-size line, the CRLF after chunk data, or a trailer line
    /// (RFC 9112 §7.1).
    private mutating func chunkLineByte(_ byte: UInt8, _ event: (Event) -> Void) {
        if byte != UInt8(ascii: "\n") {
            if byte != UInt8(ascii: "\r") {
                guard chunkLine.count < 1024 else {
                    fail(.badChunkSize("chunk line longer than 1024 bytes"), event)
                    return
                }
                chunkLine.append(byte)
            }
            return
        }
        let line = chunkLine
        chunkLine.removeAll(keepingCapacity: true)
        switch state {
        case .chunkDataEnd:
            guard line.isEmpty else {
                fail(.badChunkSize("chunk data longer than its size"), event)
                return
            }
            state = .chunkSize
        case .chunkSize:
            // Whitespace after the size is accepted; before it, both gateways refuse the chunk.
            let sizeText = line.prefix { $0 != UInt8(ascii: ";") }.filter { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") }
            guard !sizeText.isEmpty, line.first != UInt8(ascii: " "), line.first != UInt8(ascii: "\t"), sizeText.count <= 15, let size = Int64(String(decoding: sizeText, as: UTF8.self), radix: 16),
                size >= 0
            else {
                fail(.badChunkSize("chunk size line '\(String(decoding: line.prefix(64), as: UTF8.self))'"), event)
                return
            }
            state = size == 0 ? .trailers : .chunkData(remaining: size)
        case .trailers:
            if line.isEmpty { finishMessage(event) }
        default:
            break
        }
    }
}

/// Describes bytes that are not HTTP: a TLS record, printable text, or binary.
func describe(_ bytes: [UInt8]) -> String {
    if bytes.count >= 2, (20...23).contains(bytes[0]), bytes[1] == 3 {
        let kinds = [20: "change_cipher_spec", 21: "alert", 22: "handshake", 23: "application_data"]
        return "a TLS record (\(kinds[Int(bytes[0])] ?? "?"))"
    }
    if bytes.allSatisfy({ (0x20..<0x7F).contains($0) || $0 == 0x0D || $0 == 0x0A || $0 == 0x09 }) {
        let text = String(decoding: bytes, as: UTF8.self).replacingControlCharacters()
        return "text '\(text)'"
    }
    return "binary data (" + bytes.map { byte in
        let digits = String(byte, radix: 16)
        return digits.count == 1 ? "0" + digits : digits
    }.joined(separator: " ") + ")"
}

extension String {
    /// CR, LF and tab shown as escapes, so that captured text stays on one line.
    func replacingControlCharacters() -> String {
        var out = ""
        for scalar in unicodeScalars {
            switch scalar {
            case "\r": out += "\\r"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default: out.unicodeScalars.append(scalar.value < 0x20 || scalar.value == 0x7F ? "?" : scalar)
            }
        }
        return out
    }
}
