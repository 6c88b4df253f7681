/// nginx's error log, default format (`ngx_log_error_core`, context from `ngx_http_log_error`):
///
///     2026/11/25 14:24:05 [error] 1234#1234: *45 MESSAGE, client: 10.77.1.2, server: _,
///         request: "POST /x HTTP/1.1", upstream: "http://10.77.2.2:9012/x", host: "10.77.1.1:8012"
///
/// The time is local time with no zone. `*45` is nginx's connection number (absent for lines
/// about no connection). The context fields follow in this fixed order, each optional after
/// `client`: `server`, `request`, `subrequest`, `upstream`, `host`, `referrer`.
enum NginxErrorLog {
    static let levels: Set<String> = ["emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"]

    /// Whether the line starts like an nginx error-log line (date, space, `[`).
    static func looksLike(_ bytes: [UInt8]) -> Bool {
        bytes.count > 21 && bytes[19] == 0x20 && bytes[20] == 0x5B && LogTimeParser.nginxError(bytes, at: 0) != nil
    }

    static func parse(_ bytes: [UInt8], into entry: inout GatewayLogEntry) -> Bool {
        guard let time = LogTimeParser.nginxError(bytes, at: 0) else { return false }
        var cursor = ByteCursor(bytes, at: 20)
        guard cursor.skip(0x5B), let levelRange = cursor.upTo(0x5D), levelRange.count <= 8 else { return false }
        let level = LineText.string(bytes, levelRange)
        guard levels.contains(level), cursor.skip(0x20) else { return false }
        // PID#TID:
        guard let pidRange = cursor.upTo(0x23), let pid = LineText.integer(bytes, pidRange), pid >= 0,
            let tidRange = cursor.upTo(0x3A), let tid = LineText.integer(bytes, tidRange), tid >= 0
        else { return false }
        _ = cursor.skip(0x20)
        var connection: Int?
        if cursor.peek() == 0x2A {  // *45
            cursor.advance()
            let number = cursor.token()
            guard let value = LineText.integer(bytes, number), value >= 0 else { return false }
            connection = Int(value)
            _ = cursor.skip(0x20)
        }
        let messageStart = cursor.index
        let contextStart = self.contextStart(bytes, from: messageStart)
        let message = LineText.string(bytes, messageStart..<contextStart)

        var details = NginxErrorDetails(
            level: level, pid: Int(pid), threadID: Int(tid), connection: connection, failedCall: nil, errno: nil,
            errnoText: nil, phase: nil, server: nil, upstreamURL: nil, referrer: nil)
        describe(message, into: &details)
        entry.time = time
        entry.gatewayWords = message
        if contextStart < bytes.count {
            guard readContext(bytes, from: contextStart, into: &entry, &details) else { return false }
        }
        entry.nginx = details
        return true
    }

    private static let clientKey = Array(", client: ".utf8)

    /// Where `, client: ADDRESS` begins: the first occurrence followed by an IP address and then
    /// `, server: ` or the end. (The message can quote bytes an upstream sent, so a plain search
    /// for the last or first `, client: ` could be fooled; each candidate is checked in O(1).)
    private static func contextStart(_ bytes: [UInt8], from start: Int) -> Int {
        var from = start
        while let candidate = LineText.firstIndex(of: clientKey, in: bytes, from..<bytes.count) {
            let addressStart = candidate + clientKey.count
            var end = addressStart
            while end < bytes.count, end - addressStart <= 46, bytes[end] != 0x2C { end += 1 }
            if end - addressStart <= 46,
                TextAddress.ip(bytes, addressStart..<end) != nil || isUnixClient(bytes, addressStart..<end)
            {
                return candidate
            }
            from = candidate + 1
        }
        return bytes.count
    }

    private static func isUnixClient(_ bytes: [UInt8], _ range: Range<Int>) -> Bool {
        LineText.string(bytes, range) == "unix:"
    }

    private static let keys: [(String, [UInt8])] = ["server", "request", "subrequest", "upstream", "host", "referrer"]
        .map { ($0, Array(", \($0): ".utf8)) }

    /// Reads `, client: A, server: S, request: "…", upstream: "…", host: "…"`.
    private static func readContext(
        _ bytes: [UInt8], from start: Int, into entry: inout GatewayLogEntry, _ details: inout NginxErrorDetails
    ) -> Bool {
        var cursor = ByteCursor(bytes, at: start + clientKey.count)
        var end = cursor.index
        while end < bytes.count && bytes[end] != 0x2C { end += 1 }
        if let address = TextAddress.ip(bytes, cursor.index..<end) {
            entry.client = GatewayEndpoint(address: address, port: nil)
        }
        cursor.seek(to: end)
        var keyIndex = 0
        while !cursor.isAtEnd {
            // The next key, in nginx's order.
            var matched: (name: String, quoted: Bool)?
            while keyIndex < keys.count {
                let (name, literal) = keys[keyIndex]
                keyIndex += 1
                if matchesAt(bytes, cursor.index, literal) {
                    cursor.advance(literal.count)
                    matched = (name, name != "server")
                    break
                }
            }
            guard let key = matched else { return false }
            let value: String
            if key.quoted {
                guard cursor.peek() == 0x22, let range = quotedValue(bytes, from: cursor.index) else { return false }
                value = LineText.string(bytes, range)
                cursor.seek(to: range.upperBound + 1)
            } else {
                // server: a name without quotes, up to the next ", " that starts a known key.
                let valueStart = cursor.index
                var position = valueStart
                while position < bytes.count && !keyStarts(bytes, position) { position += 1 }
                value = LineText.string(bytes, valueStart..<position)
                cursor.seek(to: position)
            }
            switch key.name {
            case "server": details.server = value
            case "request": entry.request = GatewayRequestLine(parsing: value)
            case "upstream":
                details.upstreamURL = value
                entry.upstreamAttempts = [upstreamAttempt(url: value)]
            case "host": entry.host = value
            case "referrer": details.referrer = value
            default: break
            }
        }
        return true
    }

    private static func matchesAt(_ bytes: [UInt8], _ position: Int, _ literal: [UInt8]) -> Bool {
        guard position >= 0, position + literal.count <= bytes.count else { return false }
        var i = 0
        while i < literal.count {
            if bytes[position + i] != literal[i] { return false }
            i += 1
        }
        return true
    }

    private static func keyStarts(_ bytes: [UInt8], _ position: Int) -> Bool {
        guard position < bytes.count, bytes[position] == 0x2C else { return false }
        return keys.contains { matchesAt(bytes, position, $0.1) }
    }

    /// A quoted context value: up to the first `"` that ends the line or is followed by a known key.
    /// (nginx does not escape quotes in `request:`.)
    private static func quotedValue(_ bytes: [UInt8], from quote: Int) -> Range<Int>? {
        var position = quote + 1
        while position < bytes.count {
            if bytes[position] == 0x22 && (position + 1 == bytes.count || keyStarts(bytes, position + 1)) {
                return (quote + 1)..<position
            }
            position += 1
        }
        return nil
    }

    /// `http://10.77.2.2:9012/x` → an attempt at 10.77.2.2:9012; `http://backend/x` (an upstream
    /// group's name) → an attempt without endpoint.
    static func upstreamAttempt(url: String) -> UpstreamAttempt {
        let bytes = Array(url.utf8)
        var start = 0
        var defaultPort: UInt16?
        if let schemeEnd = LineText.firstIndex(of: Array("://".utf8), in: bytes, 0..<min(bytes.count, 16)) {
            let scheme = LineText.string(bytes, 0..<schemeEnd).lowercased()
            defaultPort = scheme == "https" || scheme == "grpcs" ? 443 : scheme == "http" || scheme == "grpc" ? 80 : nil
            start = schemeEnd + 3
        }
        var end = start
        while end < bytes.count && bytes[end] != 0x2F && bytes[end] != 0x3F { end += 1 }
        let authority = LineText.string(bytes, start..<end)
        if let endpoint = GatewayEndpoint(bytes: bytes, start..<end, requirePort: false) {
            return UpstreamAttempt(
                address: authority,
                endpoint: endpoint.port == nil
                    ? GatewayEndpoint(address: endpoint.address, port: defaultPort) : endpoint)
        }
        return UpstreamAttempt(address: authority, endpoint: nil)
    }

    /// Splits nginx's words: `connect() failed (111: Connection refused) while connecting to upstream`.
    static func describe(_ message: String, into details: inout NginxErrorDetails) {
        let bytes = Array(message.utf8)
        let all = 0..<bytes.count
        if let failed = LineText.firstIndex(of: Array("() failed".utf8), in: bytes, all) {
            var callStart = failed
            while callStart > 0 && bytes[callStart - 1] != 0x20 { callStart -= 1 }
            details.failedCall = LineText.string(bytes, callStart..<failed) + "()"
        }
        // The first "(NUMBER: text)".
        var position = 0
        while let open = LineText.firstIndex(of: [0x28], in: bytes, position..<bytes.count) {
            var digitsEnd = open + 1
            while digitsEnd < bytes.count, digitsEnd - open <= 6, LineText.isDigit(bytes[digitsEnd]) { digitsEnd += 1 }
            if digitsEnd > open + 1, digitsEnd - open <= 6, digitsEnd + 1 < bytes.count, bytes[digitsEnd] == 0x3A,
                bytes[digitsEnd + 1] == 0x20, let number = LineText.integer(bytes, (open + 1)..<digitsEnd)
            {
                // No ")" after this one means none after any later one either: stop (linear time).
                guard let close = LineText.firstIndex(of: [0x29], in: bytes, digitsEnd..<bytes.count) else { break }
                details.errno = Int(number)
                details.errnoText = LineText.string(bytes, (digitsEnd + 2)..<close)
                break
            }
            position = open + 1
        }
        let whileWord = Array(" while ".utf8)
        if let phase = LineText.lastIndex(of: whileWord, in: bytes, all) {
            details.phase = LineText.string(bytes, (phase + whileWord.count)..<bytes.count)
        }
    }
}
