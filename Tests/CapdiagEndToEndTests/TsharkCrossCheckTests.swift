import CapdiagEngine
import CapdiagFlow
import CapdiagReport
import CapdiagTestSupport
import Foundation
import Testing

/// Per connection: normalized 4-tuple plus first frame → (SYN, FIN, RST) packet counts.
typealias ConnectionCounts = [String: [Int]]

/// capdiag's TCP connections against tshark's `tcp.stream` on the public corpus: the same
/// connections (split the same way on port reuse) and the same SYN, FIN and RST counts each.
/// Needs tshark (installed by .ci/run). Tunnelled packets (GTP, VXLAN: several IP layers)
/// are left out, since capdiag does not decode tunnels yet.
@Suite(.enabled(if: Locations.publicCorpus != nil, "public corpus not found: set CAPDIAG_PUBLIC_CAPTURES"))
struct TsharkCrossCheck {
    static let files = Locations.publicFiles("http-tcp") + Locations.publicFiles("tls")

    /// Every flow's Community ID is the one Wireshark computes for its packets (its
    /// `communityid` post-dissector), on the corpus and on Captures/.
    @Test(arguments: files.prefix(25) + ["lo-refused.pcap", "lo-http-keepalive.pcap", "lab/keepalive-race.any.pcap", "lo-h2-tls.pcap"].map(Locations.capture))
    func communityIDsMatchTshark(path: String) throws {
        let tshark = URL(fileURLWithPath: "/usr/bin/tshark")
        try #require(FileManager.default.isExecutableFile(atPath: tshark.path), "tshark is not installed (apt-get install tshark)")
        let result = try Locations.run(tshark, [
            "-n", "-r", path, "--enable-protocol", "communityid", "-Y", "tcp", "-T", "fields", "-e", "communityid",
        ])
        // Tunnelled packets (several IP layers: several IDs) are left out, as capdiag does not
        // decode tunnels.
        let theirs = Set(result.stdout.split(separator: "\n").map(String.init).filter { $0.hasPrefix("1:") && !$0.contains(",") })
        let run = try Locations.run(Locations.capdiagExecutable, ["-q", "-T", "jsonl", "-r", path])
        let ours = Set(run.stdout.split(separator: "\n").compactMap { line -> String? in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], object["type"] as? String == "flow" else { return nil }
            return object["community_id"] as? String
        })
        #expect(!ours.isEmpty || theirs.isEmpty)
        #expect(ours.isSubset(of: theirs), "\(path): not Wireshark's: \(ours.subtracting(theirs).sorted().prefix(5))")
        #expect(theirs.isSubset(of: ours), "\(path): missing: \(theirs.subtracting(ours).sorted().prefix(5))")
    }

    @Test func corpusIsLargeEnough() {
        #expect(Self.files.count >= 20)
    }

    @Test(arguments: files)
    func connectionsAndControlFlagsMatchTshark(path: String) throws {
        let tshark = URL(fileURLWithPath: "/usr/bin/tshark")
        try #require(FileManager.default.isExecutableFile(atPath: tshark.path), "tshark is not installed (apt-get install tshark)")
        let result = try Locations.run(tshark, [
            "-n", "-r", path, "-Y", "tcp", "-T", "fields", "-E", "separator=/t",
            "-e", "frame.number", "-e", "tcp.stream", "-e", "ip.src", "-e", "ipv6.src", "-e", "tcp.srcport",
            "-e", "ip.dst", "-e", "ipv6.dst", "-e", "tcp.dstport",
            "-e", "tcp.flags.syn", "-e", "tcp.flags.fin", "-e", "tcp.flags.reset",
        ])
        var streams: [String: (key: String, first: Int, counts: [Int])] = [:]
        for line in result.stdout.split(separator: "\n") {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard f.count >= 11, !f[1].isEmpty, !(f[2] + f[3]).contains(",") else { continue }
            let source = "\(normalize(f[2].isEmpty ? f[3] : f[2]))|\(f[4])"
            let destination = "\(normalize(f[5].isEmpty ? f[6] : f[5]))|\(f[7])"
            let key = [source, destination].sorted().joined(separator: " ")
            var stream = streams[f[1]] ?? (key, Int(f[0]) ?? 0, [0, 0, 0])
            for (index, field) in [f[8], f[9], f[10]].enumerated() where field == "1" || field == "True" {
                stream.counts[index] += 1
            }
            streams[f[1]] = stream
        }
        var expected: ConnectionCounts = [:]
        for stream in streams.values { expected["\(stream.key) @\(stream.first)"] = stream.counts }

        var options = AnalyzerOptions()
        options.flowTable.idleTimeout = Int64.max / 4  // tshark never splits on idle time
        let flows = try analyze([path], options: options).flows
        var actual: ConnectionCounts = [:]
        for flow in flows {
            let key = ["\(flow.originator.address)|\(flow.originator.port)", "\(flow.responder.address)|\(flow.responder.port)"]
                .sorted().joined(separator: " ")
            actual["\(key) @\(flow.firstFrame)"] = [flow.orig.syn + flow.resp.syn, flow.orig.fin + flow.resp.fin, flow.orig.rst + flow.resp.rst]
        }
        #expect(actual.count == expected.count, "connections: capdiag \(actual.count), tshark \(expected.count)")
        for (key, counts) in expected where actual[key] != counts {
            Issue.record("\(key): tshark SYN/FIN/RST \(counts), capdiag \(actual[key].map { "\($0)" } ?? "no such flow")")
        }
    }

    /// capdiag keeps IPv4 as IPv4-mapped IPv6 and prints it dotted; tshark prints mapped IPv6 with `::ffff:`.
    func normalize(_ address: String) -> String {
        address.hasPrefix("::ffff:") ? String(address.dropFirst(7)) : address
    }
}
