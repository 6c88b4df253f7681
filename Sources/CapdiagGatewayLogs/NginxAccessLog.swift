import CapdiagWire

/// The nginx access-log formats capdiag reads.
public enum NginxAccessFormat {
    /// The `log_format` capdiag recommends: every upstream try (address, status, connect/header/
    /// response time), the client's port, an instant with millisecond resolution (`$msec`; nginx
    /// writes the line when the request ends), and `$request_id`, which nginx forwards upstream with
    /// `proxy_set_header X-Request-Id $request_id;` so the request can be found in a capture:
    ///
    ///     log_format capdiag '$remote_addr:$remote_port [$time_iso8601] msec=$msec "$request" $status '
    ///                        'upstream_addr="$upstream_addr" upstream_status="$upstream_status" '
    ///                        'upstream_connect_time="$upstream_connect_time" upstream_header_time="$upstream_header_time" '
    ///                        'upstream_response_time="$upstream_response_time" request_time=$request_time '
    ///                        'request_id=$request_id';
    ///
    /// The reader takes any order of these parts and ignores unknown `key=value` pairs, so
    /// `$upstream_bytes_received="…"` and the like can be added.
    public static let recommended = """
        log_format capdiag '$remote_addr:$remote_port [$time_iso8601] msec=$msec "$request" $status '
                           'upstream_addr="$upstream_addr" upstream_status="$upstream_status" '
                           'upstream_connect_time="$upstream_connect_time" upstream_header_time="$upstream_header_time" '
                           'upstream_response_time="$upstream_response_time" request_time=$request_time '
                           'request_id=$request_id';
        """
}

/// nginx access lines: the key=value form (``NginxAccessFormat/recommended`` and relatives) and the
/// stock `combined` format (`$remote_addr - $remote_user [$time_local] "$request" $status
/// $body_bytes_sent "$http_referer" "$http_user_agent"`, trailing fields allowed).
enum NginxAccessLog {
    static let upstreamKeys: Set<String> = [
        "upstream_addr", "upstream_status", "upstream_connect_time", "upstream_header_time", "upstream_response_time",
    ]

    /// Whether the line has one of the upstream keys or `request_time=` (a key=value access line).
    static func looksLikeKeyValue(_ bytes: [UInt8]) -> Bool {
        LineText.contains(bytes, 0..<bytes.count, Array("upstream_addr=".utf8))
            || LineText.contains(bytes, 0..<bytes.count, Array("upstream_status=".utf8))
            || LineText.contains(bytes, 0..<bytes.count, Array("request_time=".utf8))
    }

    static func parseKeyValue(_ bytes: [UInt8], into entry: inout GatewayLogEntry) -> Bool {
        var cursor = ByteCursor(bytes)
        var values: [String: String] = [:]
        var sawKnownKey = false
        var isFirstToken = true
        var isoTime: GatewayLogTime?
        var tokens = 0
        while true {
            cursor.skipSpaces()
            guard !cursor.isAtEnd else { break }
            tokens += 1
            guard tokens <= 256 else { return false }
            defer { isFirstToken = false }
            switch cursor.peek() {
            case 0x5B:  // [time]
                cursor.advance()
                guard let range = cursor.upTo(0x5D) else { return false }
                if let time = LogTimeParser.iso8601(bytes, range)
                    ?? LogTimeParser.nginxLocal(bytes, at: range.lowerBound)
                {
                    isoTime = time
                } else {
                    return false
                }
            case 0x22:  // "request"
                guard let range = cursor.quoted() else { return false }
                if entry.request == nil { entry.request = GatewayRequestLine(parsing: LineText.string(bytes, range)) }
            default:
                let start = cursor.index
                // key=value or key="value with spaces", else a bare token.
                var position = start
                while position < bytes.count, bytes[position] != 0x3D, bytes[position] != 0x20, bytes[position] != 0x09
                {
                    position += 1
                }
                if position < bytes.count, bytes[position] == 0x3D, position > start {
                    let key = LineText.string(bytes, start..<position)
                    cursor.seek(to: position + 1)
                    let valueRange: Range<Int>
                    if cursor.peek() == 0x22 {
                        guard let range = cursor.quoted() else { return false }
                        valueRange = range
                    } else {
                        valueRange = cursor.token()
                    }
                    guard values.count < 64 else { return false }
                    values[key] = LineText.string(bytes, valueRange)
                    if upstreamKeys.contains(key) || key == "request_time" || key == "msec" || key == "status"
                        || key == "request_id" || key == "request"
                    {
                        sawKnownKey = true
                    }
                } else {
                    let range = cursor.token()
                    if isFirstToken, let client = GatewayEndpoint(bytes: bytes, range, requirePort: false) {
                        entry.client = client
                    } else if entry.status == nil, range.count == 3, let status = LineText.integer(bytes, range),
                        status >= 0
                    {
                        entry.status = Int(status)
                    }
                }
            }
        }
        guard sawKnownKey else { return false }
        if let status = values["status"].flatMap({ LineText.integer(Substring($0)) }) { entry.status = Int(status) }
        if let request = values["request"] { entry.request = GatewayRequestLine(parsing: request) }
        if let client = values["remote_addr"].flatMap({ TextAddress.ip($0) }) {
            let port = values["remote_port"].flatMap { LineText.integer(Substring($0)) }.flatMap { UInt16(exactly: $0) }
            entry.client = GatewayEndpoint(address: client, port: port)
        }
        guard entry.status != nil else { return false }
        entry.requestID = values["request_id"].flatMap { $0 == "-" || $0.isEmpty ? nil : $0 }
        entry.requestDuration = values["request_time"].flatMap { LineText.seconds(Substring($0)) }
        entry.bytesSent = values["body_bytes_sent"].flatMap { LineText.integer(Substring($0)) }
        // $msec: an instant with ms resolution; keep the zone the ISO time said.
        if let msec = values["msec"], let instant = LogTimeParser.epoch(Array(msec.utf8), 0..<msec.utf8.count) {
            let offset = isoTime?.utcOffsetSeconds ?? 0
            entry.time = GatewayLogTime(
                wallClock: instant.wallClock + Int64(offset) * 1_000_000_000, utcOffsetSeconds: offset,
                resolution: instant.resolution)
        } else {
            entry.time = isoTime
        }
        entry.upstreamAttempts = attempts(
            addresses: values["upstream_addr"], statuses: values["upstream_status"],
            connect: values["upstream_connect_time"], header: values["upstream_header_time"],
            response: values["upstream_response_time"])
        return true
    }

    /// One nginx upstream list split into tries: `a, b : c` → [(a, 0), (b, 0), (c, 1)].
    static func split(_ list: String?) -> [(value: String, group: Int)] {
        guard let list, !list.isEmpty else { return [] }
        var result: [(String, Int)] = []
        var group = 0
        for (groupIndex, part) in list.split(separator: " : ", omittingEmptySubsequences: false).enumerated() {
            group = groupIndex
            for value in part.split(separator: ", ", omittingEmptySubsequences: false) {
                result.append((value.trimmingSpaces, group))
                if result.count >= 64 { return result }
            }
        }
        return result
    }

    static func attempts(addresses: String?, statuses: String?, connect: String?, header: String?, response: String?)
        -> [UpstreamAttempt]
    {
        let addressList = split(addresses)
        guard !(addressList.count == 1 && addressList[0].value == "-") else { return [] }
        let statusList = split(statuses)
        let connectList = split(connect)
        let headerList = split(header)
        let responseList = split(response)
        return addressList.enumerated().map { index, item in
            func at(_ list: [(value: String, group: Int)]) -> String? { index < list.count ? list[index].value : nil }
            return UpstreamAttempt(
                address: item.value, endpoint: GatewayEndpoint(parsing: item.value),
                status: at(statusList).flatMap { LineText.integer(Substring($0)) }.map { Int($0) },
                connectTime: at(connectList).flatMap { LineText.seconds(Substring($0)) },
                headerTime: at(headerList).flatMap { LineText.seconds(Substring($0)) },
                responseTime: at(responseList).flatMap { LineText.seconds(Substring($0)) },
                redirectGroup: item.group)
        }
    }

    /// `combined`: `10.0.0.1 - - [25/Nov/2026:14:24:05 +0000] "GET / HTTP/1.1" 502 157 "-" "curl/8"`.
    static func parseCombined(_ bytes: [UInt8], into entry: inout GatewayLogEntry) -> Bool {
        var cursor = ByteCursor(bytes)
        let addressRange = cursor.token()
        guard let address = TextAddress.ip(bytes, addressRange) else { return false }
        entry.client = GatewayEndpoint(address: address, port: nil)
        cursor.skipSpaces()
        _ = cursor.token()  // "-" ($remote_user's placeholder; nginx writes a literal "-")
        cursor.skipSpaces()
        _ = cursor.token()  // $remote_user
        cursor.skipSpaces()
        guard cursor.skip(0x5B), let timeRange = cursor.upTo(0x5D), timeRange.count == 26,
            let time = LogTimeParser.nginxLocal(bytes, at: timeRange.lowerBound)
        else { return false }
        entry.time = time
        cursor.skipSpaces()
        guard let requestRange = cursor.quoted() else { return false }
        entry.request = GatewayRequestLine(parsing: LineText.string(bytes, requestRange))
        cursor.skipSpaces()
        let statusRange = cursor.token()
        guard statusRange.count == 3, let status = LineText.integer(bytes, statusRange), status >= 0 else {
            return false
        }
        entry.status = Int(status)
        cursor.skipSpaces()
        entry.bytesSent = LineText.integer(bytes, cursor.token())
        return true
    }

    /// Whether the line looks like `ADDRESS - USER [dd/Mon/yyyy:HH:MM:SS +zzzz] "`.
    static func looksLikeCombined(_ bytes: [UInt8]) -> Bool {
        guard let open = LineText.firstIndex(of: Array(" [".utf8), in: bytes, 0..<min(bytes.count, 400)) else {
            return false
        }
        return LogTimeParser.nginxLocal(bytes, at: open + 2) != nil
    }
}

extension Substring {
    var trimmingSpaces: String {
        var text = self
        while text.first == " " { text = text.dropFirst() }
        while text.last == " " { text = text.dropLast() }
        return String(text)
    }
}
