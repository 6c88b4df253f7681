import CapdiagReport
import CapdiagTestSupport
import Foundation
import Testing

/// The captures recorded on loopback by Captures/record.sh.
@Suite struct SampleCaptures {
    @Test func refusedConnection() throws {
        let (flows, summary) = try analyze([Locations.capture("lo-refused.pcap")])
        #expect(summary.capture.packets.read == 2)
        let flow = try #require(flows.first)
        #expect(flows.count == 1)
        #expect(flow.connState == "REJ")
        #expect(flow.history == "Sr")
        #expect(flow.responder.port == 18081)
        #expect(flow.resp.firstRst?.frame == 2)
        #expect(flow.isFlagged)
    }

    @Test func keepAliveExchangeIsOneCleanConnection() throws {
        let (flows, summary) = try analyze([Locations.capture("lo-http-keepalive.pcap")])
        #expect(summary.capture.inputs.first?.linkTypeName.hasPrefix("EN10MB") == true)
        let flow = try #require(flows.first)
        #expect(flows.count == 1)
        #expect(flow.connState == "SF")
        #expect(flow.history == "ShADadFf")
        // Three requests of 95 bytes and three responses of 72 bytes on one connection.
        #expect(flow.orig.payloadBytes == 285)
        #expect(flow.resp.payloadBytes == 216)
        #expect(flow.orig.retransmissions + flow.resp.retransmissions == 0)
        #expect(flow.handshake.synAck != nil && flow.handshake.ack?.frame == 3)
        // Recorded with nanosecond precision: the timestamps keep nine digits.
        #expect(flow.start.hasSuffix("Z") && flow.start.count == "2026-11-25T13:03:18.591424000Z".count)
        #expect(!flow.isFlagged)
    }

    @Test func pcapngGivesTheSameFlowsAsPcap() throws {
        let pcap = try analyze([Locations.capture("lo-http-keepalive.pcap")]).flows
        let pcapng = try analyze([Locations.capture("lo-http-keepalive.pcapng")]).flows
        #expect(pcap == pcapng)
    }

    @Test func serverResetOnLinuxCookedV2() throws {
        let (flows, summary) = try analyze([Locations.capture("any-server-reset.pcap")])
        #expect(summary.capture.inputs.first?.linkTypeName.hasPrefix("LINUX_SLL2") == true)
        #expect(summary.capture.packets.skipped == 0)
        let flow = try #require(flows.first)
        #expect(flow.connState == "RSTR")
        #expect(flow.orig.payloadBytes == 65)
        #expect(flow.resp.rst == 1)
    }

    @Test func severalFilesAreMergedInTimeOrder() throws {
        let paths = ["any-server-reset.pcap", "lo-refused.pcap", "lo-http-keepalive.pcap"].map(Locations.capture)
        let (flows, summary) = try analyze(paths)
        #expect(summary.capture.packets.read == 24)
        #expect(flows.map(\.connState).sorted() == ["REJ", "RSTR", "SF"])
        // Frame numbers count over the merged input, in time order: the refusal came first.
        let refused = try #require(flows.first { $0.connState == "REJ" })
        #expect(refused.firstFrame == 1)
        let reset = try #require(flows.first { $0.connState == "RSTR" })
        #expect(reset.lastFrame == 24)
    }

    @Test func filterAndCountLimit() throws {
        let paths = ["lo-refused.pcap", "lo-http-keepalive.pcap"].map(Locations.capture)
        let filtered = try analyze(paths, filter: "tcp port 18082")
        #expect(filtered.flows.count == 1 && filtered.flows.first?.connState == "SF")
        let limited = try analyze(paths, limit: 3)
        #expect(limited.summary.capture.packets.read == 3)
        #expect(limited.summary.capture.inputs.contains { $0.stop == "packet_limit" })
    }

    @Test func everyCommittedCaptureHasAReadmeLine() throws {
        let readme = try String(contentsOf: Locations.captures.appending(path: "README.md"), encoding: .utf8)
        let files = try FileManager.default.contentsOfDirectory(atPath: Locations.captures.path)
            .filter { $0.hasSuffix(".pcap") || $0.hasSuffix(".pcapng") }
        #expect(files.count >= 4)
        for file in files { #expect(readme.contains(file), "Captures/README.md does not describe \(file)") }
    }
}
