import CapdiagTestSupport
import Foundation
import Glibc
import Testing

/// Prometheus metrics: the exposition validated by Prometheus' own checker (`promtool check
/// metrics`, installed by scripts/setup.sh) and by a parser following the text format, offline
/// (`--metrics-file`) and scraped live over HTTP (`--metrics-listen`).
@Suite(.serialized) struct Metrics {
    /// The text format 0.0.4: `# HELP`/`# TYPE` before each family's samples, sample lines
    /// `name{label="value",…} number`, counters ending in `_total`.
    static func parse(_ text: String) -> [String: Double] {
        var samples: [String: Double] = [:]
        var typed: [String: String] = [:]
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                if parts.count == 4 { typed[String(parts[2])] = String(parts[3]) }
                continue
            }
            if line.hasPrefix("#") { continue }
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                Issue.record("not a sample line: \(line)")
                continue
            }
            let series = String(line[..<space])
            let name = String(series.prefix { $0 != "{" })
            #expect(name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == ":" }, "\(name)")
            #expect(typed[name] != nil, "\(name) has no # TYPE line before it")
            if typed[name] == "counter" { #expect(name.hasSuffix("_total"), "\(name)") }
            samples[series] = value
        }
        return samples
    }

    static func promtool(_ text: String) throws -> (Bool, String)? {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/promtool") else { return nil }
        let file = FileManager.default.temporaryDirectory.appending(path: "capdiag-metrics-\(UUID().uuidString).prom")
        try text.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let run = try Locations.run(URL(fileURLWithPath: "/bin/sh"), ["-c", "/usr/bin/promtool check metrics < '\(file.path)'"])
        return (run.status == 0, run.stdout + run.stderr)
    }

    @Test func metricsFileCountsFailuresPerUpstreamAndCode() throws {
        let path = FileManager.default.temporaryDirectory.appending(path: "capdiag-\(UUID().uuidString).prom").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let run = try Locations.run(
            Locations.capdiagExecutable, ["-q", "-r", Locations.capture("lab/keepalive-race.any.pcap"), "--metrics-file", path])
        #expect(run.status == 0)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let samples = Self.parse(text)
        #expect(samples["capdiag_upstream_failures_total{upstream=\"10.77.2.2:9012\",code=\"keepalive_race\"}"] == 8)
        #expect(samples["capdiag_client_failures_total{listener=\"10.77.1.1:8012\"}"] == 8)
        #expect(samples["capdiag_client_requests_total{listener=\"10.77.1.1:8012\"}"] == 30)
        #expect(samples["capdiag_packets_total"] == 510)
        if let (ok, output) = try Self.promtool(text) { #expect(ok, "promtool: \(output)") }
    }

    /// Scraped with curl while a live capture runs and a refused connect happens.
    @Test(.enabled(if: getuid() == 0, "live capture needs root"))
    func metricsEndpointIsScrapedLive() throws {
        let port = 18_700 + Int(getpid() % 50)
        let metricsPort = 19_300 + Int(getpid() % 50)
        let process = Process()
        process.executableURL = Locations.capdiagExecutable
        process.arguments = [
            "-q", "-i", "lo", "--duration", "4s", "--interval", "1", "--metrics-listen", "127.0.0.1:\(metricsPort)", "tcp", "port", "\(port)",
        ]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        Thread.sleep(forTimeInterval: 1.0)
        let socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socketFD, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        close(socketFD)
        Thread.sleep(forTimeInterval: 1.6)
        let scrape = try Locations.run(URL(fileURLWithPath: "/usr/bin/curl"), ["-s", "--max-time", "3", "http://127.0.0.1:\(metricsPort)/metrics"])
        for _ in 0..<60 where process.isRunning { Thread.sleep(forTimeInterval: 0.1) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        #expect(scrape.status == 0)
        let samples = Self.parse(scrape.stdout)
        #expect((samples["capdiag_packets_total"] ?? 0) >= 2, "\(scrape.stdout)")
        #expect(samples["capdiag_kernel_dropped_packets_total"] != nil)
        // The refusal counts as it happens, long before its flow leaves the table.
        #expect(samples["capdiag_verdicts_total{code=\"connection_refused\"}"] == 1, "\(scrape.stdout)")
        if let (ok, output) = try Self.promtool(scrape.stdout) { #expect(ok, "promtool: \(output)") }
    }
}
