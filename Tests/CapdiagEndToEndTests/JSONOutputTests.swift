import CapdiagReport
import CapdiagTestSupport
import Foundation
import Testing

/// The hand-written per-flow JSON must be exactly what Foundation's encoder gives (sorted keys,
/// snake_case, absent optionals left out), and must decode back to the same record.
@Suite struct FastJSON {
    static let captures =
        ["lo-refused.pcap", "lo-http-keepalive.pcap", "any-server-reset.pcap", "lo-http-hostile.pcap"].map(Locations.capture)
        // Every kind of verdict and measurement: the lab's failures, both legs.
        + ["syn-dropped", "keepalive-race", "slow-upstream", "cut-rst", "big-headers", "icmp-prohibited", "tls-untrusted"]
        .map { Locations.capture("lab/\($0).any.pcap") }
        + Locations.publicFiles("http-tcp").prefix(40)

    @Test(arguments: captures)
    func matchesJSONEncoderAndRoundTrips(path: String) throws {
        for record in try analyze([path]).flows {
            #expect(record.jsonLine == JSONOutput.line(record))
            let decoded = try JSONOutput.decoder().decode(FlowRecord.self, from: Data(record.jsonLine.utf8))
            #expect(decoded == record)
        }
    }
}
