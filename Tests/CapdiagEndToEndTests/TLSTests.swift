import CapdiagCapture
import CapdiagProtocols
import CapdiagReport
import CapdiagTestSupport
import CapdiagWire
import Foundation
import Testing

/// The TCP payloads of one capture, in capture order, with the side that sent them (the
/// sender of the first SYN is the client). The loopback captures have no loss or reordering.
func payloads(of path: String) throws -> [(side: StreamSide, bytes: [UInt8])] {
    let reader = try OfflineReader(paths: [path], filter: nil)
    var result: [(StreamSide, [UInt8])] = []
    var clientPort: UInt16?
    reader.read { _, linkType, bytes in
        guard let packet = try? PacketDecoder.decode(bytes, linkType: linkType), case .tcp(let tcp) = packet.transport
        else { return true }
        if clientPort == nil && tcp.flags == [.syn] { clientPort = tcp.sourcePort }
        guard packet.capturedPayloadLength > 0 else { return true }
        let payload = (0..<packet.capturedPayloadLength).map {
            bytes.unsafeLoad(fromByteOffset: packet.payloadOffset + $0, as: UInt8.self)
        }
        result.append((tcp.sourcePort == clientPort ? .client : .server, payload))
        return true
    }
    return result
}

@Suite struct TLSHandshakes {
    /// Real records from the capture, fed whole, byte by byte and at every split point of each
    /// segment: the same hellos, alerts and verdicts.
    @Test(arguments: ["lo-tls-unknown-ca.pcap", "lo-tls-to-plain-http.pcap"])
    func sameResultWhateverTheSplit(capture: String) throws {
        let segments = try payloads(of: Locations.capture(capture))
        let packet = PacketRef(frame: 1, time: Timestamp(nanoseconds: 0))
        func run(_ split: ([UInt8]) -> [[UInt8]]) -> TLSConnection {
            var connection = TLSConnection()
            for (side, bytes) in segments {
                for piece in split(bytes) { connection.received(piece.span.bytes, from: side, packet: packet) }
            }
            return connection
        }
        func summary(_ c: TLSConnection) -> String {
            "\(String(describing: c.clientHello)) \(String(describing: c.serverHello)) \(c.alerts) \(c.handshakeCompleted) "
                + "\(String(describing: c.plaintextHTTPReply)) \(String(describing: c.serverViolation))"
        }
        let whole = summary(run { [$0] })
        #expect(summary(run { $0.map { [$0] } }) == whole)
        let longest = segments.map(\.bytes.count).max() ?? 0
        for cut in 1..<longest {
            let split = summary(run { $0.count > cut ? [Array($0[..<cut]), Array($0[cut...])] : [$0] })
            if split != whole {
                Issue.record("split at \(cut) differs")
                break
            }
        }
    }

    @Test func clientRejectsTheCertificateWithAPlaintextAlert() throws {
        let flow = try #require(try analyze([Locations.capture("lo-tls-unknown-ca.pcap")]).flows.first)
        let tls = try #require(flow.tls)
        #expect(tls.serverName == "upstream.test")
        #expect(tls.version == "TLS 1.2")
        #expect(!tls.handshakeCompleted)
        let alert = try #require(tls.alerts.first)
        #expect(alert.side == "client" && !alert.encrypted && alert.level == 2)
        #expect(alert.description == "unknown_ca" && alert.descriptionCode == 48)
        #expect(flow.isFlagged)
    }

    @Test func plainHTTPAnsweredToAClientHello() throws {
        let flow = try #require(try analyze([Locations.capture("lo-tls-to-plain-http.pcap")]).flows.first)
        let tls = try #require(flow.tls)
        #expect(tls.offeredVersions.contains("TLS 1.3"))
        #expect(tls.plaintextHttpReply?.frame == 6)
        #expect(!tls.handshakeCompleted)
    }
}

/// Plaintext TLS alerts on every capture of the corpus's `tls/` folder: per connection, the
/// same alert descriptions as tshark's `tls.alert_message.desc`.
@Suite(.enabled(if: Locations.publicCorpus != nil, "public corpus not found: set CAPDIAG_PUBLIC_CAPTURES"))
struct TsharkTLSAlertCrossCheck {
    @Test(arguments: Locations.publicFiles("tls"))
    func alertDescriptionsMatchTshark(path: String) throws {
        let result = try Locations.run(URL(fileURLWithPath: "/usr/bin/tshark"), [
            "-n", "-r", path, "-Y", "tls.alert_message.desc", "-T", "fields", "-E", "separator=/t",
            "-e", "tls.alert_message.desc", "-e", "ip.src", "-e", "ipv6.src", "-e", "tcp.srcport",
            "-e", "ip.dst", "-e", "ipv6.dst", "-e", "tcp.dstport",
        ])
        var expected: [String: [Int]] = [:]
        for line in result.stdout.split(separator: "\n") {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard f.count >= 7, !(f[1] + f[2]).contains(",") else { continue }
            let key = [endpoint(f[1].isEmpty ? f[2] : f[1], f[3]), endpoint(f[4].isEmpty ? f[5] : f[4], f[6])].sorted()
                .joined(separator: " ")
            expected[key, default: []] += f[0].split(separator: ",").compactMap { Int($0) }
        }
        var actual: [String: [Int]] = [:]
        for flow in try analyze([path]).flows {
            let codes = (flow.tls?.alerts ?? []).filter { !$0.encrypted }.compactMap(\.descriptionCode)
            guard !codes.isEmpty else { continue }
            let key = [endpoint(flow.originator.address, "\(flow.originator.port)"),
                       endpoint(flow.responder.address, "\(flow.responder.port)")].sorted().joined(separator: " ")
            actual[key, default: []] += codes
        }
        #expect(expected.mapValues { $0.sorted() } == actual.mapValues { $0.sorted() })
    }

    func endpoint(_ address: String, _ port: String) -> String {
        (address.hasPrefix("::ffff:") ? String(address.dropFirst(7)) : address) + "|" + port
    }
}
