import CapdiagDiagnosis
import CapdiagReport
import CapdiagTestSupport
import Foundation
import Testing

/// The rules of evidence, each on real captures: the lab's recordings (Captures/lab), small
/// loopback recordings (Captures/), and the public corpus where it holds the case.
@Suite struct Precision {
    static func lab(_ name: String) -> String { Locations.capture("lab/\(name)") }

    static func corpus(_ name: String) -> String? {
        Locations.publicCorpus.map { $0.appending(path: name).path }
    }

    static func findings(_ flows: [FlowRecord]) -> [FindingRecord] { flows.flatMap { $0.diagnosis?.findings ?? [] } }

    static func serious(_ flows: [FlowRecord]) -> [String] {
        findings(flows).filter { $0.severity == "medium" || $0.severity == "high" }.map(\.code)
    }

    // 1. Whose turn it was (TLS).

    /// Browsers' spare connections: the handshake completes (or the server's whole flight
    /// arrives) and the client leaves without a request. At most info, never a verdict.
    @Test(arguments: ["tls-spare-connections.any.pcap", "tls13-spare-connections.any.pcap"])
    func spareTLSConnectionsAreInfoAtMost(file: String) throws {
        let flows = try analyze([Self.lab(file)]).flows
        let tls = flows.filter { $0.tls != nil }
        #expect(tls.count >= 7)
        #expect(Self.findings(tls).allSatisfy { $0.severity == "info" }, "\(Self.findings(tls).map { "\($0.code)/\($0.severity)" })")
        let codes = Set(Self.findings(tls).map(\.code))
        #expect(codes.contains("tls_handshake_abandoned"), "the client left when it owed the next message")
    }

    /// TLS 1.3 behind nginx `proxy_ssl_verify on`: handshake, one short encrypted record, close.
    @Test(arguments: ["tls13-untrusted.upstream.pcap", "tls13-name-mismatch.upstream.pcap"])
    func tls13CertificateRejectionIsNamed(file: String) throws {
        let flows = try analyze([Self.lab(file)]).flows
        let rejected = flows.filter { Self.findings([$0]).contains { $0.code == "tls_certificate_error" && $0.severity == "high" } }
        #expect(rejected.count == 2)
        #expect(rejected.allSatisfy { $0.tls?.version == "TLS 1.3" || $0.tls?.version?.contains("1.3") == true })
    }

    /// Test clients closing a completed TLS 1.2 handshake a second later are not rejections.
    @Test func lateEncryptedAlertIsAnUnusedConnection() throws {
        guard let path = Self.corpus("tls/zeek__tls__missing-intermediate.pcap") else { return }
        let flows = try analyze([path]).flows
        #expect(Self.serious(flows).isEmpty)
        #expect(Self.findings(flows).filter { $0.code == "tls_connection_unused" }.count == 3)
    }

    /// A warning-level alert (unrecognized_name) inside a handshake that completes is no rejection.
    @Test func warningAlertIsNoRejection() throws {
        guard let path = Self.corpus("tls/zeek__tls__tls-early-alert.pcap") else { return }
        #expect(Self.serious(try analyze([path]).flows).isEmpty)
    }

    // 2. Who closed first.

    @Test(arguments: [
        "http-tcp/zeek__tcp__fin_retransmission.pcap", "robustness/tcpdump__tfo-5c1fa7f9ae91.pcap",
        "http-tcp/zeek__http__261__variant-04-te_cl_desync.pcap", "robustness/suricata__firewall-tcp-session-ipv6-decode-malformed.pcap",
    ])
    func theClientsOwnCloseIsNotTheUpstreams(file: String) throws {
        guard let path = Self.corpus(file) else { return }
        let codes = Self.serious(try analyze([path]).flows)
        #expect(!codes.contains { $0.hasPrefix("upstream_") || $0 == "request_unanswered" }, "\(codes)")
    }

    // 3. Tunnels.

    /// CONNECT through tinyproxy: TLS and plain HTTP inside, counted, never parsed as HTTP/1.
    @Test func connectTunnelsAreNotHTTP() throws {
        let flows = try analyze([Self.lab("connect-tunnel.any.pcap")]).flows
        let tunnels = flows.filter { $0.http?.tunnelled == true }
        #expect(tunnels.count == 4)
        #expect(tunnels.filter { $0.http?.tunnelCarries == "tls" }.count == 2)
        for tunnel in tunnels {
            #expect(tunnel.http?.exchangeCount == 1, "only the CONNECT itself is an exchange")
            #expect((tunnel.http?.tunnelClientBytes ?? 0) > 0 && (tunnel.http?.tunnelServerBytes ?? 0) > 0)
        }
        #expect(Self.serious(flows).isEmpty, "\(Self.serious(flows))")
    }

    // 4. Stalls: measured from the upstream's last byte, the gateway's timeout named.

    @Test func stallMidResponseIsTheGatewaysReadTimeout() throws {
        let flows = try analyze([Self.lab("stall-mid-response.upstream.pcap")]).flows
        let stalls = Self.findings(flows).filter { $0.code == "response_stalled" }
        #expect(stalls.count == 2 && stalls.allSatisfy { $0.severity == "high" })
        for stall in stalls {
            // lab.sh: proxy_read_timeout 1s.
            let silence = try #require(stall.measurements?.waitedNs)
            #expect(abs(silence - 1_000_000_000) < 50_000_000)
            #expect(!stall.summary.contains("capture ended"))
        }
    }

    /// Real nginx, proxy_read_timeout 1s, an upstream that answers after 1.5 s: the gateway's
    /// FIN at 1.000 s comes before the answer, which meets a closed socket (RST). A read
    /// timeout, not a response "still arriving when the capture ended" (the capture went on).
    @Test func lateAnswerAfterTheGatewaysFinIsAReadTimeout() throws {
        let flows = try analyze([Locations.capture("lo-gateway-late-answer.pcap")]).flows
        let found = Self.findings(flows).filter { $0.severity == "medium" || $0.severity == "high" }
        #expect(found.map(\.code) == ["response_timeout"], "\(found.map(\.code))")
        let waited = try #require(found.first?.measurements?.waitedNs)
        #expect(abs(waited - 1_000_000_000) < 10_000_000)
        #expect(!Self.findings(flows).contains { $0.code == "response_unfinished_at_capture_end" })
    }

    /// A busy gateway (Benchmarks/record-gateway.sh, small): nginx in front of a static upstream
    /// (prefix-stripping route, /static/f1 goes upstream as /f1) and an application upstream
    /// that resets every 25th request and answers every 60th too late, over kept-alive
    /// connections carrying far more requests than are kept in detail. The gateway is
    /// recognised and client impact counts every 502/504 the gateway sent, exactly as tshark
    /// counts them, not only those among the exchanges kept in detail.
    @Test func busyGatewayIsRecognisedAndEvery5xxCounted() throws {
        let capture = Locations.capture("lo-gateway-busy.pcap")
        let summary = try analyze([capture]).summary
        let diagnosis = try #require(summary.diagnosis)
        #expect(diagnosis.gateways.map(\.listener) == ["127.0.0.1:19100"], "\(diagnosis.gateways)")
        let impact = try #require(diagnosis.clientImpact.first)
        #expect(impact.listener == "127.0.0.1:19100")
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/tshark") else { return }
        let tshark = try Locations.run(
            URL(fileURLWithPath: "/usr/bin/tshark"),
            ["-n", "-r", capture, "-Y", "tcp.srcport == 19100 && http.response.code >= 500", "-T", "fields", "-e", "http.response.code"])
        var statuses: [String: Int] = [:]
        for status in tshark.stdout.split(separator: "\n") { statuses[String(status), default: 0] += 1 }
        #expect(statuses["502", default: 0] > 5 && statuses["504", default: 0] > 0, "the recording holds both: \(statuses)")
        #expect(impact.statuses == statuses, "capdiag \(impact.statuses), tshark \(statuses)")
        let requests = try Locations.run(URL(fileURLWithPath: "/usr/bin/tshark"), ["-n", "-r", capture, "-Y", "tcp.dstport == 19100 && http.request"])
        #expect(impact.requests == requests.stdout.split(separator: "\n").count)
        // Each cause the gateway's answers stand for is on the application upstream.
        let app = try #require(diagnosis.upstreams.first { $0.upstream == "127.0.0.1:19102" })
        #expect(Set(app.causes.map(\.code)) == ["upstream_reset_after_request", "response_timeout"])
        #expect(app.causes.first { $0.code == "upstream_reset_after_request" }?.count == statuses["502"])
        // The Prometheus counter says the same as the report, unsampled too.
        let metrics = FileManager.default.temporaryDirectory.appending(path: "capdiag-busy-\(UUID().uuidString).prom")
        defer { try? FileManager.default.removeItem(at: metrics) }
        _ = try Locations.run(Locations.capdiagExecutable, ["-q", "-r", capture, "--metrics-file", metrics.path])
        let exposition = try String(contentsOf: metrics, encoding: .utf8)
        #expect(exposition.contains("capdiag_client_failures_total{listener=\"127.0.0.1:19100\"} \(impact.failed)\n"), "\(exposition.split(separator: "\n").filter { $0.contains("client_failures") })")
    }

    /// Clients talking straight to many servers under load (the shared generator's synthetic
    /// capture, one leg only): unrelated clients send the same targets to other servers at the
    /// same moments, which is no gateway. A quarter of matches from other hosts once made three
    /// servers "gateways" here; only the listener's own address may count its requests that way.
    @Test func concurrentClientsOfManyServersAreNoGateway() throws {
        let generator = Locations.repositoryRoot.deletingLastPathComponent().appending(path: "shared/bench/gen_synth.py")
        guard FileManager.default.fileExists(atPath: generator.path) else { return }
        let synthetic = FileManager.default.temporaryDirectory.appending(path: "capdiag-synth-\(UUID().uuidString).pcap")
        defer { try? FileManager.default.removeItem(at: synthetic) }
        let made = try Locations.run(URL(fileURLWithPath: "/usr/bin/python3"), [generator.path, "-o", synthetic.path, "--size", "20M", "--seed", "1"])
        #expect(made.status == 0, "\(made.stderr)")
        let diagnosis = try #require(try analyze([synthetic.path]).summary.diagnosis)
        #expect(diagnosis.gateways.isEmpty, "\(diagnosis.gateways.map(\.listener))")
        #expect(diagnosis.clientImpact.first?.listener == nil)
    }

    // 5. Capture loss is not network loss.

    /// `-i any` over bridges: every frame twice. Copies are counted, never retransmissions.
    @Test func duplicateFramesAreNotRetransmissions() throws {
        let flows = try analyze([Self.lab("duplicates-any.any.pcap")]).flows
        #expect(!flows.isEmpty)
        for flow in flows {
            #expect(flow.orig.duplicateFrames + flow.resp.duplicateFrames > 0)
            #expect(flow.orig.retransmissions + flow.resp.retransmissions == 0)
            #expect(flow.handshake.synRetransmitCount == 0)
            #expect(flow.history.allSatisfy { $0 != "T" && $0 != "t" }, "history \(flow.history)")
        }
        #expect(Self.serious(flows).isEmpty)
        let reset = try analyze([Self.lab("duplicates-any-reset.any.pcap")])
        #expect(reset.summary.diagnosis?.upstreams.first { !$0.causes.isEmpty }?.causes.first?.code == "upstream_reset_after_request")
    }

    /// A gap in the capture does not shift every later request/response pair.
    @Test func pairingResynchronisesAfterAGap() throws {
        guard let path = Self.corpus("http-tcp/suricata__http-gap-simple.pcap") else { return }
        let flow = try #require(try analyze([path]).flows.first)
        let exchanges = try #require(flow.http?.exchanges)
        #expect(exchanges.map(\.target) == ["/1", "/2", "/3"])
        #expect(exchanges.allSatisfy { $0.status == 200 })
        #expect(Self.serious([flow]).isEmpty)
    }

    // 7. HTTP/2 is not broken HTTP/1.

    @Test func http2IsMarkedAndNeverJudgedAsHTTP1() throws {
        let prior = try analyze([Locations.capture("lo-h2c-prior-knowledge.pcap")]).flows
        #expect(prior.count == 2 && prior.allSatisfy { $0.application == "http2" })
        let upgrade = try analyze([Locations.capture("lo-h2c-upgrade.pcap")]).flows
        // Upgraded to h2c after the 101: parsed as HTTP/2 from there, the upgrade request as stream 1.
        #expect(upgrade.first?.application == "http2" && upgrade.first?.http2?.upgraded == true)
        #expect(upgrade.first?.http2?.requests == 2 && upgrade.first?.http2?.statuses == ["200": 2])
        let tls = try analyze([Locations.capture("lo-h2-tls.pcap")]).flows
        #expect(tls.first?.tls?.alpn == "h2")
        for flows in [prior, upgrade, tls] {
            #expect(Self.findings(flows).allSatisfy { $0.severity == "info" }, "\(Self.findings(flows).map(\.code))")
        }
    }
}
