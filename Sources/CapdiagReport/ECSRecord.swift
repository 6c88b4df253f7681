import CapdiagDiagnosis
import CapdiagFlow
import CapdiagProtocols
import CapdiagWire

/// `-T ecs`: capdiag's events shaped by the Elastic Common Schema, one JSON object per line,
/// so Elasticsearch, OpenSearch or Loki take them without a mapping step (field reference:
/// elastic/ecs `generated/ecs/ecs_flat.yml`; the types of every field written here are vendored
/// in `Tests/ecs-reference/ecs-fields.tsv` and checked by the `ECSOutput` tests).
///
/// Three events: a flow that ended (`event.dataset: capdiag.flow`), a verdict a live capture
/// just decided (`capdiag.verdict`), and the end of the analysis (`capdiag.summary`). ECS fields
/// hold what ECS defines; everything else of capdiag's sits under `capdiag.*`. Times are
/// ISO 8601 strings, every number is an integer (docs/json-schema.md, section ECS).
public enum ECSRecord {
    /// The ECS release the events declare. Every ECS field written exists, with the JSON kind of the vendored reference,
    /// since ECS 1.9 at the latest (`http.request.id`); the rest since ECS 1.2.
    public static let ecsVersion = "8.11.0"

    /// `event.severity`: capdiag's severities as integers (none 0 … high 4).
    public static func severityNumber(_ name: String) -> Int {
        switch name {
        case "info": 1
        case "low": 2
        case "medium": 3
        case "high": 4
        default: 0
        }
    }

    // MARK: - Flow

    /// The event of one finished flow, built from its JSON record (built once per flow).
    public static func flowEvent(_ record: FlowRecord) -> String {
        let diagnosis = record.diagnosis
        let severity = diagnosis?.severity ?? "none"
        let exchange = decisiveExchange(record)

        var event = JSONObject()
        event.add("kind", "event")
        event.add("category", strings: ["network"])
        // `protocol`: the event carries the application protocol's details (`network.protocol`).
        event.add("type", strings: protocolName(record) != nil ? ["connection", "end", "protocol"] : ["connection", "end"])
        event.add("outcome", outcome(severity))
        event.add("duration", record.durationNs)
        event.add("start", record.start)
        event.add("end", record.end)
        event.add("dataset", "capdiag.flow")
        event.add("module", "capdiag")
        event.add("severity", severityNumber(severity))

        var o = JSONObject()
        o.add("@timestamp", record.start)
        o.add("ecs", version())
        o.add("event", event)
        o.add("source", endpoint(record.originator, packets: record.orig.packets, bytes: record.orig.bytes))
        o.add("destination", endpoint(record.responder, packets: record.resp.packets, bytes: record.resp.bytes))
        o.add("network", network(record))
        if let exchange {
            o.add("http", http(exchange))
            o.add("url", url(target: exchange.target, host: exchange.host))
            if let trace = traceID(exchange.requestIds) {
                var t = JSONObject()
                t.add("id", trace)
                o.add("trace", t)
            }
        }
        o.add("message", message(record, exchange: exchange))
        o.add("capdiag", capdiagFields(record, exchange: exchange))
        return o.text
    }

    static func version() -> JSONObject {
        var o = JSONObject()
        o.add("version", ecsVersion)
        return o
    }

    /// `event.outcome`: a flow with a medium or high verdict (a request or a connection failed,
    /// or the upstream answered an error) failed; any other finished flow succeeded.
    static func outcome(_ severity: String) -> String {
        severity == "medium" || severity == "high" ? "failure" : "success"
    }

    /// The exchange the ECS `http.*` and `url.*` fields describe: the one the flow's worst
    /// verdict is about, else the first exchange of the connection.
    static func decisiveExchange(_ record: FlowRecord) -> HTTPExchangeRecord? {
        guard let http = record.http, !http.exchanges.isEmpty else { return nil }
        let findings = record.diagnosis?.findings ?? []
        var best: (rank: Int, index: Int)?
        for finding in findings {
            guard let index = finding.exchange else { continue }
            let rank = severityNumber(finding.severity)
            if rank > best?.rank ?? -1 { best = (rank, index) }
        }
        if let best, let exchange = http.exchanges.first(where: { $0.index == best.index }) { return exchange }
        return http.exchanges.first
    }

    static func endpoint(_ endpoint: EndpointRecord, packets: Int?, bytes: Int?) -> JSONObject {
        var o = JSONObject()
        o.add("address", endpoint.address)
        o.add("ip", endpoint.address)
        o.add("port", endpoint.port)
        o.add("packets", packets)
        o.add("bytes", bytes)
        return o
    }

    static func network(_ record: FlowRecord) -> JSONObject {
        var o = JSONObject()
        o.add("transport", "tcp")
        o.add("iana_number", "6")
        o.add("type", record.originator.address.contains(":") ? "ipv6" : "ipv4")
        o.add("community_id", record.communityId)
        o.add("bytes", record.orig.bytes + record.resp.bytes)
        o.add("packets", record.orig.packets + record.resp.packets)
        o.add("protocol", protocolName(record))
        return o
    }

    /// `network.protocol`: the application protocol capdiag recognised by content.
    static func protocolName(_ record: FlowRecord) -> String? {
        ["http", "tls", "dns", "http2"].contains(record.application) ? record.application : nil
    }

    static func http(_ exchange: HTTPExchangeRecord) -> JSONObject {
        var request = JSONObject()
        request.add("method", exchange.method)
        if let id = exchange.requestIds.first(where: { $0.name == "x-request-id" })?.value { request.add("id", id) }
        var requestBody = JSONObject()
        requestBody.add("bytes", exchange.requestBodyBytes)
        request.add("body", requestBody)
        var response = JSONObject()
        response.add("status_code", exchange.status)
        var responseBody = JSONObject()
        responseBody.add("bytes", exchange.deliveredBodyBytes)
        response.add("body", responseBody)
        var o = JSONObject()
        o.add("request", request)
        // A response that never came has no `http.response`.
        if exchange.status != nil || exchange.responseFrame != nil { o.add("response", response) }
        return o
    }

    /// `url.*` from a request target (RFC 9112 §3.2: origin-form `/p?q`, absolute-form
    /// `http://h/p?q`, authority-form `h:443`, asterisk-form `*`) and the Host header.
    static func url(target: String?, host: String?) -> JSONObject? {
        guard target != nil || host != nil else { return nil }
        var o = JSONObject()
        var domain = host.flatMap(hostWithoutPort)
        if let target {
            o.add("original", target)
            var rest = Substring(target)
            // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) (RFC 3986 §3.1), then "://".
            let schemeEnd = rest.firstIndex(of: ":")
            if let schemeEnd, schemeEnd > rest.startIndex, rest[schemeEnd...].hasPrefix("://"),
                rest[..<schemeEnd].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) })
            {
                o.add("scheme", String(rest[..<schemeEnd]).lowercased())
                rest = rest[rest.index(schemeEnd, offsetBy: 3)...]
                let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
                let authority = rest[..<authorityEnd]
                let hostPart = authority.split(separator: "@", omittingEmptySubsequences: false).last.map(String.init) ?? ""
                if let fromTarget = hostWithoutPort(hostPart) { domain = fromTarget }
                rest = rest[authorityEnd...]
                if rest.isEmpty || rest.first != "/" { rest = "/" + rest }
            }
            if rest.first == "/" {
                let withoutFragment = rest.prefix { $0 != "#" }
                if let question = withoutFragment.firstIndex(of: "?") {
                    o.add("path", String(withoutFragment[..<question]))
                    o.add("query", String(withoutFragment[withoutFragment.index(after: question)...]))
                } else {
                    o.add("path", String(withoutFragment))
                }
            }
        }
        o.add("domain", domain)
        return o
    }

    /// A Host value without its port: `example.com:8080` → `example.com`, `[::1]:80` → `[::1]`
    /// (ECS keeps the brackets of an IPv6 literal).
    static func hostWithoutPort(_ host: String) -> String? {
        guard !host.isEmpty else { return nil }
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return host }
            return String(host[...close])
        }
        if let colon = host.lastIndex(of: ":"), host.firstIndex(of: ":") == colon {
            let port = host[host.index(after: colon)...]
            if port.allSatisfy(\.isNumber) { return colon == host.startIndex ? nil : String(host[..<colon]) }
        }
        return host
    }

    /// The trace ID of a W3C Trace Context `traceparent` header (version-format:
    /// `00-<32 hex trace-id>-<16 hex parent-id>-<2 hex flags>`, lower-case hex; a trace-id or
    /// parent-id of all zeros and version `ff` are invalid; a later version may append fields).
    static func traceID(_ ids: [HeaderValue]) -> String? {
        ids.first(where: { $0.name == "traceparent" }).flatMap { traceID(traceparent: $0.value) }
    }

    /// The trace-id of one `traceparent` value, nil when the value is not valid.
    public static func traceID(traceparent value: String) -> String? {
        let parts = value.split(separator: "-", omittingEmptySubsequences: false)
        func hex(_ part: Substring, _ count: Int) -> Bool {
            part.utf8.count == count && part.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
        }
        guard parts.count >= 4, hex(parts[0], 2), parts[0] != "ff", parts[0] != "00" || parts.count == 4,
            hex(parts[1], 32), hex(parts[2], 16), hex(parts[3], 2),
            parts[1].contains(where: { $0 != "0" }), parts[2].contains(where: { $0 != "0" })
        else { return nil }
        return String(parts[1])
    }

    /// One line: who talked to whom, how the connection ended, and the worst verdict.
    static func message(_ record: FlowRecord, exchange: HTTPExchangeRecord?) -> String {
        var text = "flow #\(record.id) \(address(record.originator)) -> \(address(record.responder)) \(record.connState) \(record.history)"
        if let http = record.http {
            text += ", \(http.exchangeCount) HTTP exchange\(http.exchangeCount == 1 ? "" : "s")"
            if let exchange, let method = exchange.method {
                text += " (\(method) \(exchange.target ?? "?") -> \(exchange.status.map(String.init) ?? "no response"))"
            }
        } else if record.application != "none" {
            text += ", \(record.application)"
        }
        let findings = (record.diagnosis?.findings ?? []).sorted { severityNumber($0.severity) > severityNumber($1.severity) }
        if let worst = findings.first {
            text += ": \(worst.code) [\(worst.severity)] \(worst.summary)"
            if findings.count > 1 { text += " (+\(findings.count - 1) more)" }
        } else {
            text += ": no problem found"
        }
        return Markup.visible(text)
    }

    static func address(_ endpoint: EndpointRecord) -> String {
        endpoint.address.contains(":") ? "[\(endpoint.address)]:\(endpoint.port)" : "\(endpoint.address):\(endpoint.port)"
    }

    static func capdiagFields(_ record: FlowRecord, exchange: HTTPExchangeRecord?) -> JSONObject {
        var o = JSONObject()
        o.add("flow_id", record.id)
        o.add("conn_state", record.connState)
        o.add("history", record.history)
        o.add("ended_by", record.endedBy)
        o.add("first_frame", record.firstFrame)
        o.add("last_frame", record.lastFrame)
        o.add("roles_inferred", record.rolesInferred)
        o.add("application", record.application)
        o.add("severity", record.diagnosis?.severity ?? "none")
        o.add("anomalies", strings: record.anomalies)
        o.add("verdicts", objects: (record.diagnosis?.findings ?? []).map(verdict))
        if let http = record.http {
            var h = JSONObject()
            h.add("exchange_count", http.exchangeCount)
            h.add("problem_count", http.problemCount)
            h.add("exchange_index", exchange?.index)
            h.add("problem", exchange?.problem?.code)
            h.add("request_ids", objects: (exchange?.requestIds ?? []).map { id in
                var o = JSONObject()
                o.add("name", id.name)
                o.add("value", id.value)
                return o
            })
            o.add("http", h)
        }
        var directions = JSONObject()
        for (name, direction) in [("orig", record.orig), ("resp", record.resp)] {
            var d = JSONObject()
            d.add("retransmissions", direction.retransmissions)
            d.add("missing_bytes", direction.missingBytes)
            d.add("zero_windows", direction.zeroWindows)
            d.add("fin", direction.fin)
            d.add("rst", direction.rst)
            directions.add(name, d)
        }
        o.add("tcp", directions)
        return o
    }

    static func verdict(_ finding: FindingRecord) -> JSONObject {
        var o = JSONObject()
        o.add("code", finding.code)
        o.add("severity", finding.severity)
        o.add("summary", finding.summary)
        o.add("proxy_status", finding.proxyStatus)
        o.add("dimension", finding.dimension)
        o.add("score", finding.score)
        o.add("reason", finding.reason)
        o.add("time", finding.time)
        o.add("exchange", finding.exchange)
        return o
    }

    // MARK: - Live verdict

    /// A verdict a live capture decided (`-i`): an alert about the flow, before the flow's
    /// own event (which follows when it leaves the table).
    public static func verdictEvent(flow: TCPFlow, finding: Finding) -> String {
        let record = VerdictRecord(flow: flow.id, originator: flow.originator, responder: flow.responder, finding: finding)
        var event = JSONObject()
        event.add("kind", "alert")
        event.add("category", strings: ["network"])
        event.add("type", strings: ["connection", "info"])
        event.add("outcome", "failure")
        event.add("start", flow.first.time.iso8601)
        event.add("dataset", "capdiag.verdict")
        event.add("module", "capdiag")
        event.add("severity", severityNumber(record.finding.severity))

        var network = JSONObject()
        network.add("transport", "tcp")
        network.add("iana_number", "6")
        network.add("type", flow.originator.address.isIPv4 ? "ipv4" : "ipv6")
        network.add("community_id", record.communityId)

        var o = JSONObject()
        o.add("@timestamp", record.finding.time)
        o.add("ecs", version())
        o.add("event", event)
        o.add("source", endpoint(record.originator, packets: nil, bytes: nil))
        o.add("destination", endpoint(record.responder, packets: nil, bytes: nil))
        o.add("network", network)
        if let method = record.finding.method {
            var request = JSONObject()
            request.add("method", method)
            var http = JSONObject()
            http.add("request", request)
            o.add("http", http)
        }
        o.add("url", url(target: record.finding.target, host: nil))
        o.add("message", record.textLine)
        var c = JSONObject()
        c.add("flow_id", flow.id)
        c.add("severity", record.finding.severity)
        c.add("verdicts", objects: [verdict(record.finding)])
        o.add("capdiag", c)
        return o.text
    }

    // MARK: - Summary

    /// The end of the analysis: the capture's counts and the capture-wide conclusions.
    /// - Parameter now: `@timestamp` when the capture held no packet (ECS requires one).
    public static func summaryEvent(_ summary: SummaryRecord, now: Timestamp) -> String {
        let capture = summary.capture
        let worst = summary.diagnosis?.worstSeverity ?? "none"
        var event = JSONObject()
        event.add("kind", "metric")
        event.add("category", strings: ["network"])
        event.add("type", strings: ["info"])
        event.add("start", capture.firstPacket)
        event.add("end", capture.lastPacket)
        event.add("duration", capture.durationNs)
        event.add("dataset", "capdiag.summary")
        event.add("module", "capdiag")
        event.add("severity", severityNumber(worst))

        var s = JSONObject()
        s.add("schema", summary.schema)
        s.add("packets_read", capture.packets.read)
        s.add("packets_skipped", capture.packets.skipped)
        s.add("captured_bytes", capture.packets.capturedBytes)
        s.add("flows", summary.flows.total)
        s.add("flagged", summary.flows.flagged)
        s.add("evicted", summary.flows.evicted)
        var states = JSONObject()
        for (state, count) in summary.flows.byConnState { states.add(state, count) }
        s.add("by_conn_state", states)
        s.add("worst_severity", worst)
        s.add("caveats", strings: capture.caveats)
        s.add("inputs", strings: capture.inputs.map(\.path))
        if let kernel = capture.kernel {
            var k = JSONObject()
            k.add("received", kernel.received)
            k.add("dropped", kernel.dropped)
            k.add("interface_dropped", kernel.interfaceDropped)
            s.add("kernel", k)
        }
        // At most 20 upstreams, each with its three leading causes: bounded whatever the capture.
        let upstreams = (summary.diagnosis?.upstreams ?? []).prefix(20)
        s.add("upstreams", objects: upstreams.map { upstream in
            var u = JSONObject()
            u.add("upstream", JSONObject.endpoint(upstream.upstream))
            u.add("flows", upstream.flows)
            u.add("requests", upstream.requests)
            u.add("failures", upstream.failures)
            u.add("failure_rate_per_mille", upstream.failureRatePerMille)
            u.add("conclusion", upstream.conclusion)
            u.add("causes", objects: upstream.causes.prefix(3).map { cause in
                var c = JSONObject()
                c.add("code", cause.code)
                c.add("severity", cause.severity)
                c.add("count", cause.count)
                c.add("share_per_mille", cause.sharePerMille)
                return c
            })
            return u
        })

        var o = JSONObject()
        o.add("@timestamp", capture.lastPacket ?? capture.firstPacket ?? now.iso8601)
        o.add("ecs", version())
        o.add("event", event)
        var text = "capdiag summary: \(capture.packets.read) packets, \(summary.flows.total) flows, \(summary.flows.flagged) flagged; worst verdict: \(worst)"
        if let top = upstreams.first(where: { !$0.causes.isEmpty }), let cause = top.causes.first {
            text += "; \(top.upstream): \(cause.code) x\(cause.count)"
        }
        o.add("message", Markup.visible(text))
        var c = JSONObject()
        c.add("summary", s)
        o.add("capdiag", c)
        return o.text
    }
}
