import CapdiagDiagnosis
import CapdiagReport
import CapdiagSession
import CapdiagTestSupport
import Foundation
import Glibc
import Testing

/// capdiag as a service: conclusions over a sliding window, a JSON Lines file that rotates,
/// reports on SIGHUP, `-G` rotation, and the systemd unit in scripts/systemd — run as its own
/// ExecStart line says, on loopback.
/// `-T json`: the flows, then the summary.
private struct JSONDocument: Decodable {
    var flows: [FlowRecord]
    var summary: SummaryRecord
}

@Suite(.serialized) struct ServiceMode {
    static let decoder = JSONOutput.decoder()

    static func causes(_ summary: SummaryRecord) -> Set<String> {
        Set(summary.diagnosis?.upstreams.flatMap { $0.causes.map(\.code) } ?? [])
    }

    /// Two lab captures 32 s apart read as one: with the whole capture the refusals of the
    /// first are a cause; with a 20 s window they have aged out of the conclusions (a caveat
    /// says so) while the flow totals and the metrics still count them.
    @Test func aWindowAgesOldFlowsOutOfTheConclusionsNotOutOfTheCounters() throws {
        let inputs = ["-r", Locations.capture("lab/refused.any.pcap"), "-r", Locations.capture("lab/keepalive-race.any.pcap")]
        let metrics = FileManager.default.temporaryDirectory.appending(path: "capdiag-window-\(UUID().uuidString).prom").path
        defer { try? FileManager.default.removeItem(atPath: metrics) }
        let whole = try Locations.run(Locations.capdiagExecutable, ["-q", "-T", "json"] + inputs)
        let windowed = try Locations.run(
            Locations.capdiagExecutable, ["-q", "-T", "json", "--window", "20s", "--metrics-file", metrics] + inputs)
        #expect(whole.status == 0 && windowed.status == 0, "\(windowed.stderr)")
        let all = try Self.decoder.decode(JSONDocument.self, from: Data(whole.stdout.utf8)).summary
        let recent = try Self.decoder.decode(JSONDocument.self, from: Data(windowed.stdout.utf8)).summary
        #expect(Self.causes(all).isSuperset(of: ["connection_refused", "keepalive_race"]), "\(Self.causes(all))")
        #expect(!Self.causes(recent).contains("connection_refused"), "\(Self.causes(recent))")
        #expect(Self.causes(recent).contains("keepalive_race"))
        #expect(recent.capture.caveats.contains { $0.contains("--window 20s") }, "\(recent.capture.caveats)")
        #expect(recent.flows.total == all.flows.total, "totals cover the whole run")
        let samples = Metrics.parse(try String(contentsOfFile: metrics, encoding: .utf8))
        let refusals = samples.filter { $0.key.hasPrefix("capdiag_upstream_failures_total") && $0.key.contains("connection_refused") }
        #expect(refusals.values.reduce(0, +) > 0, "counters never forget: \(samples.keys.sorted())")
    }

    /// A window longer than the capture cuts it into buckets (4 s each for 60 s) and merges
    /// them for the conclusions: the report must be the one of the whole capture, to the byte.
    @Test(arguments: ["lab/keepalive-race.any.pcap", "lab/failover.any.pcap", "lab/mixed.any.pcap"])
    func mergedBucketsConcludeAsTheWholeCapture(capture: String) throws {
        let whole = try Locations.run(Locations.capdiagExecutable, ["-q", "-r", Locations.capture(capture)])
        let windowed = try Locations.run(Locations.capdiagExecutable, ["-q", "-r", Locations.capture(capture), "--window", "60s"])
        #expect(whole.status == 0 && !whole.stdout.isEmpty)
        #expect(windowed.stdout == whole.stdout)
    }

    /// `--jsonl-file` on a capture: one line per flagged flow and the summary, each valid JSON;
    /// the flagged lines are as many as the summary counts.
    @Test func jsonLinesFileHoldsTheFlaggedFlowsAndTheSummary() throws {
        let path = FileManager.default.temporaryDirectory.appending(path: "capdiag-\(UUID().uuidString).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let run = try Locations.run(
            Locations.capdiagExecutable, ["-q", "-r", Locations.capture("lab/keepalive-race.any.pcap"), "--jsonl-file", path])
        #expect(run.status == 0, "\(run.stderr)")
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        let flows = lines.compactMap { try? Self.decoder.decode(FlowRecord.self, from: Data($0.utf8)) }.filter { $0.type == "flow" }
        let summary = try #require(lines.last.flatMap { try? Self.decoder.decode(SummaryRecord.self, from: Data($0.utf8)) })
        #expect(flows.count == summary.flows.flagged && flows.count > 0)
        #expect(flows.allSatisfy { $0.isFlagged })
        #expect(lines.count == flows.count + 1)
    }

    /// Rotation by size as logrotate does it: FILE, FILE.1 … FILE.keep; every line whole.
    @Test func rotatingFileKeepsWholeLinesAndAtMostKeepGenerations() throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "capdiag-rotate-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appending(path: "events.jsonl").path
        let file = try RotatingFile(path: path, maximumBytes: 1_000, keep: 2)
        for index in 0..<100 { file.append("{\"line\":\(index),\"pad\":\"\(String(repeating: "x", count: 80))\"}") }
        file.close()
        #expect(file.failure == nil)
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        #expect(names == ["events.jsonl", "events.jsonl.1", "events.jsonl.2"], "\(names)")
        var numbers: [Int] = []
        for name in ["events.jsonl.2", "events.jsonl.1", "events.jsonl"] {
            let text = try String(contentsOfFile: directory.appending(path: name).path, encoding: .utf8)
            #expect(text.utf8.count <= 1_000)
            for line in text.split(separator: "\n") {
                let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                numbers.append(try #require(object["line"] as? Int))
            }
        }
        // The newest lines, in order, none cut.
        #expect(numbers == Array((100 - numbers.count)..<100) && numbers.count >= 20, "\(numbers)")
    }

    /// The unit file passes `systemd-analyze verify` without a single complaint (with the
    /// binary path pointed at this build: verify checks that it is executable).
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze"), "systemd-analyze missing"))
    func unitFileVerifiesClean() throws {
        let unit = try String(contentsOf: Self.unitFile, encoding: .utf8)
            .replacingOccurrences(of: "/usr/local/bin/capdiag", with: Locations.capdiagExecutable.path)
        let directory = FileManager.default.temporaryDirectory.appending(path: "capdiag-unit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appending(path: "capdiag@lo.service").path
        try unit.write(toFile: path, atomically: true, encoding: .utf8)
        let run = try Locations.run(URL(fileURLWithPath: "/usr/bin/systemd-analyze"), ["verify", path])
        #expect(run.status == 0 && run.stdout.isEmpty && run.stderr.isEmpty, "systemd-analyze: \(run.stdout)\(run.stderr)")
    }

    static let unitFile = Locations.repositoryRoot.appending(path: "scripts/systemd/capdiag@.service")

    /// The unit's ExecStart arguments for interface `lo`, with its directories moved under
    /// `root`, as systemd would expand them (`%I`, `%%`, line continuations).
    static func execStart(root: String, user: String, extra: [String]) throws -> [String] {
        let text = try String(contentsOf: unitFile, encoding: .utf8).replacingOccurrences(of: "\\\n", with: " ")
        let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("ExecStart=") })
        var words: [String] = []
        for word in line.dropFirst("ExecStart=".count).split(separator: " ").dropFirst() {
            if word == "$CAPDIAG_OPTIONS" {
                words += extra
                continue
            }
            words.append(
                String(word).replacingOccurrences(of: "%I", with: "lo").replacingOccurrences(of: "%%", with: "%")
                    .replacingOccurrences(of: "/var/lib/capdiag", with: root + "/lib")
                    .replacingOccurrences(of: "/var/log/capdiag", with: root + "/log"))
        }
        if let index = words.firstIndex(of: "-Z"), index + 1 < words.count { words[index + 1] = user }
        return words
    }

    /// The unit's own command line, run for a few seconds on loopback as root with `-Z nobody`
    /// (its directories handed to that user, as ExecStartPre does): a refusal and a reset
    /// happen, SIGHUP writes a report that already names them, and at the end the ring of
    /// capture files, the reports, the metrics and the JSON Lines file are all there and agree.
    @Test(.enabled(if: getuid() == 0, "live capture needs root"))
    func theUnitsCommandLineRunsAsAService() throws {
        let root = FileManager.default.temporaryDirectory.appending(path: "capdiag-service-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        for directory in ["lib/lo", "lib/lo/pcap", "lib/lo/reports", "log"] {
            try FileManager.default.createDirectory(atPath: root + "/" + directory, withIntermediateDirectories: true)
            #expect(chown(root + "/" + directory, 65_534, 65_534) == 0)
        }
        let base = 18_900 + Int(getpid() % 30) * 3
        var arguments = try Self.execStart(root: root, user: "nobody", extra: ["tcp", "portrange", "\(base)-\(base + 2)"])
        // Seconds, not hours: a new capture file every second, at most 4 kept.
        for (flag, value) in [("-G", "1"), ("-W", "4"), ("--interval", "1")] {
            if let index = arguments.firstIndex(of: flag) { arguments[index + 1] = value }
        }
        let process = Process()
        process.executableURL = Locations.capdiagExecutable
        process.arguments = arguments + ["--duration", "8s"]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        Thread.sleep(forTimeInterval: 1.0)
        let traffic = try Locations.run(
            URL(fileURLWithPath: "/usr/bin/python3"),
            [Locations.repositoryRoot.appending(path: "scripts/live-traffic.py").path, "scenarios", "\(base)"])
        #expect(traffic.status == 0, "traffic: \(traffic.stderr)")
        Thread.sleep(forTimeInterval: 1.0)
        let reports = root + "/lib/lo/reports"
        kill(process.processIdentifier, SIGHUP)
        var interim: String?
        for _ in 0..<20 where interim == nil {
            Thread.sleep(forTimeInterval: 0.1)
            interim = try FileManager.default.contentsOfDirectory(atPath: reports).first { $0.hasSuffix(".md") }
        }
        let interimName = try #require(interim, "no report within 2 s of SIGHUP")
        let interimText = try String(contentsOfFile: reports + "/" + interimName, encoding: .utf8)
        #expect(interimText.contains("connection_refused") || interimText.contains("refused"), "\(interimText.prefix(600))")
        #expect(interimText.contains("Interim report"))
        // A second burst a few seconds later lands in other capture files.
        Thread.sleep(forTimeInterval: 1.5)
        _ = try Locations.run(
            URL(fileURLWithPath: "/usr/bin/python3"),
            [Locations.repositoryRoot.appending(path: "scripts/live-traffic.py").path, "scenarios", "\(base)"])
        for _ in 0..<150 where process.isRunning { Thread.sleep(forTimeInterval: 0.1) }
        if process.isRunning {
            Issue.record("capdiag did not stop after --duration")
            kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)

        let pcaps = try FileManager.default.contentsOfDirectory(atPath: root + "/lib/lo/pcap").filter { $0.hasSuffix(".pcap") }.sorted()
        #expect(pcaps.count >= 2 && pcaps.count <= 4, "-G 1 -W 4: \(pcaps)")
        let reportFiles = try FileManager.default.contentsOfDirectory(atPath: reports)
        #expect(reportFiles.filter { $0.hasSuffix(".html") }.count == 2, "the SIGHUP report and the final one: \(reportFiles)")
        let metrics = Metrics.parse(try String(contentsOfFile: root + "/lib/lo/metrics.prom", encoding: .utf8))
        let failures = metrics.filter { $0.key.hasPrefix("capdiag_upstream_failures_total") }
        #expect(failures.filter { $0.key.contains("connection_refused") }.values.reduce(0, +) == 2, "\(failures)")
        #expect(failures.filter { $0.key.contains("upstream_reset") }.values.reduce(0, +) == 2, "\(failures)")
        let events = try String(contentsOfFile: root + "/log/lo.jsonl", encoding: .utf8).split(separator: "\n")
        var types: [String: Int] = [:]
        for line in events {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            types[object["type"] as? String ?? "?", default: 0] += 1
        }
        #expect(types["verdict"] ?? 0 >= 4 && types["flow"] ?? 0 >= 4 && types["summary"] == 1 && types["interval"] ?? 0 >= 3, "\(types)")
        // The ring of capture files, read back, holds both bursts' refusals.
        let replay = try Locations.run(
            Locations.capdiagExecutable, ["-q", "-T", "json"] + pcaps.flatMap { ["-r", root + "/lib/lo/pcap/" + $0] })
        let summary = try Self.decoder.decode(JSONDocument.self, from: Data(replay.stdout.utf8))
        #expect(summary.flows.filter { $0.connState == "REJ" }.count == 2, "\(replay.stderr)")
    }
}
