/// A gateway product.
public enum GatewayKind: String, Hashable, Sendable, CaseIterable {
    case nginx, haproxy, envoy
}

/// Where a vocabulary entry comes from.
public enum VocabularyEvidence: String, Hashable, Sendable {
    /// Logged by the gateway in this repository's lab: `Captures/lab/*.json` (nginx 1.22.1,
    /// HAProxy 2.6.12) or `Captures/lab/gateway-logs/` (raw logs); `scenarios` names them.
    case lab
    /// Reproduced in the research lab behind `gateway-failures.md` (marked ✔lab there) but not
    /// recorded in this repository.
    case researchLab = "research_lab"
    /// From the gateway's source or documentation only.
    case documentation
}

/// How a phrase is recognised in a log entry.
public enum GatewayPhraseMatch: Hashable, Sendable {
    /// nginx: the message contains every one of these strings.
    case messageContainsAll([String])
    /// HAProxy: the termination state starts with these two characters.
    case terminationState(String)
    /// Envoy: this short response flag is set.
    case responseFlag(String)
    /// Envoy: `%RESPONSE_CODE_DETAILS%` contains this.
    case responseCodeDetails(String)

    var specificity: Int {
        switch self {
        case .messageContainsAll(let parts): return parts.count
        case .terminationState, .responseFlag, .responseCodeDetails: return 1
        }
    }
}

/// One thing a gateway logs, and the capdiag verdicts that show the same failure on the wire.
public struct GatewayPhrase: Hashable, Sendable {
    public var gateway: GatewayKind
    /// The gateway's words as they appear in its log (an example line's words).
    public var words: String
    public var match: GatewayPhraseMatch
    /// What the client gets from the gateway, when it is fixed (nil: depends, or already sent).
    public var status: Int?
    /// capdiag verdict codes (docs/json-schema.md, DIAGNOSIS; cause codes of CONCLUSIONS), most
    /// likely first. Empty: nothing on the wire to look for (the gateway sent no packet for this
    /// request, or the words describe the client's side).
    public var verdictCodes: [String]
    public var evidence: VocabularyEvidence
    /// Lab scenarios in which the gateway logged it (for ``VocabularyEvidence/lab``).
    public var scenarios: [String]
    public var note: String?

    init(
        _ gateway: GatewayKind, _ words: String, _ match: GatewayPhraseMatch, status: Int?, _ verdictCodes: [String],
        _ evidence: VocabularyEvidence, scenarios: [String] = [], note: String? = nil
    ) {
        self.gateway = gateway
        self.words = words
        self.match = match
        self.status = status
        self.verdictCodes = verdictCodes
        self.evidence = evidence
        self.scenarios = scenarios
        self.note = note
    }
}

/// What nginx, HAProxy and Envoy log for each capdiag verdict, and the reverse: from a log
/// entry's words to the verdicts to look for in a capture. Sources: nginx 1.22 source
/// (`ngx_http_upstream.c`, `ngx_http_proxy_module.c`, `ngx_event_openssl.c`), HAProxy
/// configuration.txt §8.5, Envoy's access-log documentation and `stream_info/utility.h`,
/// `gateway-failures.md` §2.3–2.5 and §3, and the lab's labels. Each phrase says whether it was
/// seen in the lab (``VocabularyEvidence``).
public enum GatewayVocabulary {
    private static let connectionTimeout = "upstream timed out (110: Connection timed out)"
    private static let tlsFailures = [
        "tls_certificate_error", "protocol_mismatch", "tls_protocol_error", "tls_alert_received",
        "tls_handshake_aborted",
    ]

    public static let phrases: [GatewayPhrase] = [
        // nginx error log: "<what> while <phase>".
        GatewayPhrase(
            .nginx, "connect() failed (111: Connection refused) while connecting to upstream",
            .messageContainsAll(["connect() failed (111: ", "while connecting to upstream"]), status: 502,
            ["connection_refused"], .lab, scenarios: ["refused", "failover", "no-live-upstreams"]),
        GatewayPhrase(
            .nginx, "connect() failed (113: No route to host) while connecting to upstream",
            .messageContainsAll(["connect() failed (113: ", "while connecting to upstream"]), status: 502,
            ["destination_unavailable"], .lab, scenarios: ["icmp-prohibited"],
            note: "an ICMP host unreachable or administratively prohibited"),
        GatewayPhrase(
            .nginx, "connect() failed (101: Network is unreachable) while connecting to upstream",
            .messageContainsAll(["connect() failed (101: ", "while connecting to upstream"]), status: 502,
            ["destination_unavailable"], .documentation,
            note: "Linux errno 101; from a route or an ICMP net unreachable"),
        GatewayPhrase(
            .nginx, "connect() failed (99: Cannot assign requested address) while connecting to upstream",
            .messageContainsAll(["connect() failed (99: "]), status: 502, [], .documentation,
            note: "the gateway ran out of source ports: no SYN leaves it"),
        GatewayPhrase(
            .nginx, "\(connectionTimeout) while connecting to upstream",
            .messageContainsAll(["upstream timed out (110: ", "while connecting to upstream"]), status: 504,
            ["connection_timeout", "listen_queue_overflow"], .lab, scenarios: ["syn-dropped", "listen-queue-full"]),
        GatewayPhrase(
            .nginx, "\(connectionTimeout) while SSL handshaking to upstream",
            .messageContainsAll(["upstream timed out (110: ", "while SSL handshaking to upstream"]), status: 504,
            ["tls_handshake_timeout"], .lab, scenarios: ["tls-hang"]),
        GatewayPhrase(
            .nginx, "\(connectionTimeout) while reading response header from upstream",
            .messageContainsAll(["upstream timed out (110: ", "while reading response header from upstream"]),
            status: 504, ["response_timeout"], .lab, scenarios: ["slow-upstream"]),
        GatewayPhrase(
            .nginx, "\(connectionTimeout) while reading upstream",
            .messageContainsAll(["upstream timed out (110: ", "while reading upstream"]), status: nil,
            ["response_stalled"], .lab, scenarios: ["stall-mid-response"],
            note: "the status (200) was already sent; the client gets a short body"),
        GatewayPhrase(
            .nginx, "recv() failed (104: Connection reset by peer) while reading response header from upstream",
            .messageContainsAll(["failed (104: ", "while reading response header from upstream"]), status: 502,
            ["upstream_reset_after_request", "keepalive_race"], .lab,
            scenarios: ["reset-after-request", "keepalive-race", "mixed", "duplicates-any-reset", "snaplen96-reset"],
            note: "on a reused keep-alive connection a race; nginx retries idempotent requests silently"),
        GatewayPhrase(
            .nginx, "upstream prematurely closed connection while reading response header from upstream",
            .messageContainsAll([
                "upstream prematurely closed connection", "while reading response header from upstream",
            ]),
            status: 502, ["upstream_closed_before_response", "keepalive_race"], .lab, scenarios: ["fin-without-answer"],
            note: "also seen for keep-alive races in the research lab"),
        GatewayPhrase(
            .nginx, "upstream rejected request with error 2 while reading response header from upstream",
            .messageContainsAll(["upstream rejected request with error", "while reading response header from upstream"]), status: 502,
            ["stream_reset_by_upstream"], .lab, scenarios: ["grpc-reset"],
            note: "HTTP/2 upstream (grpc_pass): the number is the RST_STREAM error code (2 INTERNAL_ERROR, 7 REFUSED_STREAM)"),
        GatewayPhrase(
            .nginx, "upstream prematurely closed connection while reading upstream",
            .messageContainsAll(["upstream prematurely closed connection", "while reading upstream"]), status: nil,
            ["response_cut_short", "upstream_closed_with_streams_open"], .lab, scenarios: ["cut-fin", "snaplen96-cut-fin", "grpc-killed-midstream"],
            note: "FIN mid-body; the status was already sent"),
        GatewayPhrase(
            .nginx, "readv() failed (104: Connection reset by peer) while reading upstream",
            .messageContainsAll(["failed (104: ", "while reading upstream"]), status: nil, ["response_cut_short"], .lab,
            scenarios: ["cut-rst"], note: "RST mid-body; the status was already sent"),
        GatewayPhrase(
            .nginx, "writev() failed (32: Broken pipe) while sending request to upstream",
            .messageContainsAll(["failed (32: ", "while sending request to upstream"]), status: 502,
            ["keepalive_race", "upstream_closed_before_request", "upstream_reset_before_request"], .documentation),
        GatewayPhrase(
            .nginx, "writev() failed (104: Connection reset by peer) while sending request to upstream",
            .messageContainsAll(["failed (104: ", "while sending request to upstream"]), status: 502,
            ["keepalive_race", "upstream_reset_before_request"], .documentation),
        GatewayPhrase(
            .nginx, "upstream sent no valid HTTP/1.0 header while reading response header from upstream",
            .messageContainsAll(["upstream sent no valid HTTP/1.0 header"]), status: nil, ["invalid_response"], .lab,
            scenarios: ["garbage"],
            note: "nginx passes the bytes on as HTTP/0.9: access log status 009, upstream_status 200"),
        GatewayPhrase(
            .nginx, "upstream sent invalid header: \"…\" while reading response header from upstream",
            .messageContainsAll(["upstream sent invalid header"]), status: 502, ["invalid_response"], .lab,
            scenarios: ["invalid-header"]),
        GatewayPhrase(
            .nginx, "upstream sent too big header while reading response header from upstream",
            .messageContainsAll(["upstream sent too big header"]), status: 502, ["response_header_too_large"], .lab,
            scenarios: ["big-headers"], note: "nginx then resets the connection (unread data)"),
        GatewayPhrase(
            .nginx, "upstream sent invalid chunked response while reading upstream",
            .messageContainsAll(["upstream sent invalid chunked response"]), status: nil, ["invalid_response"],
            .documentation),
        GatewayPhrase(
            .nginx, "upstream sent duplicate header line: \"…\", previous value: \"…\"",
            .messageContainsAll(["upstream sent duplicate header line"]), status: 502, ["invalid_response"],
            .documentation, note: "nginx 1.23+ (source; not run here)"),
        GatewayPhrase(
            .nginx, "upstream sent response with both \"Content-Length\" and \"Transfer-Encoding\"",
            .messageContainsAll(["upstream sent response with both"]), status: 502, ["invalid_response"],
            .documentation, note: "nginx 1.23+ (source; not run here)"),
        GatewayPhrase(
            .nginx,
            "SSL_do_handshake() failed (SSL: error:0A00010B:SSL routines::wrong version number) while SSL handshaking to upstream",
            .messageContainsAll(["SSL_do_handshake() failed", "wrong version number"]), status: 502,
            ["protocol_mismatch"],
            .lab, scenarios: ["tls-plain-http"], note: "the upstream answered the ClientHello with plain HTTP"),
        GatewayPhrase(
            .nginx, "SSL_do_handshake() failed (SSL: … SSL alert number N) while SSL handshaking to upstream",
            .messageContainsAll(["SSL_do_handshake() failed", "SSL alert number"]), status: 502, ["tls_alert_received"],
            .documentation),
        GatewayPhrase(
            .nginx, "SSL_do_handshake() failed (SSL: …) while SSL handshaking to upstream",
            .messageContainsAll(["SSL_do_handshake() failed"]), status: 502,
            ["tls_protocol_error", "tls_alert_received", "protocol_mismatch"], .documentation),
        GatewayPhrase(
            .nginx,
            "upstream SSL certificate verify error: (18:self-signed certificate) while SSL handshaking to upstream",
            .messageContainsAll(["upstream SSL certificate verify error"]), status: 502, ["tls_certificate_error"],
            .lab,
            scenarios: ["tls-untrusted", "tls13-untrusted"],
            note: "nginx verifies after the handshake: on the wire a completed handshake, then an alert and FIN"),
        GatewayPhrase(
            .nginx, "upstream SSL certificate does not match \"name\" while SSL handshaking to upstream",
            .messageContainsAll(["upstream SSL certificate does not match"]), status: 502, ["tls_certificate_error"],
            .lab,
            scenarios: ["tls13-name-mismatch"]),
        GatewayPhrase(
            .nginx, "peer closed connection in SSL handshake while SSL handshaking to upstream",
            .messageContainsAll(["peer closed connection in SSL handshake"]), status: 502, ["tls_handshake_aborted"],
            .documentation),
        GatewayPhrase(
            .nginx, "no live upstreams while connecting to upstream", .messageContainsAll(["no live upstreams"]),
            status: 502, [], .lab, scenarios: ["no-live-upstreams"],
            note: "no packet for this request: earlier failures marked every server down (max_fails, fail_timeout); "
                + "$upstream_addr is the upstream group's name"),
        GatewayPhrase(
            .nginx, "upstream server temporarily disabled while connecting to upstream",
            .messageContainsAll(["upstream server temporarily disabled"]), status: nil, [], .lab,
            scenarios: ["failover", "no-live-upstreams"],
            note: "[warn] after a failed try reached max_fails; the failed try has its own line"),
        GatewayPhrase(
            .nginx, "<name> could not be resolved (3: Host not found)", .messageContainsAll(["could not be resolved"]),
            status: 502, ["dns_failure"], .documentation),

        // HAProxy termination state (first two characters: cause, phase).
        GatewayPhrase(
            .haproxy, "SC--", .terminationState("SC"), status: 503,
            ["connection_refused", "destination_unavailable"] + tlsFailures, .lab, scenarios: ["haproxy-refused"],
            note: "server refused or reset the connect, or an ICMP error; TLS handshake failures too (bc_err_str); "
                + "after %rc retries, %bi:%bp is the last try's"),
        GatewayPhrase(
            .haproxy, "sC--", .terminationState("sC"), status: 503,
            ["connection_timeout", "listen_queue_overflow", "tls_handshake_timeout"], .researchLab,
            note: "timeout connect, after retries"),
        GatewayPhrase(
            .haproxy, "SH--", .terminationState("SH"), status: 502,
            ["upstream_reset_after_request", "upstream_closed_before_response", "keepalive_race"], .lab,
            scenarios: [
                "haproxy-reset-after-request", "haproxy-fin-without-answer", "haproxy-keepalive-race",
                "haproxy-httplog",
            ],
            note: "with http-reuse always, a reused connection's race; with the default a client connection closed "
                + "without response and without a log line"),
        GatewayPhrase(
            .haproxy, "sH--", .terminationState("sH"), status: 504, ["response_timeout"], .lab,
            scenarios: ["haproxy-slow-upstream"], note: "timeout server; HAProxy then resets the connection"),
        GatewayPhrase(
            .haproxy, "PH--", .terminationState("PH"), status: 502, ["invalid_response", "response_header_too_large"],
            .researchLab),
        GatewayPhrase(.haproxy, "SD--", .terminationState("SD"), status: nil, ["response_cut_short"], .researchLab),
        GatewayPhrase(
            .haproxy, "SH--", .terminationState("SH"), status: 502, ["stream_reset_by_upstream", "upstream_closed_with_streams_open", "goaway_race"],
            .documentation, note: "HTTP/2 backend (proto h2): the server reset the stream or closed the connection before the response headers"),
        GatewayPhrase(
            .haproxy, "SD--", .terminationState("SD"), status: nil, ["stream_reset_by_upstream", "upstream_closed_with_streams_open"],
            .documentation, note: "HTTP/2 backend (proto h2): the server reset the stream or closed the connection during the response body"),
        GatewayPhrase(.haproxy, "sD--", .terminationState("sD"), status: nil, ["response_stalled"], .documentation),
        GatewayPhrase(.haproxy, "PD--", .terminationState("PD"), status: nil, ["invalid_response"], .documentation),
        GatewayPhrase(
            .haproxy, "sQ--", .terminationState("sQ"), status: 503, [], .documentation,
            note: "queue timeout: no connection was tried"),
        GatewayPhrase(
            .haproxy, "RC--", .terminationState("RC"), status: 503, [], .documentation,
            note: "a local resource ran out (source ports): no SYN leaves it"),
        GatewayPhrase(
            .haproxy, "---- (with a 5xx status)", .terminationState("--"), status: nil, ["upstream_application_error"],
            .researchLab, note: "a 5xx the upstream sent itself; only with a 5xx status"),
        GatewayPhrase(
            .haproxy, "CD--", .terminationState("CD"), status: nil, [], .documentation, note: "the client went away"),
        GatewayPhrase(
            .haproxy, "CH--", .terminationState("CH"), status: nil, [], .documentation,
            note: "the client went away before the response headers"),

        // Envoy response flags and details.
        GatewayPhrase(
            .envoy, "UF", .responseFlag("UF"), status: 503,
            ["connection_refused", "connection_timeout", "destination_unavailable", "tls_handshake_timeout"]
                + tlsFailures,
            .documentation,
            note: "upstream connection failure, including connect timeouts and TLS failures "
                + "(%UPSTREAM_TRANSPORT_FAILURE_REASON% tells which)"),
        GatewayPhrase(
            .envoy, "UC", .responseFlag("UC"), status: 503,
            ["upstream_closed_before_response", "upstream_reset_after_request", "keepalive_race", "upstream_closed_with_streams_open", "goaway_race"],
            .documentation, note: "HTTP/1: FIN or RST with the request in flight (envoy#14981); HTTP/2: the connection closed under open streams"),
        GatewayPhrase(
            .envoy, "UR", .responseFlag("UR"), status: 503, ["upstream_reset_after_request", "stream_reset_by_upstream"], .documentation,
            note: "upstream remote reset (HTTP/2 RST_STREAM)"),
        GatewayPhrase(.envoy, "UT", .responseFlag("UT"), status: 504, ["response_timeout"], .documentation),
        GatewayPhrase(
            .envoy, "UPE", .responseFlag("UPE"), status: 502, ["invalid_response", "response_header_too_large"],
            .documentation),
        GatewayPhrase(
            .envoy, "UMSDR", .responseFlag("UMSDR"), status: nil, ["response_timeout", "response_stalled"],
            .documentation, note: "max stream duration reached"),
        GatewayPhrase(.envoy, "DF", .responseFlag("DF"), status: nil, ["dns_failure"], .documentation),
        GatewayPhrase(
            .envoy, "URX", .responseFlag("URX"), status: nil, [], .documentation,
            note: "retry limit reached: added to the last try's flag"),
        GatewayPhrase(
            .envoy, "UH", .responseFlag("UH"), status: 503, [], .documentation,
            note: "no healthy upstream: no packet for this request"),
        GatewayPhrase(
            .envoy, "UO", .responseFlag("UO"), status: 503, [], .documentation, note: "circuit breaking: no packet"),
        GatewayPhrase(.envoy, "LR", .responseFlag("LR"), status: 503, [], .documentation, note: "Envoy reset locally"),
        GatewayPhrase(.envoy, "NR", .responseFlag("NR"), status: 404, [], .documentation, note: "no route"),
        GatewayPhrase(.envoy, "DC", .responseFlag("DC"), status: nil, [], .documentation, note: "the client went away"),
        GatewayPhrase(
            .envoy, "upstream_reset_before_response_started{connection_termination}",
            .responseCodeDetails("upstream_reset_before_response_started{connection_termination}"), status: 503,
            ["upstream_closed_before_response", "upstream_reset_after_request", "keepalive_race"], .documentation),
        GatewayPhrase(
            .envoy, "upstream_reset_before_response_started{connection_failure}",
            .responseCodeDetails("upstream_reset_before_response_started{connection_failure}"), status: 503,
            ["connection_refused", "connection_timeout", "destination_unavailable"], .documentation),
        GatewayPhrase(
            .envoy, "upstream_response_timeout", .responseCodeDetails("upstream_response_timeout"), status: 504,
            ["response_timeout"], .documentation),
    ]

    /// The verdict codes the table refers to.
    public static var verdictCodes: [String] {
        var seen: Set<String> = []
        return phrases.flatMap(\.verdictCodes).filter { seen.insert($0).inserted }
    }

    /// What the gateways log for a verdict code.
    public static func phrases(for verdictCode: String, gateway: GatewayKind? = nil) -> [GatewayPhrase] {
        phrases.filter { $0.verdictCodes.contains(verdictCode) && (gateway == nil || $0.gateway == gateway) }
    }

    /// The phrases that describe `words` (an nginx message, a HAProxy termination state, Envoy
    /// flags separated by commas or response code details), most specific first.
    public static func matches(gateway: GatewayKind, words: String) -> [GatewayPhrase] {
        let found = phrases.filter { phrase in
            guard phrase.gateway == gateway else { return false }
            switch phrase.match {
            case .messageContainsAll(let parts): return parts.allSatisfy { contains(words, $0) }
            case .terminationState(let prefix): return words.utf8.starts(with: prefix.utf8)
            case .responseFlag(let flag): return EnvoyLog.flags(words).contains(flag)
            case .responseCodeDetails(let details): return contains(words, details)
            }
        }
        // Stable: equally specific phrases keep the table's order.
        return found.enumerated().sorted {
            ($0.element.match.specificity, -$0.offset) > ($1.element.match.specificity, -$1.offset)
        }.map(\.element)
    }

    /// The phrases that describe an entry: nginx's message, HAProxy's termination state (`----`
    /// only with a 5xx status), Envoy's flags and response code details.
    public static func matches(for entry: GatewayLogEntry) -> [GatewayPhrase] {
        switch entry.format {
        case .nginxError:
            return entry.gatewayWords.map { matches(gateway: .nginx, words: $0) } ?? []
        case .haproxy:
            guard let state = entry.haproxy?.terminationState else { return [] }
            if state.hasPrefix("--") && (entry.status ?? 0) < 500 { return [] }
            return matches(gateway: .haproxy, words: state)
        case .envoyText, .envoyJSON:
            var found = entry.gatewayWords.map { matches(gateway: .envoy, words: $0) } ?? []
            if let details = entry.envoy?.responseCodeDetails {
                found += matches(gateway: .envoy, words: details).filter { !found.contains($0) }
            }
            return found
        case .nginxAccess, .nginxCombined:
            return []
        }
    }

    /// The candidate verdict codes for an entry, most likely first (those of the most specific
    /// phrase before the others).
    public static func candidates(for entry: GatewayLogEntry) -> [String] {
        var seen: Set<String> = []
        return matches(for: entry).flatMap(\.verdictCodes).filter { seen.insert($0).inserted }
    }

    private static func contains(_ text: String, _ part: String) -> Bool {
        let bytes = Array(text.utf8)
        return LineText.contains(bytes, 0..<bytes.count, Array(part.utf8))
    }
}
