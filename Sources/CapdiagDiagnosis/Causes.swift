/// The four places an on-call engineer looks, in the order of the usual triage.
public enum CauseFamily: String, Sendable, Codable {
    case upstreamHealth = "upstream_health"
    case gatewayConfiguration = "gateway_configuration"
    case networkPath = "network_path"
    case dns
    /// Not a fault: the application answered an error itself.
    case application
}

/// What a verdict code means for the triage: its family, a title, and the generic fix. The
/// collector sharpens fixes with inferred numbers (keep-alive and read timeouts).
public struct CauseInfo: Sendable {
    public var family: CauseFamily
    public var title: String
    public var fix: String

    public static func of(_ code: String) -> CauseInfo {
        switch code {
        case "connection_refused":
            CauseInfo(
                family: .upstreamHealth, title: "connection refused",
                fix: "nothing accepts connections on this address and port (process down, wrong port, or a firewall rejecting): check the upstream service and the gateway's upstream list")
        case "connection_timeout":
            CauseInfo(
                family: .networkPath, title: "connect timeout (SYNs unanswered)",
                fix: "SYNs get no answer: check that the host is up and that firewalls, security groups and routes let the gateway reach this port")
        case "listen_queue_overflow":
            CauseInfo(
                family: .upstreamHealth, title: "listen queue full (upstream not accepting)",
                fix: "the upstream host answers some SYNs but its application does not accept or serve connections: its listen backlog is full; add workers or capacity, raise the backlog (listen backlog, net.core.somaxconn) and check for a stuck process")
        case "destination_unavailable":
            CauseInfo(
                family: .networkPath, title: "destination unreachable (ICMP)",
                fix: "a router or the host rejects traffic to this upstream with ICMP: check routes, ACLs and firewall reject rules on the path")
        case "upstream_reset_after_request":
            CauseInfo(
                family: .upstreamHealth, title: "upstream reset the connection after the request",
                fix: "the upstream process reset connections after reading requests: check its logs at these times for crashes, restarts, worker kills or request limits")
        case "upstream_closed_before_response":
            CauseInfo(
                family: .upstreamHealth, title: "upstream closed the connection without answering",
                fix: "the upstream closed connections after reading requests without answering: check its logs for errors, timeouts or limits at these times")
        case "upstream_reset_before_request", "upstream_closed_before_request":
            CauseInfo(
                family: .upstreamHealth, title: "upstream dropped fresh connections",
                fix: "the upstream accepted connections and closed them before any request: check its connection limits and accept handling")
        case "goaway_race":
            CauseInfo(
                family: .gatewayConfiguration, title: "HTTP/2 GOAWAY race (stream sent on a connection the upstream was closing)",
                fix: "the upstream sent GOAWAY (max connection age, graceful shutdown) while the gateway opened new streams on that connection: such streams were not processed and are safe to retry; enable retries of refused or unprocessed streams on the gateway (Envoy `retry_on: refused-stream,reset`), and give the upstream's connection age a grace period (gRPC `max_connection_age_grace_ms`)")
        case "stream_reset_by_upstream":
            CauseInfo(
                family: .upstreamHealth, title: "HTTP/2 stream reset by the upstream",
                fix: "the upstream reset streams with RST_STREAM before finishing their responses: REFUSED_STREAM means it was at its stream limit or shutting down (safe to retry; check SETTINGS_MAX_CONCURRENT_STREAMS against the gateway's load); INTERNAL_ERROR or CANCEL point at the upstream's own errors: check its logs at these times")
        case "upstream_closed_with_streams_open":
            CauseInfo(
                family: .upstreamHealth, title: "upstream closed the HTTP/2 connection with streams open",
                fix: "the upstream closed or reset the connection under unfinished streams without GOAWAY first: a crash, a restart or a killed worker; check its logs and make it shut down gracefully (GOAWAY, then drain)")
        case "http2_flow_control_stall":
            CauseInfo(
                family: .upstreamHealth, title: "HTTP/2 flow control stalled",
                fix: "a flow-control window reached zero and was never opened again: the receiving side stopped reading (a stuck worker, a full buffer); check that side's load and its initial window settings (SETTINGS_INITIAL_WINDOW_SIZE, nginx http2_recv_buffer_size / grpc_buffer_size)")
        case "grpc_unavailable":
            CauseInfo(
                family: .upstreamHealth, title: "gRPC UNAVAILABLE (status 14)",
                fix: "the upstream (or a proxy on its side) answered UNAVAILABLE: overloaded, shutting down or unable to reach its own backends; gRPC clients retry it: check the upstream's health and logs at these times")
        case "grpc_internal":
            CauseInfo(
                family: .application, title: "gRPC INTERNAL (status 13)",
                fix: "the upstream application failed the call (INTERNAL): look at its own logs; the network and HTTP/2 are fine")
        case "grpc_error":
            CauseInfo(
                family: .application, title: "gRPC error status",
                fix: "the application answered the call with an error status: nothing on the wire failed")
        case "keepalive_race":
            CauseInfo(
                family: .gatewayConfiguration, title: "keep-alive race (reused connection already closed by the upstream)",
                fix: "the gateway reuses idle upstream connections that the upstream has just closed: make the gateway's upstream keep-alive timeout shorter than the upstream's (nginx `keepalive_timeout` in the upstream block, HAProxy `timeout server`/`http-reuse`), or raise the upstream's keep-alive timeout above the gateway's")
        case "response_cut_short":
            CauseInfo(
                family: .upstreamHealth, title: "response cut short",
                fix: "the upstream stopped sending in the middle of responses: check it for crashes or timeouts while writing, and for proxies in between that cut long transfers")
        case "gateway_error_answer":
            CauseInfo(
                family: .gatewayConfiguration, title: "a gateway's own 502/503/504 (its upstream leg is not in this capture)",
                fix: "this server is itself a proxy or load balancer and decided the 5xx: capture between it and its upstream (or read its error log at these times); the client side shows only that it answered with an error")
        case "invalid_response":
            CauseInfo(
                family: .upstreamHealth, title: "invalid HTTP response",
                fix: "the upstream's answers are not valid HTTP/1.x: fix the application's response (status line, header syntax, framing) or point the gateway at the right port")
        case "response_header_too_large":
            CauseInfo(
                family: .gatewayConfiguration, title: "response headers larger than the gateway's buffer",
                fix: "raise the gateway's header buffer above the size shown (nginx `proxy_buffer_size`, HAProxy `tune.bufsize`) or make the upstream send smaller headers (cookies, tokens)")
        case "response_timeout":
            CauseInfo(
                family: .upstreamHealth, title: "response timeout (upstream slower than the gateway waits)",
                fix: "the upstream did not answer within the gateway's read timeout: find out why it is slow, or raise the timeout (nginx `proxy_read_timeout`, HAProxy `timeout server`) if slow answers are expected")
        case "request_unanswered":
            CauseInfo(
                family: .upstreamHealth, title: "request not answered within the capture",
                fix: "requests were still waiting for an answer when the capture ended: capture longer, or check the upstream for stuck requests")
        case "tls_certificate_error":
            CauseInfo(
                family: .gatewayConfiguration, title: "TLS: gateway rejected the upstream's certificate",
                fix: "the gateway does not trust the upstream's certificate or name: give it the issuing CA (nginx `proxy_ssl_trusted_certificate`), set the expected name (`proxy_ssl_name`), or renew the upstream's certificate")
        case "tls_alert_received", "tls_protocol_error", "tls_handshake_aborted":
            CauseInfo(
                family: .gatewayConfiguration, title: "TLS handshake failure",
                fix: "the TLS handshake between gateway and upstream fails: compare the protocol versions, cipher suites, SNI and client-certificate settings on both sides")
        case "protocol_mismatch":
            CauseInfo(
                family: .gatewayConfiguration, title: "protocol mismatch (TLS vs plain HTTP)",
                fix: "the gateway and the upstream disagree about TLS on this port: use `http://` or `https://` in the gateway's upstream address to match what the port speaks")
        case "tls_handshake_timeout":
            CauseInfo(
                family: .upstreamHealth, title: "TLS handshake timeout",
                fix: "the upstream accepted TCP but never completed the TLS handshake: check that the port really serves TLS and that the upstream is not overloaded")
        case "upstream_application_error":
            CauseInfo(
                family: .application, title: "upstream answered 5xx itself",
                fix: "the network and protocol are fine: the upstream application returned these errors; look at its own logs")
        case "dns_failure":
            CauseInfo(
                family: .dns, title: "DNS resolution failed",
                fix: "the resolver could not resolve the name: check the record, the resolver the gateway uses, and its timeout")
        default:
            CauseInfo(family: .upstreamHealth, title: code.replacingUnderscores, fix: "see the evidence of the flows listed")
        }
    }
}
