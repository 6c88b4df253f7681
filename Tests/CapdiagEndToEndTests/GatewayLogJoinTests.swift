import CapdiagTestSupport
import Foundation
import Testing

/// `--gateway-log` on the lab's real logs (Captures/lab/gateway-logs: nginx 1.22 and HAProxy 2.6
/// logging in Asia/Kolkata time, captures in UTC): every logged failure joined to the flow the
/// label names, the clocks placed, and bad logs never stopping the analysis.
@Suite struct GatewayLogJoin {
    static let directory = Locations.captures.appending(path: "lab/gateway-logs")

    struct Label: Decodable {
        struct Files: Decodable {
            var capture: String
            var nginxErrorLog: String?
            var nginxAccessLog: String?
            var haproxyLog: String?
        }
        struct Tuple: Decodable, Hashable {
            var gateway: String
            var upstream: String
        }
        struct Failure: Decodable {
            var loggedIn: [String]
            var upstreamTuples: [Tuple]
        }
        var files: Files
        var failures: [Failure]
    }

    static var labels: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { $0.hasSuffix(".json") }.sorted()
    }

    static func run(_ arguments: [String]) throws -> [String: Any] {
        let result = try Locations.run(Locations.capdiagExecutable, ["-q", "-T", "jsonl"] + arguments)
        #expect(result.status == 0, "\(result.stderr)")
        let last = try #require(result.stdout.split(separator: "\n").last)
        return try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
    }

    @Test(arguments: labels)
    func everyLoggedFailureJoinsTheLabelledFlow(label name: String) throws {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let label = try decoder.decode(Label.self, from: Data(contentsOf: Self.directory.appending(path: name)))
        let logs = [label.files.nginxErrorLog, label.files.nginxAccessLog, label.files.haproxyLog].compactMap { $0 }
        let summary = try Self.run(
            ["-r", Self.directory.appending(path: label.files.capture).path] + logs.flatMap { ["--gateway-log", Self.directory.appending(path: $0).path] })
        let joined = try #require(summary["gateway_logs"] as? [String: Any])
        let records = try #require(joined["failures"] as? [[String: Any]])
        func record(_ location: String) -> [String: Any]? {
            records.first { ("\($0["file"] ?? "")" as NSString).lastPathComponent + ":\($0["line"] ?? "")" == location }
        }
        // The lab's HAProxy logs %bi:%bp (the stock httplog scenario does not).
        let haproxyTuples = label.files.haproxyLog.map { (try? String(contentsOf: Self.directory.appending(path: $0), encoding: .utf8))?.contains(" 10.77.2.1:") ?? false } ?? false
        for failure in label.failures {
            for location in failure.loggedIn {
                let found = try #require(record(location), "\(name): \(location) has no record")
                let agreement = found["agreement"] as? String
                if failure.upstreamTuples.isEmpty {
                    #expect(agreement == "no_traffic", "\(name) \(location): \(found["note"] ?? "")")
                    continue
                }
                let tuple = Label.Tuple(gateway: JSONEndpoint.text(found["gateway_side"]) ?? "", upstream: JSONEndpoint.text(found["upstream_side"]) ?? "")
                #expect(failure.upstreamTuples.contains(tuple), "\(name) \(location): joined \(tuple), label \(failure.upstreamTuples)")
                #expect(agreement == "agrees", "\(name) \(location): \(found["note"] ?? "")")
                if location.contains(".haproxy.log") && haproxyTuples {
                    #expect(found["matched_by"] as? String == "four_tuple", "\(name) \(location)")
                }
            }
        }
        // The clocks: Asia/Kolkata found (written or inferred), and the skew near zero.
        let clocks = try #require(joined["clocks"] as? [[String: Any]])
        #expect(!clocks.isEmpty && clocks.count <= logs.count, "\(name): \(clocks)")
        for clock in clocks {
            #expect(clock["zone_offset_seconds"] as? Int == 19_800, "\(name): \(clock)")
            #expect(abs(clock["skew_ns"] as? Int ?? .max) <= 250_000_000, "\(name): \(clock)")
        }
        for file in try #require(joined["files"] as? [[String: Any]]) { #expect(file["bad_lines"] as? Int == 0, "\(name): \(file)") }
    }

    /// When the log and the wire disagree, both are reported and the stronger evidence named:
    /// the lab's reset (RST from the upstream) logged as a timeout, and an answered request
    /// logged as a 502.
    @Test func disagreementsNameBothSides() throws {
        let work = FileManager.default.temporaryDirectory.appending(path: "capdiag-logs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        let errorLog = try String(contentsOf: Self.directory.appending(path: "reset-after-request.nginx-error.log"), encoding: .utf8)
            .replacingOccurrences(of: "recv() failed (104: Connection reset by peer)", with: "upstream timed out (110: Connection timed out)")
        let edited = work.appending(path: "edited-error.log")
        try errorLog.write(to: edited, atomically: true, encoding: .utf8)
        let summary = try Self.run([
            "-r", Self.directory.appending(path: "reset-after-request.any.pcap").path, "--gateway-log", edited.path,
        ])
        let records = try #require((summary["gateway_logs"] as? [String: Any])?["failures"] as? [[String: Any]])
        let timeouts = records.filter { ($0["words"] as? String)?.contains("timed out") == true }
        #expect(!timeouts.isEmpty)
        for record in timeouts {
            #expect(record["agreement"] as? String == "disagrees")
            let note = record["note"] as? String ?? ""
            #expect(note.contains("response_timeout") && note.contains("upstream_reset_after_request") && note.contains("stronger evidence"), "\(note)")
        }
        // An answered request logged as a failure.
        var access = try String(contentsOf: Self.directory.appending(path: "healthy.nginx-access.log"), encoding: .utf8).split(separator: "\n").map(String.init)
        access[0] = access[0].replacingOccurrences(of: "\" 200 ", with: "\" 502 ").replacingOccurrences(of: "upstream_status=\"200\"", with: "upstream_status=\"502\"")
        let accessFile = work.appending(path: "edited-access.log")
        try (access.joined(separator: "\n") + "\n").write(to: accessFile, atomically: true, encoding: .utf8)
        let healthy = try Self.run(["-r", Self.directory.appending(path: "healthy.any.pcap").path, "--gateway-log", accessFile.path])
        let blamed = try #require(((healthy["gateway_logs"] as? [String: Any])?["failures"] as? [[String: Any]])?.first)
        #expect(blamed["agreement"] as? String == "disagrees")
        #expect((blamed["note"] as? String)?.contains("the upstream answered 200") == true, "\(blamed)")
    }

    /// A truncated gzip log, binary junk and mixed formats: the capture is still analysed, the
    /// bad lines are counted, the good ones still joined.
    @Test func badLogsNeverStopTheAnalysis() throws {
        let work = FileManager.default.temporaryDirectory.appending(path: "capdiag-badlogs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        let errorLog = try Data(contentsOf: Self.directory.appending(path: "refused.nginx-error.log"))
        let haproxyLog = try Data(contentsOf: Self.directory.appending(path: "haproxy-refused.haproxy.log"))
        // Mixed: nginx and HAProxy lines, binary junk and a NUL-ridden line in between.
        var mixed = errorLog
        mixed.append(Data([0x00, 0xFF, 0xFE, 0x0A]))
        mixed.append(Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 131) }))
        mixed.append(Data("\nthis is not a log line\n".utf8))
        mixed.append(haproxyLog)
        let mixedFile = work.appending(path: "mixed.log")
        try mixed.write(to: mixedFile)
        // Truncated gzip of the access log.
        let plain = work.appending(path: "access.log")
        try FileManager.default.copyItem(at: Self.directory.appending(path: "refused.nginx-access.log"), to: plain)
        let gz = try Locations.run(URL(fileURLWithPath: "/bin/sh"), ["-c", "gzip -c '\(plain.path)' | head -c 120 > '\(plain.path).gz'"])
        #expect(gz.status == 0)
        let summary = try Self.run([
            "-r", Self.directory.appending(path: "refused.any.pcap").path, "--gateway-log", mixedFile.path, "--gateway-log", plain.path + ".gz",
        ])
        #expect(summary["diagnosis"] != nil, "the capture is analysed")
        let joined = try #require(summary["gateway_logs"] as? [String: Any])
        let files = try #require(joined["files"] as? [[String: Any]])
        let mixedRecord = try #require(files.first { ($0["path"] as? String)?.hasSuffix("mixed.log") == true })
        #expect((mixedRecord["bad_lines"] as? Int ?? 0) >= 2, "\(mixedRecord)")
        #expect((mixedRecord["formats"] as? [String: Int])?["haproxy"] == 2 && (mixedRecord["formats"] as? [String: Int])?["nginx_error"] == 6)
        let gzRecord = try #require(files.first { ($0["path"] as? String)?.hasSuffix(".gz") == true })
        #expect(gzRecord["problem"] != nil, "the truncated gzip is reported: \(gzRecord)")
        let agreeing = (joined["failures"] as? [[String: Any]] ?? []).filter { $0["agreement"] as? String == "agrees" }
        #expect(agreeing.count >= 3, "the good nginx lines are still joined")
        // A log that does not exist is a usage error, before any analysis.
        let missing = try Locations.run(Locations.capdiagExecutable, ["-q", "-r", Locations.capture("lo-refused.pcap"), "--gateway-log", "/nonexistent.log"])
        #expect(missing.status == 64 && missing.stderr.contains("--gateway-log /nonexistent.log"))
    }

    /// Every cause in the text output carries what the gateways log for it.
    @Test func everyCauseCarriesTheGatewaysWords() throws {
        let run = try Locations.run(Locations.capdiagExecutable, ["-q", "-r", Locations.capture("lab/haproxy-refused.any.pcap")])
        #expect(run.stdout.contains("gateways log: nginx 'connect() failed (111: Connection refused)"), "\(run.stdout.prefix(1500))")
        #expect(run.stdout.contains("haproxy 'SC--'"))
    }

    /// docs/gateway-words.md is what `capdiag --gateway-words` prints (regenerate with
    /// `capdiag --gateway-words > docs/gateway-words.md`), and names every verdict of the lab.
    @Test func gatewayWordsDocumentIsCurrent() throws {
        let run = try Locations.run(Locations.capdiagExecutable, ["--gateway-words"])
        #expect(run.status == 0)
        let document = try String(contentsOf: Locations.repositoryRoot.appending(path: "docs/gateway-words.md"), encoding: .utf8)
        #expect(run.stdout == document, "docs/gateway-words.md is stale")
        for code in ["connection_refused", "keepalive_race", "upstream_reset_after_request", "response_timeout", "invalid_response"] {
            #expect(document.contains("| `\(code)` | nginx |") && document.contains("| `\(code)` | haproxy |"), "\(code)")
        }
    }

    /// The reports put each log line beside its flow: a table log line → verdict → flow →
    /// exported pcap, and the line under the flow's evidence.
    @Test func reportsTableLogLinesToFlowsAndPackets() throws {
        let work = FileManager.default.temporaryDirectory.appending(path: "capdiag-logreport-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        let arguments = [
            "-q", "-r", Self.directory.appending(path: "haproxy-reset-after-request.any.pcap").path,
            "--gateway-log", Self.directory.appending(path: "haproxy-reset-after-request.haproxy.log").path,
            "--export", work.appending(path: "flows").path,
        ]
        for name in ["r.md", "r.html"] {
            let run = try Locations.run(Locations.capdiagExecutable, arguments + ["--report", work.appending(path: name).path])
            #expect(run.status == 0, "\(run.stderr)")
        }
        let markdown = try String(contentsOf: work.appending(path: "r.md"), encoding: .utf8)
        #expect(markdown.contains("## Gateway log lines and the wire"))
        let rows = markdown.split(separator: "\n").filter { $0.hasPrefix("| haproxy-reset-after-request.haproxy.log") }
        #expect(rows.count == 2, "\(rows)")
        for row in rows {
            #expect(row.contains("SH--") && row.contains("`upstream_reset_after_request`") && row.contains(".pcap](") && row.hasSuffix("| agrees |"), "\(row)")
        }
        #expect(markdown.contains("- Gateway log haproxy-reset-after-request.haproxy.log"), "the line beside its flow")
        let html = try String(contentsOf: work.appending(path: "r.html"), encoding: .utf8)
        #expect(html.contains("<h2>Gateway log lines and the wire</h2>") && html.contains("<td>SH--</td>"))
    }
}
