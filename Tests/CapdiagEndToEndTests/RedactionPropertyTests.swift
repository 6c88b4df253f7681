import CapdiagTestSupport
import Foundation
import Testing

/// No secret survives any output. Hostile requests (credentials in headers of any case,
/// cookies, query parameters with percent-encoded names, URL userinfo, Set-Cookie answers),
/// generated from a seed, are written as a real pcap (handshake, request, response, close)
/// and run through every output: text, JSON, JSON Lines, Markdown and HTML reports, and the
/// exported pcaps at every `--export-payload`. None may contain a secret; with `--no-redact`
/// they must (so the test would notice redaction doing nothing).
@Suite struct RedactionEverywhere {
    /// A small deterministic generator (SplitMix64).
    struct Seeded {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func pick<T>(_ items: [T]) -> T { items[Int(next() % UInt64(items.count))] }
        mutating func secret() -> String { "S3cr" + String(next() % 1_000_000_007, radix: 36) + "zQ" }
    }

    /// One hostile exchange: the request, the response, and the secrets they hold.
    static func exchange(_ rng: inout Seeded) -> (request: String, response: String, secrets: [String]) {
        let header = rng.pick(["Authorization: Bearer", "authorization: Basic", "COOKIE: session=", "Cookie: a=1; sid=", "x-API-key:", "X-Auth-Token:", "Proxy-Authorization: Basic"])
        let parameter = rng.pick(["token", "Access_Token", "access%5Ftoken", "API_KEY", "password", "sig", "client_secret", "X-Amz-Signature"])
        let (h, q, u, c) = (rng.secret(), rng.secret(), rng.secret(), rng.secret())
        let absolute = rng.next() % 2 == 0
        let target = (absolute ? "http://alice:\(u)@upstream.test" : "") + "/api/v1?\(parameter)=\(q)&page=2"
        let request = "GET \(target) HTTP/1.1\r\nHost: upstream.test\r\n\(header) \(h)\r\nAccept: */*\r\n\r\n"
        // Half the answers are malformed, so the header line is quoted in the verdict's detail.
        let bad = rng.next() % 2 == 0
        let response = "HTTP/1.1 200 OK\r\nSet-Cookie: id=\(c); HttpOnly\r\n" + (bad ? "\(header)\(h) broken line\r\n" : "")
            + "Content-Length: 2\r\n\r\nok"
        return (request, response, absolute ? [h, q, u, c] : [h, q, c])
    }

    /// A classic pcap (microseconds, Ethernet) with one TCP connection per exchange.
    static func pcap(_ exchanges: [(request: String, response: String, secrets: [String])]) -> Data {
        func le32(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF), UInt8((v >> 16) & 0xFF), UInt8(v >> 24)] }
        var out: [UInt8] = le32(0xA1B2_C3D4) + [2, 0, 4, 0] + le32(0) + le32(0) + le32(65535) + le32(1)
        var clock: UInt32 = 0
        for (index, exchange) in exchanges.enumerated() {
            let port = UInt16(40000 + index)
            var client: UInt32 = 1000, server: UInt32 = 5000
            func packet(fromClient: Bool, flags: UInt8, payload: [UInt8] = []) {
                let tcp = PacketBuilder.tcp(
                    sourcePort: fromClient ? port : 80, destinationPort: fromClient ? 80 : port,
                    sequence: fromClient ? client : server, ack: fromClient ? server : client, flags: flags, payload: payload)
                let ip = PacketBuilder.ipv4(source: fromClient ? 0x0A00_0001 : 0x0A00_0002, destination: fromClient ? 0x0A00_0002 : 0x0A00_0001, payload: tcp)
                let frame = PacketBuilder.ethernet(etherType: 0x0800, payload: ip)
                clock += 1000
                out += le32(1_700_000_000 + clock / 1_000_000) + le32(clock % 1_000_000) + le32(UInt32(frame.count)) + le32(UInt32(frame.count)) + frame
                let advance = UInt32(payload.count) + (flags & 0x03 != 0 ? 1 : 0)
                if fromClient { client &+= advance } else { server &+= advance }
            }
            packet(fromClient: true, flags: 0x02)
            packet(fromClient: false, flags: 0x12)
            packet(fromClient: true, flags: 0x10)
            packet(fromClient: true, flags: 0x18, payload: Array(exchange.request.utf8))
            packet(fromClient: false, flags: 0x18, payload: Array(exchange.response.utf8))
            packet(fromClient: true, flags: 0x11)
            packet(fromClient: false, flags: 0x11)
            packet(fromClient: true, flags: 0x10)
        }
        return Data(out)
    }

    @Test(arguments: [UInt64(1), 2, 3])
    func noSecretSurvivesAnyOutput(seed: UInt64) throws {
        var rng = Seeded(state: seed)
        let exchanges = (0..<12).map { _ in Self.exchange(&rng) }
        let secrets = exchanges.flatMap(\.secrets)
        let directory = FileManager.default.temporaryDirectory.appending(path: "capdiag-redact-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appending(path: "hostile.pcap").path
        try Self.pcap(exchanges).write(to: URL(fileURLWithPath: input))

        func everyOutput(_ extra: [String]) throws -> String {
            var all = ""
            for format in ["text", "json", "jsonl"] {
                let run = try Locations.run(Locations.capdiagExecutable, ["-q", "-T", format, "-r", input] + extra)
                #expect(run.status == 0, "\(run.stderr)")
                all += run.stdout + run.stderr
            }
            for payload in ["none", "headers", "all"] {
                let base = directory.appending(path: "\(payload)\(extra.isEmpty ? "" : "-clear")").path
                let run = try Locations.run(
                    Locations.capdiagExecutable,
                    ["-q", "-r", input, "--export-all", "--export-payload", payload, "--export", base + "-flows", "--report", base + ".md"] + extra)
                #expect(run.status == 0, "\(run.stderr)")
                _ = try Locations.run(Locations.capdiagExecutable, ["-q", "-r", input, "--report", base + ".html"] + extra)
                for file in [base + ".md", base + ".html"] { all += try String(contentsOfFile: file, encoding: .utf8) }
                for name in try FileManager.default.contentsOfDirectory(atPath: base + "-flows") {
                    all += String(decoding: try Data(contentsOf: URL(fileURLWithPath: base + "-flows/" + name)), as: UTF8.self)
                }
            }
            return all
        }
        let redacted = try everyOutput([])
        let leaked = secrets.filter { redacted.contains($0) }
        #expect(leaked.isEmpty, "secrets in the output: \(leaked)")
        // The control: with --no-redact the same outputs do show them (the export payload
        // "all" carries every header), so the check above is not vacuous.
        let clear = try everyOutput(["--no-redact"])
        #expect(secrets.allSatisfy { clear.contains($0) })
    }
}
