import CapdiagWire

/// Which format a line was read as (detected per line from its content).
public enum GatewayLogFormat: String, Hashable, Sendable, CaseIterable {
    /// nginx error log, default format: `2026/11/25 14:24:05 [error] 1234#1234: *45 message, client: …`.
    case nginxError = "nginx_error"
    /// nginx access log in key=value form (capdiag's recommended `log_format`, see
    /// ``NginxAccessFormat/recommended``; any line with `upstream_addr=`-style keys).
    case nginxAccess = "nginx_access"
    /// nginx's stock `combined` access log (no upstream fields).
    case nginxCombined = "nginx_combined"
    /// HAProxy HTTP log (`option httplog`, or a `log-format` with the same fields in the same order),
    /// with or without a syslog header; also `option tcplog` lines.
    case haproxy = "haproxy"
    /// Envoy's default text access log, and Istio's default (which adds fields).
    case envoyText = "envoy_text"
    /// Envoy JSON access log (`json_format` / `typed_json_format`).
    case envoyJSON = "envoy_json"
}

/// The request as logged: `GET /x HTTP/1.1`.
public struct GatewayRequestLine: Hashable, Sendable {
    public var method: String
    public var target: String
    /// `HTTP/1.1`, or nil when the line had no version.
    public var version: String?

    public init(method: String, target: String, version: String?) {
        self.method = method
        self.target = target
        self.version = version
    }

    /// Splits `METHOD TARGET [VERSION]`; nil unless the method is a plain token.
    init?(parsing text: String) {
        let parts = text.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
        guard parts.count >= 2, parts[0].utf8.count <= 32,
            parts[0].utf8.allSatisfy({
                ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x5F
            })
        else { return nil }
        self.init(method: String(parts[0]), target: String(parts[1]), version: parts.count > 2 ? String(parts[2]) : nil)
    }
}

/// One try of the gateway at an upstream, as logged. nginx lists every try (`$upstream_addr`
/// `10.77.2.2:9001, 10.77.2.2:9017`, and `a : b` across internal redirects); HAProxy and Envoy
/// log one.
public struct UpstreamAttempt: Hashable, Sendable {
    /// The upstream as written: `10.77.2.2:9001`, `unix:/run/app.sock`, or an upstream group's name
    /// (nginx writes the name when no server could be picked, "no live upstreams").
    public var address: String
    /// `address` when it is an IP address and port (for nginx error-log URLs without a port, the
    /// scheme's default).
    public var endpoint: GatewayEndpoint?
    /// The status the gateway recorded for this try (nginx `$upstream_status`: 502/504 written by
    /// nginx itself when the upstream gave no response).
    public var status: Int?
    /// Time to connect, to the response header, and to the whole response, in nanoseconds (nginx
    /// `$upstream_connect_time`, `$upstream_header_time`, `$upstream_response_time`; nil for `-`).
    public var connectTime: Int64?
    public var headerTime: Int64?
    public var responseTime: Int64?
    /// nginx: 0 for the tries of the first location, +1 after each internal redirect (` : `).
    public var redirectGroup: Int

    public init(
        address: String, endpoint: GatewayEndpoint?, status: Int? = nil, connectTime: Int64? = nil,
        headerTime: Int64? = nil, responseTime: Int64? = nil, redirectGroup: Int = 0
    ) {
        self.address = address
        self.endpoint = endpoint
        self.status = status
        self.connectTime = connectTime
        self.headerTime = headerTime
        self.responseTime = responseTime
        self.redirectGroup = redirectGroup
    }
}

/// What nginx's error log line said, split up.
public struct NginxErrorDetails: Hashable, Sendable {
    /// `emerg`, `alert`, `crit`, `error`, `warn`, `notice`, `info`, `debug`.
    public var level: String
    public var pid: Int
    public var threadID: Int
    /// The connection number after `*` (nil for lines about no connection).
    public var connection: Int?
    /// The call that failed, when the message names one: `connect()`, `recv()`, `SSL_do_handshake()`.
    public var failedCall: String?
    /// The errno in `(111: Connection refused)`, and its text.
    public var errno: Int?
    public var errnoText: String?
    /// What nginx was doing, after the last ` while `: `connecting to upstream`,
    /// `reading response header from upstream`, `SSL handshaking to upstream`, `reading upstream`, …
    public var phase: String?
    public var server: String?
    /// The `upstream: "http://10.77.2.2:9001/x"` URL.
    public var upstreamURL: String?
    public var referrer: String?
}

/// HAProxy's termination state, timers and counters.
public struct HAProxyDetails: Hashable, Sendable {
    /// The syslog header's program name and PID (`haproxy[1234]:`), when the line has one.
    public var processName: String?
    public var processID: Int?
    public var frontend: String
    public var backend: String
    /// `<NOSRV>` when no server was picked.
    public var server: String
    /// Milliseconds; nil where HAProxy wrote -1 (that phase was never reached). HTTP logs give
    /// TR/Tw/Tc/Tr/Ta (older versions Tq/Tw/Tc/Tr/Tt); TCP logs Tw/Tc/Tt (then `request` and
    /// `response` are nil).
    public var requestTime: Int64?
    public var queueTime: Int64?
    public var connectTime: Int64?
    public var responseTime: Int64?
    public var totalTime: Int64?
    /// The 2 or 4 characters of `%tsc`/`%ts`: cause, phase, then (HTTP) persistence cookie states.
    /// `SC--` server refused or reset the connect, `SH--` server aborted before the headers,
    /// `sH--` server timeout before the headers, `PH--` proxy refused the response, …
    public var terminationState: String
    public var activeConnections: Int?
    public var frontendConnections: Int?
    public var backendConnections: Int?
    public var serverConnections: Int?
    /// `%rc`: connection retries; `redispatched` when HAProxy wrote `+N` (it moved to another server).
    public var retries: Int?
    public var redispatched: Bool
    public var serverQueue: Int?
    public var backendQueue: Int?
    /// `{…}` header captures, as written.
    public var captures: [String]
}

/// Envoy's flags and details.
public struct EnvoyDetails: Hashable, Sendable {
    /// Short response flags (`UF`, `URX`, `UC`, …); empty for `-`.
    public var responseFlags: [String]
    /// `%RESPONSE_CODE_DETAILS%` (`via_upstream`, `upstream_reset_before_response_started{…}`).
    public var responseCodeDetails: String?
    public var connectionTerminationDetails: String?
    public var upstreamTransportFailureReason: String?
    public var upstreamCluster: String?
    /// `%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%` in nanoseconds.
    public var upstreamServiceTime: Int64?
    public var bytesReceived: Int64?
    public var authority: String?
    public var forwardedFor: String?
    public var userAgent: String?
    public var downstreamLocal: GatewayEndpoint?
    public var routeName: String?
    public var requestedServerName: String?
}

/// One request or event read from a gateway log: plain values, the same shape for every gateway.
public struct GatewayLogEntry: Hashable, Sendable {
    public var format: GatewayLogFormat
    /// The file it came from, and its line (1-based).
    public var file: String
    public var lineNumber: Int
    /// The line as read, at most ``GatewayLogReader/Limits/rawLineBytes`` bytes (invalid UTF-8
    /// repaired); `rawLineTruncated` when it was longer.
    public var rawLine: String
    public var rawLineTruncated: Bool
    public var time: GatewayLogTime?
    public var timeMeaning: GatewayTimeMeaning
    /// The client's address, and port when logged (nginx's error log has no port).
    public var client: GatewayEndpoint?
    /// The gateway's local address and port towards the upstream, i.e. the gateway side of the
    /// upstream connection's 4-tuple: HAProxy `%bi:%bp`, Envoy `%UPSTREAM_LOCAL_ADDRESS%`.
    /// nginx cannot log it.
    public var backendSource: GatewayEndpoint?
    /// The tries at upstreams, in order.
    public var upstreamAttempts: [UpstreamAttempt]
    public var request: GatewayRequestLine?
    /// The status the gateway sent its client (nil for error-log lines and TCP logs).
    public var status: Int?
    /// The gateway's own words for what went wrong: nginx's message (without the `client: …`
    /// context), HAProxy's termination state, Envoy's response flags (comma-separated). Nil when
    /// the line says nothing beyond the status (nginx access lines, `----`/`-` is kept as is).
    public var gatewayWords: String?
    /// nginx `$request_id`, Envoy `x-request-id`; the gateway forwards it upstream when configured
    /// (`proxy_set_header X-Request-Id $request_id`), so it can be found in the capture.
    public var requestID: String?
    /// Total time of the request in nanoseconds (nginx `$request_time`, HAProxy Ta, Envoy DURATION).
    public var requestDuration: Int64?
    /// Bytes sent to the client (HAProxy `%B`, Envoy BYTES_SENT, nginx `$body_bytes_sent`).
    public var bytesSent: Int64?
    /// The `Host` (nginx error log `host:`) or `:authority`.
    public var host: String?
    public var nginx: NginxErrorDetails?
    public var haproxy: HAProxyDetails?
    public var envoy: EnvoyDetails?

    public init(
        format: GatewayLogFormat, file: String, lineNumber: Int, rawLine: String, rawLineTruncated: Bool,
        timeMeaning: GatewayTimeMeaning
    ) {
        self.format = format
        self.file = file
        self.lineNumber = lineNumber
        self.rawLine = rawLine
        self.rawLineTruncated = rawLineTruncated
        self.timeMeaning = timeMeaning
        self.upstreamAttempts = []
    }

    /// The first upstream try's endpoint (the address most joins want).
    public var upstream: GatewayEndpoint? { upstreamAttempts.lazy.compactMap(\.endpoint).first }
}
