import CapdiagReport
import CapdiagTestSupport
import Foundation
import Testing

/// The `capdiag` executable as a user runs it.
@Suite struct CommandLine {
    let capdiag = Locations.capdiagExecutable

    @Test func textSummaryListsTheRefusalFirst() throws {
        let result = try Locations.run(capdiag, ["-r", Locations.capture("lo-refused.pcap"), "-r", Locations.capture("lo-http-keepalive.pcap")])
        #expect(result.status == 0)
        #expect(result.stdout.contains("packets: 18 read, 18 decoded"))
        #expect(result.stdout.contains("REJ          1  connection attempt rejected"))
        let flagged = try #require(result.stdout.range(of: "Flagged flows: 1"))
        let others = try #require(result.stdout.range(of: "Other flows: 1"))
        #expect(flagged.lowerBound < others.lowerBound)
        #expect(result.stderr.contains("reading from file"))
        #expect(!result.stdout.contains("reading from file"))
    }

    @Test func jsonIsOneDocumentWithASchemaAndNothingElseOnStdout() throws {
        let result = try Locations.run(capdiag, ["-T", "json", "-r", Locations.capture("any-server-reset.pcap")])
        #expect(result.status == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(object["schema"] as? String == ReportBuilder.schema)
        let flows = try #require(object["flows"] as? [[String: Any]])
        #expect(flows.count == 1)
        #expect(flows.first?["conn_state"] as? String == "RSTR")
        let summary = try #require(object["summary"] as? [String: Any])
        #expect((summary["flows"] as? [String: Any])?["total"] as? Int == 1)
    }

    @Test func jsonlHasOneFlowPerLineThenTheSummary() throws {
        let paths = ["lo-refused.pcap", "lo-http-keepalive.pcap", "any-server-reset.pcap"].flatMap { ["-r", Locations.capture($0)] }
        let result = try Locations.run(capdiag, ["-q", "-T", "jsonl"] + paths)
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.count == 4)
        let decoder = JSONOutput.decoder()
        let flows = try lines.dropLast().map { try decoder.decode(FlowRecord.self, from: Data($0.utf8)) }
        #expect(flows.map(\.connState).sorted() == ["REJ", "RSTR", "SF"])
        let summary = try decoder.decode(SummaryRecord.self, from: Data(lines.last!.utf8))
        #expect(summary.flows.total == 3)
        #expect(summary.schema == ReportBuilder.schema)
        #expect(result.stderr.isEmpty)
    }

    @Test func trailingWordsAreABPFFilterAndCountLimits() throws {
        let file = Locations.capture("lo-http-keepalive.pcap")
        let filtered = try Locations.run(capdiag, ["-q", "-T", "jsonl", "-r", file, "tcp", "port", "9"])
        #expect(filtered.stdout.split(separator: "\n").count == 1)  // only the summary: no packet matched
        let limited = try Locations.run(capdiag, ["-q", "-c3", "-r", file])
        #expect(limited.stdout.contains("3 packets read, stopped at the -c limit"))
    }

    @Test func missingFileIsAClearError() throws {
        let result = try Locations.run(capdiag, ["-r", "/nonexistent/capture.pcap"])
        #expect(result.status == 2)
        #expect(result.stderr.hasPrefix("capdiag: error: /nonexistent/capture.pcap: No such file or directory"))
        #expect(result.stdout.isEmpty)
    }

    @Test func badFilterIsAClearError() throws {
        let result = try Locations.run(capdiag, ["-r", Locations.capture("lo-refused.pcap"), "-f", "tcp port and"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("capdiag: error: filter 'tcp port and': can't parse filter expression"))
    }

    @Test func usageErrorsExit64() throws {
        #expect(try Locations.run(capdiag, []).status == 64)
        #expect(try Locations.run(capdiag, ["-r", Locations.capture("lo-refused.pcap"), "-c", "0"]).status == 64)
    }

    /// A file cut mid-record is analysed up to the damage, and the output says why it stopped.
    @Test func truncatedFileIsAnalysedUpToTheDamage() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Locations.capture("lo-http-keepalive.pcap")))
        let cut = FileManager.default.temporaryDirectory.appending(path: "capdiag-truncated-\(UUID().uuidString).pcap")
        try data.prefix(data.count - 30).write(to: cut)
        defer { try? FileManager.default.removeItem(at: cut) }
        let result = try Locations.run(capdiag, ["-r", cut.path])
        #expect(result.status == 0)
        #expect(result.stdout.contains("15 packets read, read error after 15 packets: truncated dump file"))
        #expect(result.stderr.contains("capdiag: warning:"))
        #expect(result.stdout.contains("TCP flows: 1"))
    }
}
