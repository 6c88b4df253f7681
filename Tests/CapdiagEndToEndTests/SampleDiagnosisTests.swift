import CapdiagDiagnosis
import CapdiagReport
import CapdiagTestSupport
import Foundation
import Testing

/// The diagnosis of every loopback sample in Captures/ (README table): the verdict named is
/// the one the capture was recorded to show, and the clean captures raise nothing.
@Suite struct SampleDiagnosis {
    static let expected: [String: String?] = [
        "lo-refused.pcap": "connection_refused",
        "any-server-reset.pcap": "upstream_reset_after_request",
        "lo-http-keepalive.pcap": nil,
        "lo-http-keepalive.pcapng": nil,
        "lo-http-pipelining.pcap": nil,
        "lo-http-chunked.pcap": nil,
        "lo-http-cut-fin.pcap": "response_cut_short",
        "lo-http-cut-rst.pcap": "response_cut_short",
        "lo-http-invalid-header.pcap": "invalid_response",
        "lo-http-garbage.pcap": "invalid_response",
        "lo-http-big-headers.pcap": "response_header_too_large",
        "lo-tls-unknown-ca.pcap": "tls_certificate_error",
        "lo-tls-to-plain-http.pcap": "protocol_mismatch",
        "lo-dns.pcap": nil,
        "lo-http-hostile.pcap": "invalid_response",
        "lo-dns-then-refused.pcap": "connection_refused",
        // HTTP/2 (prior knowledge, Upgrade: h2c, TLS with ALPN h2): healthy, never HTTP/1 verdicts.
        "lo-h2c-prior-knowledge.pcap": nil,
        "lo-h2c-upgrade.pcap": nil,
        "lo-h2-tls.pcap": nil,
        // A custom protocol the server closes after the client's line: no HTTP verdict, and
        // not "closed before any request" (the client did send data).
        "lo-custom-protocol-close.pcap": nil,
        // One SYN in five dropped once: every request answered, slower.
        "ns-syn-retransmits.pcap": nil,
        // Real nginx: a busy gateway whose application upstream resets and answers late, and
        // one upstream connection whose late answer came after the gateway's read timeout.
        "lo-gateway-busy.pcap": "upstream_reset_after_request",
        "lo-gateway-late-answer.pcap": "response_timeout",
    ]

    @Test func everySampleIsListed() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Locations.captures.path)
            .filter { $0.hasSuffix(".pcap") || $0.hasSuffix(".pcapng") }
        #expect(Set(files) == Set(Self.expected.keys))
    }

    @Test(arguments: expected.keys.sorted())
    func verdictMatchesWhatTheCaptureShows(file: String) throws {
        let analysis = try analyze([Locations.captures.appending(path: file).path])
        let diagnosis = try #require(analysis.summary.diagnosis)
        let causes = diagnosis.upstreams.flatMap(\.causes)
        if let code = Self.expected[file] ?? nil {
            #expect(causes.first?.code == code, "\(causes.map(\.code))")
            #expect(causes.first?.examples.isEmpty == false)
            #expect(diagnosis.worstSeverity == "high")
        } else {
            #expect(causes.isEmpty, "false alarm: \(causes.map(\.code))")
            if file == "ns-syn-retransmits.pcap" {
                // Nothing failed, but a quarter of the connections waited a second for their SYN:
                // low per flow, and the summary says it although there are no failures.
                #expect(diagnosis.worstSeverity == "low")
                #expect(diagnosis.handshakeNotes.first?.contains("5 of 20 connections (25%)") == true)
            } else {
                #expect(analysis.flows.allSatisfy { $0.diagnosis?.healthy == true })
            }
        }
    }

    @Test func dnsFailuresAreNamed() throws {
        let diagnosis = try #require(try analyze([Locations.captures.appending(path: "lo-dns.pcap").path]).summary.diagnosis)
        let failures = Dictionary(uniqueKeysWithValues: diagnosis.dnsFailures.map { ($0.name, $0.rcode) })
        #expect(failures == ["missing.test": "NXDOMAIN", "broken.test": "SERVFAIL", "refused.test": "REFUSED", "silent.test": "no_answer"])
    }

    @Test func failOnGivesExitStatusOneAndTextLeadsWithTheDiagnosis() throws {
        let refused = Locations.captures.appending(path: "lo-refused.pcap").path
        let failing = try Locations.run(Locations.capdiagExecutable, ["-q", "--fail-on", "high", "-r", refused])
        #expect(failing.status == 1)
        #expect(failing.stdout.hasPrefix("Diagnosis\n"))
        #expect(failing.stdout.contains("connection_refused [high, upstream_health, Proxy-Status connection_refused]"))
        #expect(failing.stdout.contains("=> connection_refused [high]"))
        let clean = try Locations.run(
            Locations.capdiagExecutable, ["-q", "--fail-on", "medium", "-r", Locations.captures.appending(path: "lo-http-keepalive.pcap").path])
        #expect(clean.status == 0)
        let bad = try Locations.run(Locations.capdiagExecutable, ["-q", "--fail-on", "urgent", "-r", refused])
        #expect(bad.status == 64 && bad.stderr.contains("--fail-on takes info, low, medium or high"))
    }

    @Test func thresholdsChangeVerdictsAndAreStated() throws {
        let big = Locations.captures.appending(path: "lo-http-big-headers.pcap").path
        let roomy = try Locations.run(Locations.capdiagExecutable, ["-q", "--max-header-size", "65536", "-T", "json", "-r", big])
        let summary = try JSONOutput.decoder().decode(Document.self, from: Data(roomy.stdout.utf8)).summary
        #expect(summary.diagnosis?.thresholds.maxHeaderSize == 65_536)
        #expect(summary.diagnosis?.upstreams.flatMap(\.causes).isEmpty == true)
    }

    @Test func overridesNameTheUpstream() throws {
        let path = Locations.captures.appending(path: "lab/refused.any.pcap").path
        let named = try Locations.run(Locations.capdiagExecutable, ["-q", "--upstream", "10.77.2.2:9001", "-T", "json", "-r", path])
        let diagnosis = try #require(try JSONOutput.decoder().decode(Document.self, from: Data(named.stdout.utf8)).summary.diagnosis)
        #expect(diagnosis.upstreams.map(\.upstream) == ["10.77.2.2:9001"])
        let other = try Locations.run(Locations.capdiagExecutable, ["-q", "--gateway", "10.77.1.1:8001", "-T", "json", "-r", path])
        let withGateway = try #require(try JSONOutput.decoder().decode(Document.self, from: Data(other.stdout.utf8)).summary.diagnosis)
        #expect(withGateway.gateways.map(\.how) == ["override"])
        #expect(withGateway.clientFailures.count == 3)
    }

    struct Document: Decodable {
        var schema: String
        var flows: [FlowRecord]
        var summary: SummaryRecord
    }
}
