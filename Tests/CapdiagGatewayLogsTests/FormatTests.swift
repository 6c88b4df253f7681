import CapdiagGatewayLogs
import CapdiagWire
import Testing

@Suite struct Formats {
    static func entry(_ line: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> GatewayLogEntry {
        guard case .entry(let entry) = GatewayLogParser.parse(line: line, file: "test.log", lineNumber: 7) else {
            Issue.record("not read: \(line)", sourceLocation: sourceLocation)
            throw CancellationError()
        }
        return entry
    }

    static func instant(_ text: String) -> Int64 {
        // 2026-11-25T14:24:05Z-style, for expectations only (seconds resolution).
        let parts = text.split(whereSeparator: { "-T:Z".contains($0) }).compactMap { Int64($0) }
        return Timestamp(nanoseconds: 0).nanoseconds + civilSeconds(parts[0], parts[1], parts[2]) * 1_000_000_000
            + (parts[3] * 3600 + parts[4] * 60 + parts[5]) * 1_000_000_000
    }

    /// Days-from-civil written out again for the test (not the library's).
    static func civilSeconds(_ year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let monthDays: [Int64] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        var days: Int64 = 0
        for y in 1970..<year { days += (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) ? 366 : 365 }
        for m in 1..<month {
            days += monthDays[Int(m - 1)]
            if m == 2 && (year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)) { days += 1 }
        }
        return (days + day - 1) * 86_400
    }

    /// The example of the issue, field by field.
    @Test func nginxErrorLine() throws {
        let entry = try Self.entry(
            """
            2026/11/25 14:24:05 [error] 1234#1234: *45 upstream prematurely closed connection while reading response \
            header from upstream, client: 10.77.1.2, server: _, request: "POST /x HTTP/1.1", upstream: \
            "http://10.77.2.2:9012/x", host: "10.77.1.1:8012"
            """)
        #expect(entry.format == .nginxError)
        #expect(entry.file == "test.log" && entry.lineNumber == 7)
        #expect(entry.time?.wallClock.nanoseconds == Self.instant("2026-11-25T14:24:05Z"))
        #expect(entry.time?.isZoneKnown == false)
        #expect(entry.time?.instant == nil)
        #expect(entry.time?.instant(assumingUTCOffset: 3600).nanoseconds == Self.instant("2026-11-25T13:24:05Z"))
        #expect(entry.nginx?.level == "error")
        #expect(entry.nginx?.pid == 1234 && entry.nginx?.threadID == 1234)
        #expect(entry.nginx?.connection == 45)
        #expect(
            entry.gatewayWords == "upstream prematurely closed connection while reading response header from upstream")
        #expect(entry.nginx?.phase == "reading response header from upstream")
        #expect(entry.nginx?.failedCall == nil)
        #expect(entry.client?.description == "10.77.1.2")
        #expect(entry.nginx?.server == "_")
        #expect(entry.request == GatewayRequestLine(method: "POST", target: "/x", version: "HTTP/1.1"))
        #expect(entry.upstream == GatewayEndpoint(parsing: "10.77.2.2:9012"))
        #expect(entry.host == "10.77.1.1:8012")
        #expect(GatewayVocabulary.candidates(for: entry) == ["upstream_closed_before_response", "keepalive_race"])
    }

    @Test(
        arguments: [
            (
                "connect() failed (111: Connection refused) while connecting to upstream", "connect()", 111,
                "Connection refused", "connecting to upstream", "connection_refused"
            ),
            (
                "upstream timed out (110: Connection timed out) while reading response header from upstream", nil, 110,
                "Connection timed out", "reading response header from upstream", "response_timeout"
            ),
            (
                "recv() failed (104: Connection reset by peer) while reading response header from upstream", "recv()",
                104,
                "Connection reset by peer", "reading response header from upstream", "upstream_reset_after_request"
            ),
            (
                "SSL_do_handshake() failed (SSL: error:0A00010B:SSL routines::wrong version number) while SSL handshaking to upstream",
                "SSL_do_handshake()", nil, nil, "SSL handshaking to upstream", "protocol_mismatch"
            ),
            ("no live upstreams while connecting to upstream", nil, nil, nil, "connecting to upstream", nil),
        ] as [(String, String?, Int?, String?, String, String?)])
    func nginxMessages(message: String, call: String?, errno: Int?, errnoText: String?, phase: String, code: String?)
        throws
    {
        let entry = try Self.entry("2026/11/25 14:24:05 [error] 7#7: *1 \(message), client: ::1, server: a.test")
        #expect(entry.gatewayWords == message)
        #expect(entry.nginx?.failedCall == call)
        #expect(entry.nginx?.errno == errno)
        #expect(entry.nginx?.errnoText == errnoText)
        #expect(entry.nginx?.phase == phase)
        #expect(entry.client?.address == TextAddressForTests.v6Loopback)
        #expect(entry.nginx?.server == "a.test")
        #expect(GatewayVocabulary.candidates(for: entry).first == code)
    }

    @Test func nginxErrorLineWithoutConnectionOrContext() throws {
        let entry = try Self.entry("2026/11/25 14:24:05 [notice] 2600#2600: signal process started")
        #expect(entry.nginx?.connection == nil)
        #expect(entry.gatewayWords == "signal process started")
        #expect(entry.client == nil && entry.request == nil && entry.upstreamAttempts.isEmpty)
        // A message that quotes ", client: " before the real context.
        let tricky = try Self.entry(
            """
            2026/11/25 14:24:05 [error] 1#1: *9 upstream sent invalid header: "x, client: y" while reading response \
            header from upstream, client: 10.0.0.9, server: s, request: "GET /a"b HTTP/1.1", upstream: "http://[2001:db8::1]/a", \
            host: "h"
            """)
        #expect(
            tricky.gatewayWords
                == "upstream sent invalid header: \"x, client: y\" while reading response header from upstream")
        #expect(tricky.client?.description == "10.0.0.9")
        #expect(tricky.request?.target == "/a\"b")
        #expect(tricky.upstream?.description == "[2001:db8::1]:80", "no port: the scheme's")
    }

    @Test func nginxAccessKeyValue() throws {
        let entry = try Self.entry(
            """
            2001:db8::7:40001 [2026-11-25T19:54:05+05:30] msec=1795616645.120 "GET /a?b=1 HTTP/1.1" 200 \
            upstream_addr="10.77.2.2:9001, 10.77.2.2:9017 : unix:/run/app.sock" upstream_status="502, 200 : 200" \
            upstream_connect_time="-, 0.001 : 0.000" upstream_header_time="-, 0.002 : 0.001" \
            upstream_response_time="0.000, 0.002 : 0.003" request_time=0.010 request_id=abc extra_key="x y"
            """)
        #expect(entry.format == .nginxAccess)
        #expect(entry.client?.description == "[2001:db8::7]:40001")
        #expect(entry.status == 200)
        #expect(entry.request?.target == "/a?b=1")
        #expect(entry.requestID == "abc")
        #expect(entry.requestDuration == 10_000_000)
        #expect(entry.time?.instant?.nanoseconds == 1_795_616_645_120_000_000)
        #expect(entry.time?.utcOffsetSeconds == 19_800)
        let wallClock: Int64 = 1_795_616_645_120_000_000 + 19_800 * 1_000_000_000
        #expect(entry.time?.wallClock.nanoseconds == wallClock)
        #expect(entry.upstreamAttempts.map(\.address) == ["10.77.2.2:9001", "10.77.2.2:9017", "unix:/run/app.sock"])
        #expect(entry.upstreamAttempts.map(\.status) == [502, 200, 200])
        #expect(entry.upstreamAttempts.map(\.connectTime) == [nil, 1_000_000, 0])
        #expect(entry.upstreamAttempts.map(\.headerTime) == [nil, 2_000_000, 1_000_000])
        #expect(entry.upstreamAttempts.map(\.responseTime) == [0, 2_000_000, 3_000_000])
        #expect(entry.upstreamAttempts.map(\.redirectGroup) == [0, 0, 1])
        #expect(entry.upstreamAttempts[2].endpoint == nil)
        // Without $msec: the ISO time, second resolution, zone known.
        let plain = try Self.entry(
            #"10.0.0.1:1 [2026-11-25T14:24:05+00:00] "GET / HTTP/1.1" 504 upstream_addr="10.0.0.2:80" request_time=1.000"#
        )
        #expect(plain.time?.instant?.nanoseconds == Self.instant("2026-11-25T14:24:05Z"))
        #expect(plain.time?.resolution == 1_000_000_000)
        // The lab's older format: status first, request as a key.
        let lab = try Self.entry(
            #"502 upstream_addr="10.77.2.2:9001" upstream_status="502" upstream_connect_time="-" upstream_header_time="-" request_time=0.000 request="GET /refused/1 HTTP/1.1""#
        )
        #expect(lab.status == 502 && lab.request?.target == "/refused/1" && lab.time == nil)
    }

    @Test func nginxCombined() throws {
        let entry = try Self.entry(
            #"10.77.1.2 - alice [25/Nov/2026:14:24:05 -0800] "GET /c HTTP/1.1" 502 157 "-" "curl/7.88.1" "-""#)
        #expect(entry.format == .nginxCombined)
        #expect(entry.client?.description == "10.77.1.2")
        #expect(entry.status == 502)
        #expect(entry.bytesSent == 157)
        #expect(entry.time?.utcOffsetSeconds == -28_800)
        #expect(entry.time?.instant?.nanoseconds == Self.instant("2026-11-25T22:24:05Z"))
        #expect(entry.upstreamAttempts.isEmpty)
        #expect(entry.timeMeaning == .requestEnd)
        // A TLS ClientHello sent to a plain port: nginx logs the escaped bytes as the request.
        let junk = try Self.entry(
            #"10.0.0.1 - - [25/Nov/2026:14:24:05 +0000] "\x16\x03\x01\x02\x00\x01" 400 157 "-" "-""#)
        #expect(junk.status == 400 && junk.request == nil)
    }

    @Test func haproxyLines() throws {
        let lab = try Self.entry(
            """
            10.77.1.2:37596 [01/Dec/2026:22:24:07.128] fe-haproxy-refused be-haproxy-refused/s1 0/0/-1/-1/3005 503 217 \
            SC-- 1/1/0/0/3 10.77.2.1:59214 "GET /haproxy-refused/1 HTTP/1.1"
            """)
        #expect(lab.haproxy?.connectTime == nil && lab.haproxy?.responseTime == nil)
        #expect(lab.haproxy?.totalTime == 3005 && lab.requestDuration == 3_005_000_000)
        #expect(lab.haproxy?.retries == 3 && lab.haproxy?.redispatched == false)
        #expect(lab.backendSource?.description == "10.77.2.1:59214")
        #expect(lab.upstreamAttempts.isEmpty, "the server's address is not in this format")
        #expect(GatewayVocabulary.candidates(for: lab).first == "connection_refused")
        // option httplog with an RFC 5424 header, captures with spaces, a redispatch and %si:%sp.
        let full = try Self.entry(
            """
            <134>1 2026-11-25T14:24:05.123+01:00 lb1 haproxy 2601 - - 192.0.2.1:5000 [25/Nov/2026:14:24:05.123] \
            www~ app/web2 10/0/30/-1/1040 504 194 - - sH-- 3/2/1/0/+1 0/0 10.0.0.1:41000 10.0.0.3:8080 \
            {host.example|Mozilla/5.0 (X11)} {} "GET /slow?q=1 HTTP/1.1"
            """)
        #expect(full.haproxy?.frontend == "www~" && full.haproxy?.backend == "app" && full.haproxy?.server == "web2")
        #expect(full.haproxy?.requestTime == 10 && full.haproxy?.connectTime == 30 && full.haproxy?.responseTime == nil)
        #expect(full.haproxy?.retries == 1 && full.haproxy?.redispatched == true)
        #expect(full.haproxy?.serverQueue == 0 && full.haproxy?.backendQueue == 0)
        #expect(full.haproxy?.captures == ["host.example|Mozilla/5.0 (X11)", ""])
        #expect(full.backendSource?.description == "10.0.0.1:41000")
        #expect(full.upstream?.description == "10.0.0.3:8080")
        #expect(full.status == 504 && full.gatewayWords == "sH--")
        #expect(full.client?.description == "192.0.2.1:5000")
        #expect(full.time?.isZoneKnown == false, "%tr has no zone, whatever the syslog header says")
        // option tcplog.
        let tcp = try Self.entry(
            "10.0.0.1:5000 [25/Nov/2026:14:24:05.123] fe-tcp be-tcp/s1 0/-1/2001 0 sC 1/1/0/0/3 0/0")
        #expect(tcp.status == nil && tcp.haproxy?.terminationState == "sC" && tcp.haproxy?.connectTime == nil)
        #expect(GatewayVocabulary.candidates(for: tcp).first == "connection_timeout")
        // Own messages are no requests.
        #expect(GatewayLogParser.parse(line: "[WARNING]  (1) : Server be/s1 is DOWN") == .ignored)
        #expect(
            GatewayLogParser.parse(line: "<129>Nov 25 14:24:05 haproxy[1]: [ALERT] (1) : sendmsg()/writev() failed")
                == .ignored)
    }

    /// Envoy's documentation examples (usage.rst "Example of the default Envoy access log format";
    /// Istio's access-log task, "sleep" and "httpbin" lines). Envoy was not run here.
    @Test func envoyDocumentationExamples() throws {
        let envoy = try Self.entry(
            """
            [2016-04-15T20:17:00.310Z] "POST /api/v1/locations HTTP/2" 204 - 154 0 226 100 "10.0.35.28" "nsq2http" \
            "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2" "locations" "tcp://10.0.2.1:80"
            """)
        #expect(envoy.format == .envoyText)
        #expect(envoy.time?.utcOffsetSeconds == 0 && envoy.time?.resolution == 1_000_000)
        #expect(envoy.time?.instant?.nanoseconds == Self.instant("2016-04-15T20:17:00Z") + 310_000_000)
        #expect(envoy.request == GatewayRequestLine(method: "POST", target: "/api/v1/locations", version: "HTTP/2"))
        #expect(envoy.status == 204)
        #expect(envoy.envoy?.responseFlags == [])
        #expect(envoy.envoy?.bytesReceived == 154 && envoy.bytesSent == 0)
        #expect(envoy.requestDuration == 226_000_000 && envoy.envoy?.upstreamServiceTime == 100_000_000)
        #expect(envoy.envoy?.forwardedFor == "10.0.35.28" && envoy.envoy?.userAgent == "nsq2http")
        #expect(envoy.requestID == "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2")
        #expect(envoy.host == "locations")
        #expect(envoy.upstream?.description == "10.0.2.1:80")
        #expect(envoy.timeMeaning == .requestStart)

        let sleep = try Self.entry(
            """
            [2020-11-25T21:26:18.409Z] "GET /status/418 HTTP/1.1" 418 - via_upstream - "-" 0 135 4 4 "-" \
            "curl/7.73.0-DEV" "84961386-6d84-929d-98bd-c5aee93b5c88" "httpbin:8000" "10.44.1.27:80" \
            outbound|8000||httpbin.foo.svc.cluster.local 10.44.1.23:37652 10.0.45.184:8000 10.44.1.23:46520 - default
            """)
        #expect(sleep.status == 418)
        #expect(sleep.envoy?.responseCodeDetails == "via_upstream")
        #expect(sleep.envoy?.connectionTerminationDetails == nil && sleep.envoy?.upstreamTransportFailureReason == nil)
        #expect(sleep.upstream?.description == "10.44.1.27:80")
        #expect(sleep.envoy?.upstreamCluster == "outbound|8000||httpbin.foo.svc.cluster.local")
        #expect(sleep.backendSource?.description == "10.44.1.23:37652")
        #expect(sleep.envoy?.downstreamLocal?.description == "10.0.45.184:8000")
        #expect(sleep.client?.description == "10.44.1.23:46520")
        #expect(sleep.envoy?.requestedServerName == nil && sleep.envoy?.routeName == "default")
        #expect(GatewayVocabulary.candidates(for: sleep).isEmpty)

        let httpbin = try Self.entry(
            """
            [2020-11-25T21:26:18.409Z] "GET /status/418 HTTP/1.1" 418 - via_upstream - "-" 0 135 3 1 "-" \
            "curl/7.73.0-DEV" "84961386-6d84-929d-98bd-c5aee93b5c88" "httpbin:8000" "127.0.0.1:80" inbound|8000|| \
            127.0.0.1:41854 10.44.1.27:80 10.44.1.23:37652 outbound_.8000_._.httpbin.foo.svc.cluster.local default
            """)
        #expect(httpbin.backendSource?.description == "127.0.0.1:41854")
        #expect(httpbin.client?.description == "10.44.1.23:37652", "the sleep side's upstream local address")
        #expect(httpbin.envoy?.requestedServerName == "outbound_.8000_._.httpbin.foo.svc.cluster.local")
    }

    /// The Istio JSON keys (istio.io access-log task / mesh config) with failure values from
    /// Envoy's flag list (usage.rst %RESPONSE_FLAGS%).
    @Test func envoyJSON() throws {
        let entry = try Self.entry(
            """
            {"start_time":"2020-11-25T21:26:18.409Z","method":"GET","path":"/status/418","protocol":"HTTP/1.1",\
            "response_code":503,"response_flags":"UF,URX","response_code_details":"upstream_reset_before_response_started{connection_failure}",\
            "connection_termination_details":null,"upstream_transport_failure_reason":"delayed connect error: 111",\
            "bytes_received":0,"bytes_sent":91,"duration":30004,"upstream_service_time":null,"x_forwarded_for":null,\
            "user_agent":"curl/7.73.0-DEV","request_id":"84961386-6d84-929d-98bd-c5aee93b5c88","authority":"httpbin:8000",\
            "upstream_host":"10.44.1.27:80","upstream_cluster":"outbound|8000||httpbin.foo.svc.cluster.local",\
            "upstream_local_address":"-","downstream_local_address":"10.0.45.184:8000",\
            "downstream_remote_address":"10.44.1.23:46520","requested_server_name":null,"route_name":"default",\
            "nested":{"a":[1,{"b":"}"}]}}
            """)
        #expect(entry.format == .envoyJSON)
        #expect(entry.status == 503)
        #expect(entry.envoy?.responseFlags == ["UF", "URX"])
        #expect(entry.gatewayWords == "UF,URX")
        #expect(entry.envoy?.upstreamTransportFailureReason == "delayed connect error: 111")
        #expect(entry.requestID == "84961386-6d84-929d-98bd-c5aee93b5c88")
        #expect(entry.upstream?.description == "10.44.1.27:80")
        #expect(entry.backendSource == nil, "\"-\" is unset")
        #expect(entry.client?.description == "10.44.1.23:46520")
        #expect(entry.requestDuration == 30_004_000_000)
        #expect(entry.request?.target == "/status/418")
        #expect(
            GatewayVocabulary.candidates(for: entry).prefix(3) == [
                "connection_refused", "connection_timeout", "destination_unavailable",
            ])
        // typed_json_format renders numbers; x_request_id is the other common key; epoch start time.
        let typed = try Self.entry(
            #"{"start_time":"1606339578.409","response_code":504,"response_flags":"UT","x_request_id":"r1","upstream_local_address":"10.44.1.23:37652"}"#
        )
        #expect(typed.time?.instant?.nanoseconds == 1_606_339_578_409_000_000)
        #expect(typed.requestID == "r1" && typed.backendSource?.description == "10.44.1.23:37652")
        #expect(GatewayVocabulary.candidates(for: typed) == ["response_timeout"])
        // Not an access line: JSON without a start time.
        #expect(
            GatewayLogParser.parse(line: #"{"level":"info","msg":"hello"}"#) == .bad(.malformed, format: .envoyJSON))
    }

    @Test(arguments: [
        ("10.0.0.1:80", "10.0.0.1:80"), ("[2001:db8::1]:443", "[2001:db8::1]:443"),
        ("2001:db8::1:443", "[2001:db8::1]:443"),
        ("::ffff:10.0.0.1:8080", "10.0.0.1:8080"), ("[fe80::1%eth0]:22", "[fe80::1]:22"),
        ("[1:2:3:4:5:6:7:8]:1", "[1:2:3:4:5:6:7:8]:1"),
    ])
    func endpoints(text: String, expected: String) {
        #expect(GatewayEndpoint(parsing: text)?.description == expected)
    }

    @Test(arguments: [
        "10.0.0.256:80", "10.0.0.1:65536", "10.0.0.1", "10.0.0:80", "host.example:80", "[::1]", "1::2::3:80",
        "[1:2:3:4:5:6:7:8:9]:1", "10.0.0.1:", "unix:/run/a.sock", "", "[::1]:-1",
    ])
    func notEndpoints(text: String) {
        #expect(GatewayEndpoint(parsing: text) == nil)
    }

    @Test func timeEdgeCases() throws {
        // 29 February of a leap year, the last second of a year; a bad date is a malformed line.
        let leap = try Self.entry("2028/02/29 23:59:59 [warn] 1#1: x")
        #expect(leap.time?.wallClock.nanoseconds == Self.instant("2028-02-29T23:59:59Z"))
        let newYear = try Self.entry("2026/12/31 23:59:59 [warn] 1#1: x")
        #expect(newYear.time?.wallClock.nanoseconds == Self.instant("2026-12-31T23:59:59Z"))
        #expect(GatewayLogParser.parse(line: "2026/13/01 00:00:00 [warn] 1#1: x") == .bad(.unrecognized, format: nil))
        #expect(
            GatewayLogParser.parse(line: "2026/11/25 14:24:05 [oops] 1#1: x") == .bad(.malformed, format: .nginxError))
        let nanos = try Self.entry(#"{"start_time":"2026-11-25T14:24:05.123456789-03:30","response_code":200}"#)
        #expect(nanos.time?.resolution == 1)
        #expect(nanos.time?.instant?.nanoseconds == Self.instant("2026-11-25T17:54:05Z") + 123_456_789)
        #expect(
            Timestamp(nanoseconds: try #require(nanos.time?.instant?.nanoseconds)).iso8601
                == "2026-11-25T17:54:05.123456789Z")
    }
}

enum TextAddressForTests {
    static let v6Loopback = IPAddress(high: 0, low: 1)
}
