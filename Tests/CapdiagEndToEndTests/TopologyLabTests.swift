import CapdiagDiagnosis
import CapdiagReport
import CapdiagTestSupport
import Foundation
import Testing

/// The topology lab (Captures/lab/topology/lab-topology.sh): nginx and HAProxy with their
/// upstream on 127.0.0.1 of the same host, captured on `lo` (everything 127.0.0.1) and with
/// `-i any` (client leg on a veth, upstream leg on lo); 24 concurrent clients; a retry on a
/// second upstream; a chain of two proxies with only the front's legs captured; the upstream
/// leg alone. Each label lists every failed client request with the upstream 4-tuple that
/// failed it, from the gateway's own log (HAProxy %bi:%bp, nginx $request_id seen upstream).
@Suite struct TopologyLab {
    struct Label: Decodable {
        struct Client: Decodable {
            var requests: Int
            var statuses: [String: Int]
        }
        struct Failed: Decodable {
            var client: String
            var status: String
            var upstream: String
            var upstreamLocal: String
        }
        var scenario: String
        var expectedCause: String
        var gateway: String
        var gatewayListen: String
        var client: Client
        var captures: [String: String]
        var failedRequests: [Failed]?
    }

    static let folder = Locations.captures.appending(path: "lab/topology")
    static let labels: [String] = {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter { $0.hasSuffix(".json") }.sorted()
    }()

    static func label(_ file: String) throws -> Label {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(Label.self, from: Data(contentsOf: folder.appending(path: file)))
    }

    static let expectedCode: [String: String] = [
        "connection_refused": "connection_refused", "connection_timeout": "connection_timeout",
        "tls_certificate_error": "tls_certificate_error", "upstream_reset_after_request": "upstream_reset_after_request",
        "keepalive_race": "keepalive_race", "response_timeout": "response_timeout", "upstream_is_gateway": "gateway_error_answer",
    ]

    @Test func theLabIsThere() {
        #expect(Self.labels.count >= 14)
    }

    @Test(arguments: labels)
    func rolesCauseImpactAndEveryJoinAreRight(file: String) throws {
        let label = try Self.label(file)
        let both = try #require(label.captures["both_legs"])
        let analysis = try analyze([Self.folder.appending(path: both).path])
        let diagnosis = try #require(analysis.summary.diagnosis)

        // Roles: the gateway listener is found, whatever the addresses, and is never an upstream.
        #expect(diagnosis.gateways.map(\.listener).contains(label.gatewayListen), "listeners \(diagnosis.gateways.map(\.listener))")
        #expect(!diagnosis.upstreams.contains { $0.upstream == label.gatewayListen }, "the gateway listed as an upstream")

        // Client impact first: it matches what the clients saw.
        let failedAtClient = label.client.statuses.filter { $0.key != "200" }.values.reduce(0, +)
        let impact = try #require(diagnosis.clientImpact.first { $0.listener == label.gatewayListen })
        #expect(impact.requests == label.client.requests)
        #expect(impact.failed == failedAtClient, "\(impact.sentence)")

        // The cause.
        let affected = diagnosis.upstreams.filter { !$0.causes.isEmpty }
        if label.expectedCause == "retried_ok" {
            #expect(diagnosis.clientFailures.isEmpty)
            let retried = try #require(affected.first)
            let inference = try #require(retried.inferences.first { $0.kind == "retried_without_client_impact" })
            #expect(inference.count == retried.failures, "\(inference.text)")
            return
        }
        let expected = try #require(Self.expectedCode[label.expectedCause])
        #expect(affected.first?.causes.first?.code == expected, "\(affected.map(\.conclusion))")

        // One attempt, one failure: every labelled failed request joins exactly its upstream 4-tuple.
        let flows = Dictionary(uniqueKeysWithValues: analysis.flows.map { ($0.id, $0) })
        let failures = try #require(label.failedRequests)
        #expect(failures.count == failedAtClient)
        for failed in failures {
            let joined = try #require(diagnosis.clientFailures.first { $0.client == failed.client }, "no join for \(failed.client)")
            let decisive = try #require(joined.upstreamAttempts.last, "\(joined.explanation)")
            let flow = try #require(flows[decisive.flow])
            #expect("\(flow.originator.address):\(flow.originator.port)" == failed.upstreamLocal, "\(failed.client): \(joined.explanation)")
            #expect("\(flow.responder.address):\(flow.responder.port)" == failed.upstream)
        }
        // Each attempt explains at most one client failure.
        let decisiveFlows = diagnosis.clientFailures.compactMap { $0.upstreamAttempts.last?.flow }
        #expect(Set(decisiveFlows).count == decisiveFlows.count)

        // The upstream leg alone still names the cause, and says no client leg was captured.
        if let upstreamOnly = label.captures["upstream_leg"] {
            let leg = try #require(try analyze([Self.folder.appending(path: upstreamOnly).path]).summary.diagnosis)
            #expect(leg.upstreams.first { !$0.causes.isEmpty }?.causes.first?.code == expected)
            #expect(leg.clientImpact.first?.listener == nil && leg.clientImpact.first?.upstreamFailures == failedAtClient)
        }
    }
}
