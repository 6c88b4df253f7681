import CapdiagProtocols
import CapdiagReport
import CapdiagTestSupport
import Testing

/// The HTTP scenario captures recorded by Captures/record-http.sh.
@Suite struct HTTPCaptures {
    func exchanges(_ name: String) throws -> [HTTPExchangeRecord] {
        let flows = try analyze([Locations.capture(name)]).flows
        #expect(flows.count == 1)
        let http = try #require(flows.first?.http, "\(name) was not recognised as HTTP")
        return http.exchanges
    }

    @Test func pipelinedRequestsArePairedInOrder() throws {
        let exchanges = try exchanges("lo-http-pipelining.pcap")
        #expect(exchanges.map(\.target) == ["/p1", "/p2", "/p3"])
        #expect(exchanges.map(\.status) == [200, 200, 200])
        #expect(exchanges.allSatisfy { $0.problem == nil && $0.requestFrame == exchanges[0].requestFrame })
        #expect(exchanges.map { $0.requestIds.first?.value } == ["rec-p1", "rec-p2", "rec-p3"])
    }

    @Test func chunkedResponseIsComplete() throws {
        let exchange = try #require(try exchanges("lo-http-chunked.pcap").first)
        #expect(exchange.chunked && exchange.deliveredBodyBytes == 27 && exchange.problem == nil)
    }

    @Test func responsesCutShortByFINAndRST() throws {
        let fin = try #require(try exchanges("lo-http-cut-fin.pcap").first)
        #expect(fin.problem?.code == "response_cut_short")
        #expect(fin.problem?.detail == "cut short by FIN, 900 declared body bytes missing")
        #expect(fin.declaredBodyBytes == 1000 && fin.deliveredBodyBytes == 100)
        let rst = try #require(try exchanges("lo-http-cut-rst.pcap").first)
        #expect(rst.problem?.detail == "cut short by RST, 900 declared body bytes missing")
    }

    @Test func invalidHeaderAndGarbage() throws {
        #expect(try exchanges("lo-http-invalid-header.pcap").first?.problem
            == HTTPProblem(code: "bad_header_line", detail: "header line 2: this line has no colon"))
        let garbage = try #require(try exchanges("lo-http-garbage.pcap").first?.problem)
        #expect(garbage.code == "not_http")
        #expect(garbage.detail.hasPrefix("binary data (00 01 02"))
    }

    @Test func bigHeaderSectionIsMeasured() throws {
        let exchange = try #require(try exchanges("lo-http-big-headers.pcap").first)
        #expect(exchange.status == 200 && exchange.problem == nil)
        #expect(exchange.responseHeaderBytes == 10_047)
    }
}

@Suite struct DNSCapture {
    @Test func rcodesUnansweredChangesAndTCP() throws {
        let (flows, summary) = try analyze([Locations.capture("lo-dns.pcap")])
        let dns = try #require(summary.dns)
        #expect(dns.queries == 6 && dns.responses == 5 && dns.unanswered == 1)
        #expect(dns.rcodes == ["NOERROR": 2, "NXDOMAIN": 1, "SERVFAIL": 1, "REFUSED": 1])
        #expect(dns.problems.map(\.name) == ["missing.test", "broken.test", "refused.test", "silent.test"])
        let change = try #require(dns.answerChanges.first)
        #expect(change.name == "good.test" && change.before == ["10.0.0.1"] && change.after == ["10.0.0.2"])
        let tcp = try #require(flows.first?.dns)
        #expect(tcp.queries == 1 && tcp.responses == 1 && tcp.unanswered == 0)
    }
}
