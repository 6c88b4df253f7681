import CapdiagDiagnosis
import CapdiagFlow
import CapdiagProtocols
import CapdiagWire
import Testing

/// Hand-built flow facts, as the rules see them: times in milliseconds from 0, frames numbered
/// in order. No packets, no parsing: each test states the wire events of one scenario.
struct FlowScenario {
    var facts: FlowFacts
    var frame = 0

    static let gateway = Endpoint(address: IPAddress(ipv4: 0x0A4D_0201), port: 40_000)
    static let upstream = Endpoint(address: IPAddress(ipv4: 0x0A4D_0202), port: 9000)

    init() {
        facts = FlowFacts(
            id: 1, originator: Self.gateway, responder: Self.upstream, first: PacketRef(frame: 1, time: .zero),
            last: PacketRef(frame: 1, time: .zero), connState: .sf)
    }

    mutating func packet(_ milliseconds: Double) -> PacketRef {
        frame += 1
        let packet = PacketRef(frame: frame, time: Timestamp(nanoseconds: Int64(milliseconds * 1e6)))
        if frame == 1 { facts.first = packet }
        facts.last = packet
        return packet
    }

    /// SYN, SYN-ACK, ACK at `start` with a 0.1 ms round trip.
    mutating func handshake(at start: Double = 0) {
        facts.syn = packet(start)
        facts.synAck = packet(start + 0.1)
        facts.handshakeAck = packet(start + 0.2)
        facts.handshakeRTT = 200_000
        facts.orig.packets += 2
        facts.resp.packets += 1
    }

    mutating func exchange(
        _ method: String = "GET", _ target: String = "/", at milliseconds: Double, answeredAfter: Double? = 1,
        status: Int = 200, idleBefore: Double? = nil
    ) {
        var exchange = HTTPExchange(index: facts.exchanges?.count ?? 0)
        let request = packet(milliseconds)
        exchange.requestFrame = request.frame
        exchange.requestStart = request.time
        exchange.requestComplete = request.time
        exchange.method = method
        exchange.target = target
        exchange.idleBefore = idleBefore.map { Int64($0 * 1e6) }
        facts.orig.payloadBytes += 100
        if let answeredAfter {
            let response = packet(milliseconds + answeredAfter)
            exchange.responseFrame = response.frame
            exchange.firstResponseByte = response.time
            exchange.responseHeadComplete = response.time
            exchange.responseComplete = response.time
            exchange.status = status
            facts.resp.payloadBytes += 100
        }
        facts.exchanges = (facts.exchanges ?? []) + [exchange]
        facts.exchangeCount += 1
    }

    mutating func upstreamCloses(_ milliseconds: Double, rst: Bool = false, withAck: Bool = true) {
        let mark = ControlMark(packet: packet(milliseconds), relativeSequence: 1, withAck: withAck)
        if rst { facts.resp.firstRST = mark; facts.resp.rstCount += 1 } else { facts.resp.firstFIN = mark; facts.resp.finCount += 1 }
    }

    mutating func gatewayCloses(_ milliseconds: Double, rst: Bool = false) {
        let mark = ControlMark(packet: packet(milliseconds), relativeSequence: 1)
        if rst { facts.orig.firstRST = mark; facts.orig.rstCount += 1 } else { facts.orig.firstFIN = mark; facts.orig.finCount += 1 }
    }

    func diagnose(_ options: DiagnosisOptions = DiagnosisOptions()) -> FlowDiagnosis { Diagnoser(options: options).diagnose(facts) }
    var codes: [String] { diagnose().findings.filter { $0.severity > .info }.map(\.code) }
}

@Suite struct ConnectionVerdicts {
    @Test func synAnsweredByRSTIsARefusal() {
        var flow = FlowScenario()
        flow.facts.syn = flow.packet(0)
        flow.upstreamCloses(0.05, rst: true)
        flow.facts.connState = .rej
        let diagnosis = flow.diagnose()
        #expect(diagnosis.findings.map(\.code) == ["connection_refused"])
        #expect(diagnosis.scores.handshake == 100 && diagnosis.scores.reset == 0)
        #expect(diagnosis.findings.first?.proxyStatus == "connection_refused")
        #expect(diagnosis.findings.first?.evidence.map(\.packet.frame) == [1, 2])
    }

    @Test func unansweredSYNsWithBackoffAreAConnectTimeout() throws {
        var flow = FlowScenario()
        flow.facts.syn = flow.packet(0)
        flow.facts.synRetransmits = [flow.packet(1000), flow.packet(3000)]
        flow.facts.synRetransmitCount = 2
        flow.facts.connState = .s0
        flow.facts.end = .idleTimeout
        let finding = try #require(flow.diagnose().findings.first)
        #expect(finding.code == "connection_timeout" && finding.severity == .high)
        #expect(finding.measurements.synTimes == [0, 1_000_000_000, 3_000_000_000])
        #expect(finding.summary.contains("3 SYNs") && finding.summary.contains("1.000 s, 3.000 s"))
    }

    @Test func oneUnansweredSYNAtTheEndOfTheCaptureIsNotYetATimeout() {
        var flow = FlowScenario()
        flow.facts.syn = flow.packet(0)
        flow.facts.connState = .s0
        flow.facts.end = .endOfCapture
        #expect(flow.diagnose().findings.map(\.severity) == [.low])
    }

    @Test func aHandshakePendingPastTheConnectTimeoutIsATimeout() {
        var flow = FlowScenario()
        flow.handshake()
        var tls = TLSFacts()
        tls.clientHello = flow.packet(1)
        flow.facts.tls = tls
        _ = flow.packet(5_000)
        #expect(flow.diagnose().findings.map(\.code) == ["tls_handshake_unfinished"])
        var short = DiagnosisOptions()
        short.connectTimeout = 3_000_000_000
        #expect(flow.diagnose(short).findings.map(\.code) == ["tls_handshake_timeout"])
    }

    @Test func aSYNRetransmittedWithinMillisecondsIsNotATimeout() {
        var flow = FlowScenario()
        flow.facts.syn = flow.packet(0)
        flow.facts.synRetransmits = [flow.packet(1)]
        flow.facts.synRetransmitCount = 1
        flow.facts.connState = .s0
        flow.facts.end = .endOfCapture
        #expect(flow.diagnose().findings.map(\.severity) == [.low])
    }

    @Test func anUnusedConnectionClosedAfterSecondsIsAnIdleCloseNotAFailure() {
        var flow = FlowScenario()
        flow.handshake()
        flow.upstreamCloses(10_000)
        #expect(flow.diagnose().findings.map(\.code) == ["upstream_idle_close"])
        var quick = FlowScenario()
        quick.handshake()
        quick.upstreamCloses(1)
        #expect(quick.codes == ["upstream_closed_before_request"])
    }

    @Test func icmpAdministrativelyProhibitedIsDestinationUnavailable() throws {
        var flow = FlowScenario()
        flow.facts.syn = flow.packet(0)
        flow.facts.icmpError = ICMPMark(
            packet: flow.packet(0.1), version: 4, type: 3, code: 13, mtu: nil, reporter: IPAddress(ipv4: 0x0A4D_0301),
            aboutDirection: .originator)
        flow.facts.connState = .s0
        let finding = try #require(flow.diagnose().findings.first)
        #expect(finding.code == "destination_unavailable")
        #expect(finding.summary.contains("communication administratively prohibited (type 3, code 13)"))
        #expect(flow.codes == ["destination_unavailable"], "not also a connect timeout")
    }

    @Test func healthyExchangesScoreZero() {
        var flow = FlowScenario()
        flow.handshake()
        flow.exchange(at: 1)
        flow.exchange(at: 5, idleBefore: 3)
        flow.gatewayCloses(10)
        flow.upstreamCloses(10.1)
        let diagnosis = flow.diagnose()
        #expect(diagnosis.isHealthy && diagnosis.scores.maximum == 0)
        #expect(diagnosis.findings.isEmpty)
    }
}

@Suite struct ExchangeVerdicts {
    @Test func rstWithoutAckRightAfterAReusedRequestIsAKeepAliveRace() throws {
        var flow = FlowScenario()
        flow.handshake()
        flow.exchange(at: 1)
        flow.exchange("POST", "/orders", at: 1_069, answeredAfter: nil, idleBefore: 1_067)
        flow.upstreamCloses(1_069.05, rst: true, withAck: false)
        let finding = try #require(flow.diagnose().findings.first)
        #expect(finding.code == "keepalive_race" && finding.exchange == 1 && finding.method == "POST")
        #expect(finding.measurements.idleBefore == 1_067_000_000)
        #expect(finding.measurements.closeAfterRequest == 50_000)
        #expect(flow.codes == ["keepalive_race"], "the same exchange is not also an upstream reset")
    }

    @Test func finCrossingTheReusedRequestIsAKeepAliveRace() {
        var flow = FlowScenario()
        flow.handshake()
        flow.exchange(at: 1)
        flow.upstreamCloses(5_000)
        flow.exchange("POST", "/orders", at: 5_000.1, answeredAfter: nil, idleBefore: 4_999)
        #expect(flow.codes == ["keepalive_race"])
    }

    @Test func rstWithAckOnAReusedConnectionIsTheUpstreamResetting() {
        var flow = FlowScenario()
        flow.handshake()
        flow.exchange(at: 1)
        flow.exchange(at: 100, answeredAfter: nil, idleBefore: 98)
        flow.upstreamCloses(100.2, rst: true, withAck: true)
        #expect(flow.codes == ["upstream_reset_after_request"])
    }

    @Test func finAfterAFreshRequestIsAClosedWithoutAnswer() {
        var flow = FlowScenario()
        flow.handshake()
        flow.exchange(at: 1, answeredAfter: nil)
        flow.upstreamCloses(2)
        flow.gatewayCloses(2.1)
        #expect(flow.codes == ["upstream_closed_before_response"])
    }

    @Test func gatewayClosingAfterSilenceIsAResponseTimeout() throws {
        var flow = FlowScenario()
        flow.handshake()
        flow.exchange(at: 1, answeredAfter: nil)
        flow.gatewayCloses(1_001)
        let finding = try #require(flow.diagnose().findings.first)
        #expect(finding.code == "response_timeout" && finding.proxyStatus == "http_response_timeout")
        #expect(finding.measurements.waited == 1_000_000_000)
    }

    @Test func aLateAnswerAfterTheGatewayGaveUpIsStillATimeout() {
        var flow = FlowScenario()
        flow.handshake()
        flow.gatewayCloses(1_001)
        flow.exchange(at: 1, answeredAfter: 3_000)
        // The request came before the FIN: order the facts as the wire had them.
        flow.facts.exchanges?[0].requestStart = Timestamp(nanoseconds: 1_000_000)
        #expect(flow.codes == ["response_timeout"])
    }

    @Test func oversizedHeadersDroppedByTheGatewayAreHigh() {
        var flow = FlowScenario()
        flow.handshake()
        flow.exchange(at: 1)
        flow.facts.exchanges?[0].responseHeaderBytes = 12_073
        flow.gatewayCloses(2.5, rst: true)
        let findings = flow.diagnose().findings
        #expect(findings.map(\.code) == ["response_header_too_large"] && findings.first?.severity == .high)
        var bigger = DiagnosisOptions()
        bigger.maxHeaderSize = 16_384
        #expect(flow.diagnose(bigger).findings.isEmpty, "a gateway with a larger buffer accepts them")
    }

    @Test func aResponseStillArrivingWhenTheCaptureEndedIsNotCutShort() throws {
        var flow = FlowScenario()
        flow.handshake()
        flow.exchange(at: 1)
        flow.facts.exchanges?[0].responseComplete = nil
        flow.facts.exchanges?[0].declaredBodyBytes = 5000
        flow.facts.exchanges?[0].problem = HTTPProblem(code: "response_cut_short", detail: "cut short by the end of the capture")
        #expect(flow.diagnose().findings.map(\.code) == ["response_unfinished_at_capture_end"])
        flow.upstreamCloses(3)
        let finding = try #require(flow.diagnose().findings.first)
        #expect(finding.code == "response_cut_short" && finding.severity == .high)
    }

    @Test func unansweredRequestWhoseAnswerTheCaptureLostIsNotAFailure() {
        var flow = FlowScenario()
        flow.handshake()
        flow.exchange(at: 1, answeredAfter: nil)
        flow.upstreamCloses(10_000)
        flow.facts.resp.ackedUnseenBytes = 4_000
        #expect(!flow.codes.contains("upstream_closed_before_response"))
        #expect(flow.diagnose().findings.contains { $0.code == "capture_loss" })
    }

    @Test func upstream5xxIsAnApplicationAnswerNotANetworkFault() {
        var flow = FlowScenario()
        flow.handshake()
        flow.exchange(at: 1, status: 503)
        let diagnosis = flow.diagnose()
        #expect(diagnosis.findings.map(\.code) == ["upstream_application_error"])
        #expect(diagnosis.findings.first?.severity == .medium && diagnosis.scores.maximum == 0)
    }

    @Test func idleCloseIsInformationWithItsIdleTime() throws {
        var flow = FlowScenario()
        flow.handshake()
        flow.exchange(at: 1)
        flow.upstreamCloses(5_002)
        let finding = try #require(flow.diagnose().findings.first)
        #expect(finding.code == "upstream_idle_close" && finding.severity == .info)
        #expect(finding.measurements.idleBefore == 5_000_000_000)
        #expect(flow.diagnose().isHealthy)
    }
}

@Suite struct CrossFlowInference {
    /// Connections to one upstream where every idle connection is closed after 5 s, and two
    /// reuses after more than that hit the race.
    @Test func keepAliveTimeoutIsInferredAndTheFixNamesIt() throws {
        var collector = DiagnosisCollector(options: DiagnosisOptions())
        for index in 0..<6 {
            var flow = FlowScenario()
            flow.facts.id = index
            flow.facts.originator.port = UInt16(40_000 + index)
            flow.handshake(at: Double(index) * 10_000)
            flow.exchange(at: Double(index) * 10_000 + 1)
            if index < 4 {
                flow.upstreamCloses(Double(index) * 10_000 + 5_002)
            } else {
                flow.exchange("POST", "/x", at: Double(index) * 10_000 + 5_100, answeredAfter: nil, idleBefore: 5_098)
                flow.upstreamCloses(Double(index) * 10_000 + 5_100.05, rst: true, withAck: false)
            }
            collector.add(flow.facts, flow.diagnose())
        }
        let conclusions = collector.conclude()
        let upstream = try #require(conclusions.upstreams.first)
        #expect(upstream.causes.map(\.code) == ["keepalive_race"] && upstream.causes.first?.count == 2)
        let keepalive = try #require(upstream.inferences.first { $0.kind == "upstream_keepalive_timeout" })
        #expect(keepalive.valueNs == 5_000_000_000 && keepalive.count == 4)
        #expect(upstream.causes.first?.fix.contains("below 5.000 s") == true)
        #expect(upstream.causes.first?.family == "gateway_configuration")
        #expect(conclusions.worstSeverity == "high")
    }

    @Test func clientSide502IsJoinedToTheUpstreamAttemptByRequest() throws {
        var collector = DiagnosisCollector(options: DiagnosisOptions())
        var client = FlowScenario()
        client.facts.originator = Endpoint(address: IPAddress(ipv4: 0x0A4D_0102), port: 50_000)
        client.facts.responder = Endpoint(address: IPAddress(ipv4: 0x0A4D_0101), port: 8000)
        client.handshake()
        client.exchange("POST", "/orders", at: 1, answeredAfter: 2, status: 502)
        var upstream = FlowScenario()
        upstream.facts.id = 2
        upstream.handshake(at: 1.2)
        upstream.exchange("POST", "/orders", at: 1.5, answeredAfter: nil)
        upstream.upstreamCloses(1.9, rst: true)
        collector.add(upstream.facts, upstream.diagnose())
        collector.add(client.facts, client.diagnose())
        let conclusions = collector.conclude()
        #expect(conclusions.gateways.map(\.listener) == ["10.77.1.1:8000"])
        #expect(conclusions.upstreams.map(\.upstream) == ["10.77.2.2:9000"])
        let failure = try #require(conclusions.clientFailures.first)
        #expect(failure.status == 502 && failure.upstreamAttempts.map(\.flow) == [2])
        #expect(failure.upstreamAttempts.first?.code == "upstream_reset_after_request")
        #expect(failure.upstreamAttempts.first?.matchedBy == "request_match")
        #expect(failure.explanation.contains("came from upstream 10.77.2.2:9000"))
    }

    @Test func patternsParseHostsAndPorts() {
        #expect(EndpointPattern("10.0.0.5:8080") == EndpointPattern("10.0.0.5:8080"))
        #expect(EndpointPattern("10.0.0.5")?.port == nil)
        #expect(EndpointPattern("[::1]:443")?.host == "::1" && EndpointPattern("[::1]:443")?.port == 443)
        #expect(EndpointPattern("10.0.0.5:http") == nil && EndpointPattern("") == nil)
    }

    @Test func patternsMatchRangesNamesAndIPv6() throws {
        func endpoint(_ text: String, _ port: UInt16) -> Endpoint {
            Endpoint(address: EndpointPattern.parseAddress(text) ?? IPAddress(high: 0, low: 0), port: port)
        }
        func matches(_ pattern: String, _ address: String, _ port: UInt16) -> Bool {
            EndpointPattern(pattern)?.matches(endpoint(address, port)) ?? false
        }
        #expect(matches("10.77.0.0/16", "10.77.2.2", 9012) && !matches("10.77.0.0/16", "10.78.0.1", 9012))
        #expect(matches("10.77.0.0/16:9012", "10.77.200.1", 9012) && !matches("10.77.0.0/16:9012", "10.77.2.2", 80))
        #expect(matches("[2001:db8::/32]:443", "2001:db8:1::5", 443) && !matches("[2001:db8::/32]:443", "2001:db9::5", 443))
        #expect(matches("2001:db8::1", "2001:db8::1", 1))
        // An IPv4 range never takes an IPv6 address that happens to share its low bits.
        #expect(!matches("0.0.0.0/0", "::1", 1) && matches("0.0.0.0/0", "192.0.2.1", 1))
        #expect(EndpointPattern("10.0.0.0/33") == nil && EndpointPattern("10.0.0.0/x") == nil && EndpointPattern("a b") == nil)
        let named = EndpointPattern("backend.test:8080", resolve: { _ in [EndpointPattern.parseAddress("10.9.9.9")].compactMap { $0 } })
        #expect(named?.matches(endpoint("10.9.9.9", 8080)) == true && named?.matches(endpoint("10.9.9.8", 8080)) == false)
        #expect(EndpointPattern("unknown.test", resolve: { _ in [] }) == nil)
    }
}
