import CapdiagEngine
import CapdiagFlow
import CapdiagReport
import CapdiagTestSupport
import Foundation
import Testing

/// capdiag's HTTP exchanges against tshark's HTTP dissector on every capture of the public
/// corpus's `http-tcp/`: per connection, the number of requests and the status codes of the
/// responses (interim 1xx included) must agree, except on the captures listed below, where
/// tshark and capdiag differ for the reason given. A listed capture that starts agreeing is
/// an error too, so the list cannot go stale.
@Suite(.enabled(if: Locations.publicCorpus != nil, "public corpus not found: set CAPDIAG_PUBLIC_CAPTURES"))
struct TsharkHTTPCrossCheck {
    static let knownDisagreements: [String: String] = [
        // tshark counts a response only once its whole PDU was reassembled in one pass; capdiag
        // reports the status of a response that is cut short, unacknowledged or incomplete at
        // the end of the capture (and marks the exchange with the problem).
        "arkime__no-syn-ack.pcap": "response incomplete: tshark shows no response",
        "chrissanders__latency1.pcapng": "response incomplete at the end of the capture",
        "suricata__http-evader-050.pcap": "tshark does not finish reassembling the response",
        "suricata__http-evader-489.pcap": "tshark does not finish reassembling the response",
        "suricata__http-evader-492.pcap": "tshark does not finish reassembling the response",
        "suricata__http-response-line.pcap": "tshark does not finish reassembling the response",
        "suricata__tcp-rst-unacked-stream-09__TLPW1-tcp-110.37.219.134-10.12.14.101-tcp-990-49230.pcap":
            "response cut by RST with unacknowledged data",
        "suricata__tcp-rst-unacked-stream-10__TLPW1-tcp-174.56.47.59-10.3.11.101-tcp-80-49309.pcap":
            "response cut by RST with unacknowledged data",
        // The status line ends in a bare CR (no CRLF): nginx 1.22 and HAProxy 2.6 both refuse
        // it (Captures/lab/framing-check.md case 2), so capdiag reads no status; tshark reads 200.
        "suricata__http-evader-399.pcap": "status line ended by a bare CR: refused, no status",
        // Capture loss inside a body of known length: capdiag counts the gap and carries on with
        // the next message; tshark drops the message with the gap.
        "suricata__http-gap-simple.pcap": "gap inside a Content-Length body",
        "suricata__http-pipeline-files-with-gap.pcap": "gap inside pipelined bodies",
        "suricata__http-range-file.pcap": "gap inside one 206 body",
        "ndpi__weibo.pcap": "gaps and out-of-order segments; capdiag resynchronises",
        "zeek__http__concurrent-range-requests.pcap": "gap inside the 206 body",
        "zeek__http__content-range-gap.pcap": "gap inside the 206 body",
        "zeek__http__entity_gap.pcap": "gap inside the body",
        "ndpi__http-manipulated.pcap": "a lost segment mid-response; tshark drops that response",
        // tshark counts retransmitted responses again.
        "arkime__wireshark-retrans.pcap": "tshark counts 6 responses to 4 requests (retransmissions)",
        // capdiag is strict where a gateway would reject the message (RFC 9112), tshark lenient.
        "chrissanders__weather_working.pcapng": "request line with version HTTP/1.0.8",
        "zeek__http__methods.pcap": "request lines without spaces or with truncated versions",
        "zeek__http__http-09-content-length-confusion.pcap": "HTTP/0.9 request line (no version)",
        "suricata__http-multiple-cl.pcap": "request with differing Content-Length values",
        "zeek__http__261__variant-02-cl_uint64max.pcap": "request Content-Length overflows",
        "zeek__http__261__variant-03-cl_negative.pcap": "negative request Content-Length",
        "zeek__http__261__variant-04-te_cl_desync.pcap": "request with both Transfer-Encoding and Content-Length",
        "zeek__http__261__variant-10-multi_value_te.pcap": "request Transfer-Encoding not ending in chunked",
        "suricata__http-evader-051.pcap": "evasive response framing rejected",
        "suricata__http-evader-250.pcap": "evasive response framing rejected",
        "suricata__http-evader-372.pcap": "evasive response framing rejected",
        "suricata__http-evader-391.pcap": "evasive response framing rejected",
        "suricata__http-evader-394.pcap": "evasive response framing rejected",
        "suricata__http-evader-467.pcap": "status code of one digit (tshark shows 2)",
        "suricata__http-evader-471.pcap": "evasive response framing rejected",
        "suricata__http-evader-472.pcap": "status code of two digits (tshark shows 20)",
        // Detection by content versus by port.
        "zeek__http__get-to-ssh-server.pcap": "HTTP request to an SSH server: capdiag parses it, tshark dissects SSH",
        "zeek__http__http-to-ssh.pcap": "HTTP request to an SSH server: capdiag parses it, tshark dissects SSH",
        "zeek__http__http-single-conn-22.pcap": "HTTP on port 22: capdiag detects it by content",
        "arkime__socks5-http-302-frag.pcap": "HTTP inside SOCKS5: tshark decodes the proxy protocol, capdiag does not",
        "suricata__tcp-urgp-01-oob__tcp-urgent1.pcap": "urgent data: tshark misses the request",
        // tshark marks a frame as HTTP continuation data with neither request nor response.
        "chrissanders__tcp_dupack.pcapng": "HTTP continuation frame only",
        "suricata__tcp-rst-unacked-stream-07-http.pcap": "HTTP continuation frame only",
        "zeek__tcp__payload-synack.pcap": "payload on a SYN-ACK: tshark sees HTTP continuation data",
    ]

    static let files = Locations.publicFiles("http-tcp")

    @Test(arguments: files)
    func requestsAndStatusCodesMatchTshark(path: String) throws {
        let name = URL(fileURLWithPath: path).lastPathComponent
        let tshark = URL(fileURLWithPath: "/usr/bin/tshark")
        try #require(FileManager.default.isExecutableFile(atPath: tshark.path), "tshark is not installed")
        let result = try Locations.run(tshark, [
            "-n", "-r", path, "-Y", "http", "-T", "fields", "-E", "separator=/t",
            "-e", "http.request.method", "-e", "http.response.code",
            "-e", "ip.src", "-e", "ipv6.src", "-e", "tcp.srcport", "-e", "ip.dst", "-e", "ipv6.dst", "-e", "tcp.dstport",
        ])
        var expected: [String: (requests: Int, statuses: [Int])] = [:]
        for line in result.stdout.split(separator: "\n") {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard f.count >= 8, !(f[2] + f[3]).contains(",") else { continue }
            let key = connectionKey(f[2].isEmpty ? f[3] : f[2], f[4], f[5].isEmpty ? f[6] : f[5], f[7])
            var entry = expected[key] ?? (0, [])
            entry.requests += f[0].split(separator: ",").count
            entry.statuses += f[1].split(separator: ",").compactMap { Int($0) }
            expected[key] = entry
        }
        var actual: [String: (requests: Int, statuses: [Int])] = [:]
        var options = AnalyzerOptions()
        options.flowTable.idleTimeout = Int64.max / 4  // tshark never splits a connection on idle time
        for flow in try analyze([path], options: options).flows {
            guard let http = flow.http else { continue }
            let key = connectionKey(flow.originator.address, "\(flow.originator.port)", flow.responder.address, "\(flow.responder.port)")
            var entry = actual[key] ?? (0, [])
            for exchange in http.exchanges {
                entry.requests += exchange.method == nil ? 0 : 1
                entry.statuses += exchange.interimStatuses + (exchange.status.map { [$0] } ?? [])
            }
            if entry.requests > 0 || !entry.statuses.isEmpty { actual[key] = entry }
        }
        let same =
            expected.count == actual.count
            && expected.allSatisfy { key, value in
                actual[key].map { $0.requests == value.requests && $0.statuses.sorted() == value.statuses.sorted() } ?? false
            }
        if let reason = Self.knownDisagreements[name] {
            #expect(!same, "\(name) now agrees with tshark; remove it from the list (\(reason))")
        } else {
            #expect(same, "\(name): tshark \(expected) capdiag \(actual)")
        }
    }

    @Test func mostCapturesAgree() {
        #expect(Self.files.count - Self.knownDisagreements.count >= 20)
    }

    func connectionKey(_ a: String, _ aPort: String, _ b: String, _ bPort: String) -> String {
        let first = "\(a.hasPrefix("::ffff:") ? String(a.dropFirst(7)) : a)|\(aPort)"
        let second = "\(b.hasPrefix("::ffff:") ? String(b.dropFirst(7)) : b)|\(bPort)"
        return [first, second].sorted().joined(separator: " ")
    }
}
