import CapdiagTestSupport
import Foundation
import Testing

/// HTTP/2 and gRPC upstreams on the lab's real captures (Captures/lab/http2: nghttpd, nginx
/// `grpc_pass` to Python grpcio, HAProxy `proto h2`): request, status, gRPC status, GOAWAY and
/// RST_STREAM counts per leg equal tshark's HTTP/2 dissector (stored in each label), each
/// scenario gets its cause, and no HTTP/1 verdict appears on an HTTP/2 connection.
@Suite struct HTTP2Diagnosis {
    static let directory = Locations.captures.appending(path: "lab/http2")
    static var labels: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { $0.hasSuffix(".json") }.sorted()
    }
    static let http1Codes: Set<String> = [
        "keepalive_race", "upstream_hung_up", "response_stalled", "response_cut_short", "invalid_response", "response_header_too_large",
        "response_timeout", "request_unanswered", "upstream_application_error", "upstream_idle_close",
    ]

    @Test(arguments: labels)
    func countsMatchTsharkAndTheCauseIsFound(label name: String) throws {
        let label = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: Self.directory.appending(path: name))) as? [String: Any])
        let capture = Self.directory.appending(path: name.replacingOccurrences(of: ".json", with: ".pcap")).path
        let run = try Locations.run(Locations.capdiagExecutable, ["-q", "-T", "jsonl", "-r", capture])
        #expect(run.status == 0)
        let records = run.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let flows = records.filter { $0["type"] as? String == "flow" }
        let summary = try #require(records.last)
        // Per leg (the responder's port), the HTTP/2 records summed.
        let tshark = try #require(label["tshark"] as? [String: [String: Any]])
        for (leg, expected) in tshark {
            let port = try #require(expected["port"] as? Int)
            let legFlows = flows.filter { ($0["responder"] as? [String: Any])?["port"] as? Int == port }
            let h2 = legFlows.compactMap { $0["http2"] as? [String: Any] }
            if (expected["requests"] as? Int ?? 0) == 0 && h2.isEmpty { continue }
            func sum(_ key: String) -> [String: Int] {
                h2.reduce(into: [:]) { total, record in
                    for (k, v) in record[key] as? [String: Int] ?? [:] { total[k, default: 0] += v }
                }
            }
            // An h2c upgrade's stream 1 is the HTTP/1.1 request that asked for it: capdiag counts
            // it as an HTTP/2 request, tshark's HTTP/2 dissector does not.
            let upgraded = h2.filter { $0["upgraded"] as? Bool == true }.count
            #expect(h2.reduce(0) { $0 + ($1["requests"] as? Int ?? 0) } == (expected["requests"] as? Int ?? 0) + upgraded, "\(name) \(leg): requests")
            #expect(sum("statuses") == (expected["statuses"] as? [String: Int] ?? [:]), "\(name) \(leg): statuses")
            #expect(sum("grpc_statuses") == (expected["grpc_statuses"] as? [String: Int] ?? [:]), "\(name) \(leg): grpc statuses")
            let goAways = h2.reduce(0) { $0 + (($1["go_aways"] as? [Any])?.count ?? 0) }
            #expect(goAways == expected["goaways"] as? Int, "\(name) \(leg): GOAWAYs")
            // No HTTP/1 verdict on an HTTP/2 connection.
            for flow in legFlows where flow["application"] as? String == "http2" {
                let codes = ((flow["diagnosis"] as? [String: Any])?["findings"] as? [[String: Any]] ?? []).compactMap { $0["code"] as? String }
                #expect(Set(codes).isDisjoint(with: Self.http1Codes), "\(name): HTTP/1 verdict \(codes) on an HTTP/2 flow")
            }
        }
        // The cause, on the upstream leg.
        let expectedCause = try #require(label["expected_cause"] as? String)
        let upstreamPort = try #require(tshark["upstream"]?["port"] as? Int)
        let upstreams = ((summary["diagnosis"] as? [String: Any])?["upstreams"] as? [[String: Any]]) ?? []
        let causes = upstreams.filter { (($0["upstream"] as? [String: Any])?["port"] as? Int) == upstreamPort }
            .flatMap { ($0["causes"] as? [[String: Any]] ?? []).compactMap { $0["code"] as? String } }
        if expectedCause == "healthy" {
            #expect(causes.isEmpty, "\(name): healthy, but \(causes)")
        } else {
            #expect(causes.first == expectedCause, "\(name): \(causes), expected \(expectedCause)")
        }
    }

    /// What the gateway's HTTP/2 client saw — a 502, a gRPC UNAVAILABLE in trailers, a stream
    /// reset under it — is joined to the upstream stream behind it.
    @Test(arguments: [
        ("grpc-reset.pcap", 4, "stream_reset_by_upstream"), ("grpc-unavailable.pcap", 10, "grpc_unavailable"),
        ("grpc-killed-midstream.pcap", 3, "upstream_closed_with_streams_open"),
    ])
    func theClientsFailureIsJoinedToTheUpstreamStream(capture: String, count: Int, code: String) throws {
        let run = try Locations.run(Locations.capdiagExecutable, ["-q", "-T", "jsonl", "-r", Self.directory.appending(path: capture).path])
        let last = try #require(run.stdout.split(separator: "\n").last)
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
        let diagnosis = summary["diagnosis"] as? [String: Any]
        let failures = (diagnosis?["client_failures"] as? [[String: Any]]) ?? []
        #expect(failures.count == count, "\(capture): \(failures.count)")
        for failure in failures {
            let attempts = failure["upstream_attempts"] as? [[String: Any]] ?? []
            #expect(attempts.contains { $0["code"] as? String == code }, "\(capture): \(failure)")
        }
        let impact = (diagnosis?["client_impact"] as? [[String: Any]])?.first
        #expect(impact?["failed"] as? Int == count, "\(capture): \(String(describing: impact))")
    }

    /// The ticket report names the HTTP/2 cause and shows each flow's streams.
    @Test func theReportShowsStreamsAndTheCause() throws {
        let run = try Locations.run(
            Locations.capdiagExecutable, ["-q", "-r", Self.directory.appending(path: "grpc-unavailable.pcap").path, "--report", "-"])
        #expect(run.stdout.contains("`grpc_unavailable`"), "\(run.stdout.prefix(600))")
        #expect(run.stdout.contains("grpc-status 0 ×") && run.stdout.contains("14 ×"))
    }
}
