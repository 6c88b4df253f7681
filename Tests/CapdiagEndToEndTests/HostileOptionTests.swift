import CapdiagTestSupport
import Foundation
import Testing

/// Option values and damaged timestamps that used to trap (exit 132) instead of a usage error
/// or a report.
@Suite struct HostileOptions {
    let capdiag = Locations.capdiagExecutable

    @Test(arguments: [
        ["--idle-timeout", "nan"], ["--idle-timeout", "1e10"], ["--idle-timeout", "-1"], ["--read-timeout", "inf"],
        ["--connect-timeout", "1e300"], ["--connect-timeout", "0"], ["-B", "99999999999"], ["--max-flows", "0"],
        ["--reassembly-memcap", "0"], ["--reassembly-memcap", "99999999999"],
    ])
    func absurdOfflineValuesAreUsageErrors(_ option: [String]) throws {
        let result = try Locations.run(capdiag, ["-q", "-r", Locations.capture("lo-refused.pcap")] + option)
        #expect(result.status == 64, "\(option): \(result.stderr)")
        #expect(result.stderr.contains(option[0]), "the message names the option: \(result.stderr)")
        #expect(result.stdout.isEmpty)
    }

    /// Validation runs before any interface is opened, so these need no privileges.
    @Test(arguments: [["--interval", "nan"], ["--interval", "-2"], ["--duration", "99999999999h"], ["--duration", "nanm"]])
    func absurdLiveValuesAreUsageErrors(_ option: [String]) throws {
        let result = try Locations.run(capdiag, ["-q", "-i", "lo"] + option)
        #expect(result.status == 64, "\(option): \(result.stderr)")
        #expect(result.stderr.contains(option[0]))
    }

    /// The reproduction: the second record's seconds zeroed, so the flow's last packet is
    /// stamped decades before its first. The HTML timeline used to trap on the negative offset.
    @Test func timestampsGoingBackwardsStillGiveBothReports() throws {
        var data = try Data(contentsOf: URL(fileURLWithPath: Locations.capture("lo-refused.pcap")))
        data.replaceSubrange(114..<118, with: [0, 0, 0, 0])
        let dir = FileManager.default.temporaryDirectory.appending(path: "capdiag-backwards-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appending(path: "backwards.pcap").path
        try data.write(to: URL(fileURLWithPath: input))
        for name in ["r.html", "r.md"] {
            let report = dir.appending(path: name).path
            let result = try Locations.run(capdiag, ["-q", "-r", input, "--report", report])
            #expect(result.status == 0, "\(name): \(result.stderr)")
            #expect(result.stdout.contains("connection refused") || result.stdout.contains("REJ"))
            let written = try String(contentsOfFile: report, encoding: .utf8)
            #expect(written.contains("127.0.0.1"))
        }
    }

    /// Inputs the fuzzer (`scripts/fuzz-cli.py`) once crashed capdiag with, kept in
    /// `Tests/fail-cases/` and replayed in every output mode.
    static let failCases: [String] = {
        let folder = Locations.repositoryRoot.appending(path: "Tests/fail-cases")
        return ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter { $0.hasSuffix(".pcap") }.sorted()
            .map { folder.appending(path: $0).path }
    }()

    @Test(arguments: failCases)
    func formerCrashersRunToTheEnd(path: String) throws {
        let report = FileManager.default.temporaryDirectory.appending(path: "capdiag-failcase-\(UUID().uuidString).html").path
        defer { try? FileManager.default.removeItem(atPath: report) }
        for arguments in [["-T", "text"], ["-T", "json"], ["-T", "jsonl"], ["--report", report]] {
            let result = try Locations.run(capdiag, ["-q", "-r", path] + arguments)
            #expect(result.status == 0 || result.status == 2, "\(arguments): exit \(result.status)\n\(result.stderr.suffix(600))")
        }
    }
}
