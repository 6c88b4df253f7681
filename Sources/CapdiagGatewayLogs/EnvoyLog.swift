/// Envoy access logs (configuration/observability/access_log/usage.rst).
///
/// Default text format:
///
///     [%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE%
///     %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%
///     "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"
///
/// Istio's default adds `%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS%
/// "%UPSTREAM_TRANSPORT_FAILURE_REASON%"` after the flags and `%UPSTREAM_CLUSTER%
/// %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS%
/// %REQUESTED_SERVER_NAME% %ROUTE_NAME%` at the end; both are read. JSON lines use the keys of
/// Envoy's and Istio's documentation (`start_time`, `response_code`, `response_flags`,
/// `upstream_host`, `upstream_local_address`, `x_request_id`/`request_id`, `duration`, …).
/// Envoy was not run for this reader: it is tested against the documentation's examples.
enum EnvoyLog {
    /// Short response flags (source/common/stream_info/utility.h), longest first for splitting
    /// flags written without separators.
    static let knownFlags: [String] = [
        "UMSDR", "UAEX", "RLSE", "NFCF", "RFCF", "URX", "UPE", "DPE", "UH", "UF", "UO", "NR", "NC", "DT", "DC", "LH",
        "UT",
        "LR", "UR", "UC", "DI", "FI", "RL", "IH", "SI", "OM", "DF", "DO",
    ]

    static func looksLikeText(_ bytes: [UInt8]) -> Bool {
        bytes.count > 12 && bytes[0] == 0x5B && LineText.isDigit(bytes[1])
    }

    /// `UF,URX` or `UFURX` → ["UF", "URX"]; "-" → []. Unknown upper-case words are kept whole.
    static func flags(_ text: String) -> [String] {
        guard text != "-", !text.isEmpty else { return [] }
        var result: [String] = []
        for part in text.split(separator: ",") {
            var rest = Substring(part)
            while !rest.isEmpty, result.count < 32 {
                guard let flag = knownFlags.first(where: { rest.hasPrefix($0) }) else {
                    result.append(String(rest))
                    break
                }
                result.append(flag)
                rest = rest.dropFirst(flag.count)
            }
        }
        return result
    }

    static func parseText(_ bytes: [UInt8], into entry: inout GatewayLogEntry) -> Bool {
        var cursor = ByteCursor(bytes)
        guard cursor.skip(0x5B), let timeRange = cursor.upTo(0x5D),
            let time = LogTimeParser.iso8601(bytes, timeRange) ?? LogTimeParser.epoch(bytes, timeRange)
        else { return false }
        entry.time = time
        cursor.skipSpaces()
        guard let requestRange = cursor.quoted() else { return false }
        entry.request = GatewayRequestLine(parsing: LineText.string(bytes, requestRange))
        cursor.skipSpaces()
        guard let code = LineText.integer(bytes, cursor.token()), code >= 0, code < 1000 else { return false }
        entry.status = code == 0 ? nil : Int(code)
        cursor.skipSpaces()
        let flagText = LineText.string(bytes, cursor.token())
        var details = EnvoyDetails(responseFlags: flags(flagText))
        cursor.skipSpaces()
        // Istio: details, termination details, "transport failure reason" before the numbers.
        let save = cursor.index
        let next = cursor.token()
        if LineText.integer(bytes, next) == nil {
            details.responseCodeDetails = dash(LineText.string(bytes, next))
            cursor.skipSpaces()
            details.connectionTerminationDetails = dash(LineText.string(bytes, cursor.token()))
            cursor.skipSpaces()
            guard let reason = cursor.quoted() else { return false }
            details.upstreamTransportFailureReason = dash(LineText.string(bytes, reason))
            cursor.skipSpaces()
        } else {
            cursor.seek(to: save)
        }
        guard let received = LineText.integer(bytes, cursor.token()) else { return false }
        details.bytesReceived = received
        cursor.skipSpaces()
        guard let sent = LineText.integer(bytes, cursor.token()) else { return false }
        entry.bytesSent = sent
        cursor.skipSpaces()
        let duration = cursor.token()
        entry.requestDuration = LineText.integer(bytes, duration).flatMap(LineText.milliseconds)
        cursor.skipSpaces()
        details.upstreamServiceTime = LineText.integer(bytes, cursor.token()).flatMap(LineText.milliseconds)
        var quoted: [String?] = []
        for _ in 0..<5 {
            cursor.skipSpaces()
            guard let range = cursor.quoted() else { return false }
            quoted.append(dash(LineText.string(bytes, range)))
        }
        details.forwardedFor = quoted[0]
        details.userAgent = quoted[1]
        entry.requestID = quoted[2]
        details.authority = quoted[3]
        entry.host = quoted[3]
        if let host = quoted[4] { entry.upstreamAttempts = [upstreamAttempt(host)] }
        // Istio's tail: cluster, upstream local, downstream local, downstream remote, SNI, route.
        var tail: [String?] = []
        while tail.count < 6 {
            cursor.skipSpaces()
            guard !cursor.isAtEnd else { break }
            tail.append(dash(LineText.string(bytes, cursor.token())))
        }
        if tail.count >= 4 {
            details.upstreamCluster = tail[0]
            entry.backendSource = tail[1].flatMap { GatewayEndpoint(parsing: $0) }
            details.downstreamLocal = tail[2].flatMap { GatewayEndpoint(parsing: $0) }
            entry.client = tail[3].flatMap { GatewayEndpoint(parsing: $0) }
            if tail.count > 4 { details.requestedServerName = tail[4] }
            if tail.count > 5 { details.routeName = tail[5] }
        }
        finish(&entry, details)
        return true
    }

    static func parseJSON(_ bytes: [UInt8], into entry: inout GatewayLogEntry) -> Bool {
        guard let members = FlatJSON.object(bytes) else { return false }
        func text(_ keys: String...) -> String? {
            for key in keys { if let value = members[key]?.text { return value } }
            return nil
        }
        // An Envoy access line has at least a start time and a response code or flags.
        guard let startText = text("start_time", "START_TIME", "timestamp"),
            text("response_code", "RESPONSE_CODE", "status") != nil || text("response_flags", "RESPONSE_FLAGS") != nil
        else { return false }
        let startBytes = Array(startText.utf8)
        guard
            let time = LogTimeParser.iso8601(startBytes, 0..<startBytes.count)
                ?? LogTimeParser.epoch(startBytes, 0..<startBytes.count)
        else { return false }
        entry.time = time
        if let code = text("response_code", "RESPONSE_CODE", "status").flatMap({ LineText.integer(Substring($0)) }),
            code > 0, code < 1000
        {
            entry.status = Int(code)
        }
        var details = EnvoyDetails(responseFlags: flags(text("response_flags", "RESPONSE_FLAGS") ?? "-"))
        details.responseCodeDetails = text("response_code_details")
        details.connectionTerminationDetails = text("connection_termination_details")
        details.upstreamTransportFailureReason = text("upstream_transport_failure_reason")
        details.upstreamCluster = text("upstream_cluster")
        details.upstreamServiceTime = text("upstream_service_time", "x_envoy_upstream_service_time")
            .flatMap { LineText.integer(Substring($0)) }.flatMap(LineText.milliseconds)
        details.bytesReceived = text("bytes_received").flatMap { LineText.integer(Substring($0)) }
        details.authority = text("authority")
        details.forwardedFor = text("x_forwarded_for")
        details.userAgent = text("user_agent")
        details.downstreamLocal = text("downstream_local_address").flatMap { GatewayEndpoint(parsing: $0) }
        details.requestedServerName = text("requested_server_name")
        details.routeName = text("route_name")
        if let method = text("method"), let path = text("path") {
            entry.request = GatewayRequestLine(method: method, target: path, version: text("protocol"))
        }
        entry.bytesSent = text("bytes_sent").flatMap { LineText.integer(Substring($0)) }
        entry.requestDuration = text("duration").flatMap { LineText.integer(Substring($0)) }.flatMap(LineText.milliseconds)
        entry.requestID = text("x_request_id", "request_id")
        entry.host = details.authority
        if let host = text("upstream_host") { entry.upstreamAttempts = [upstreamAttempt(host)] }
        entry.backendSource = text("upstream_local_address").flatMap { GatewayEndpoint(parsing: $0) }
        entry.client = text("downstream_remote_address").flatMap { GatewayEndpoint(parsing: $0) }
        finish(&entry, details)
        return true
    }

    private static func finish(_ entry: inout GatewayLogEntry, _ details: EnvoyDetails) {
        entry.gatewayWords = details.responseFlags.isEmpty ? "-" : details.responseFlags.joined(separator: ",")
        entry.envoy = details
    }

    private static func dash(_ text: String) -> String? { text == "-" || text.isEmpty ? nil : text }

    /// `10.0.2.1:80` or `tcp://10.0.2.1:80`.
    static func upstreamAttempt(_ host: String) -> UpstreamAttempt {
        var address = Substring(host)
        for scheme in ["tcp://", "udp://"] where address.hasPrefix(scheme) { address = address.dropFirst(scheme.count) }
        return UpstreamAttempt(address: host, endpoint: GatewayEndpoint(parsing: address))
    }
}

extension EnvoyDetails {
    init(responseFlags: [String]) {
        self.init(
            responseFlags: responseFlags, responseCodeDetails: nil, connectionTerminationDetails: nil,
            upstreamTransportFailureReason: nil, upstreamCluster: nil, upstreamServiceTime: nil, bytesReceived: nil,
            authority: nil, forwardedFor: nil, userAgent: nil, downstreamLocal: nil, routeName: nil,
            requestedServerName: nil)
    }
}
