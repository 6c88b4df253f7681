import CapdiagFlow
import CapdiagReport
import CapdiagTestSupport
import Foundation
import Testing

/// Everyday habits from tcpdump, tshark and nginx that must just work.
@Suite struct Habits {
    let capdiag = Locations.capdiagExecutable

    func json(_ arguments: [String]) throws -> [String: Any] {
        let run = try Locations.run(capdiag, ["-q", "-T", "jsonl"] + arguments)
        #expect(run.status == 0, "\(arguments): \(run.stderr)")
        let last = try #require(run.stdout.split(separator: "\n").last)
        return try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
    }

    func thresholds(_ summary: [String: Any]) -> [String: Any] {
        ((summary["diagnosis"] as? [String: Any])?["thresholds"] as? [String: Any]) ?? [:]
    }

    /// Times pasted from nginx's configuration: 500ms, 60s, 1m30s; a plain number is seconds.
    @Test(arguments: [("500ms", 500_000_000), ("0.5", 500_000_000), ("1m30s", 90_000_000_000), ("1h 30m", 5_400_000_000_000)])
    func timesTakeNginxSyntax(_ value: String, _ nanoseconds: Int) throws {
        let summary = try json(["-r", Locations.capture("lo-refused.pcap"), "--read-timeout", value, "--connect-timeout", value])
        #expect(thresholds(summary)["read_timeout_ns"] as? Int == nanoseconds)
        #expect(thresholds(summary)["connect_timeout_ns"] as? Int == nanoseconds)
    }

    @Test(arguments: ["5x", "ms", "1e3", "1s2", "0", "nan", "400d"])
    func badTimesAreUsageErrorsThatShowTheSyntax(_ value: String) throws {
        let run = try Locations.run(capdiag, ["-q", "-r", Locations.capture("lo-refused.pcap"), "--read-timeout", value])
        #expect(run.status == 64 && run.stderr.contains("--read-timeout") && run.stderr.contains("500ms"), "\(run.stderr)")
    }

    /// `capdiag -r ring.pcap*`: the shell hands over every file after the first -r.
    @Test func filesAfterTheFirstDashRAreInputsAndTheFilterFollowsThem() throws {
        let summary = try json([
            "-r", Locations.capture("lab/refused.any.pcap"), Locations.capture("lab/keepalive-race.any.pcap"), "tcp", "port", "9012",
        ])
        let capture = try #require(summary["capture"] as? [String: Any])
        let inputs = try #require(capture["inputs"] as? [[String: Any]])
        #expect(inputs.count == 2)
        #expect(capture["filter"] as? String == "tcp port 9012")
        // A file after filter words is a mistake with a hint, not a filter syntax error.
        let stray = try Locations.run(
            capdiag, ["-q", "-r", Locations.capture("lab/refused.any.pcap"), "tcp", Locations.capture("lab/keepalive-race.any.pcap")])
        #expect(stray.status == 64 && stray.stderr.contains("names a file"), "\(stray.stderr)")
    }

    @Test func reportDashIsMarkdownOnStdoutAndExtensionsIgnoreCase() throws {
        let run = try Locations.run(capdiag, ["-q", "-r", Locations.capture("lab/refused.any.pcap"), "--report", "-"])
        #expect(run.status == 0 && run.stdout.hasPrefix("# capdiag report"), "\(run.stdout.prefix(200))")
        #expect(!run.stdout.contains("\nDiagnosis\n"), "the Markdown report replaces the text report")
        let clash = try Locations.run(capdiag, ["-q", "-r", Locations.capture("lab/refused.any.pcap"), "--report", "-", "-T", "json"])
        #expect(clash.status == 64)
        let path = FileManager.default.temporaryDirectory.appending(path: "capdiag-\(UUID().uuidString).HTML").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let upper = try Locations.run(capdiag, ["-q", "-r", Locations.capture("lab/refused.any.pcap"), "--report", path])
        #expect(upper.status == 0)
        #expect(try String(contentsOfFile: path, encoding: .utf8).hasPrefix("<!DOCTYPE html>"))
    }

    /// `--upstream` takes ranges and names; one that matches nothing says so.
    @Test func upstreamRangesNamesAndMisses() throws {
        func upstreams(_ pattern: String) throws -> (names: [String], caveats: [String]) {
            let summary = try json(["-r", Locations.capture("lab/keepalive-race.any.pcap"), "--upstream", pattern])
            let diagnosis = summary["diagnosis"] as? [String: Any]
            let names = (diagnosis?["upstreams"] as? [[String: Any]])?.compactMap { JSONEndpoint.text($0["upstream"]) } ?? []
            let caveats = ((summary["capture"] as? [String: Any])?["caveats"] as? [String]) ?? []
            return (names, caveats)
        }
        #expect(try upstreams("10.77.2.0/24").names == ["10.77.2.2:9012"])
        #expect(try upstreams("10.77.2.0/24:9012").names == ["10.77.2.2:9012"])
        let miss = try upstreams("10.99.0.0/16")
        #expect(miss.names.isEmpty && miss.caveats.contains { $0.contains("--upstream 10.99.0.0/16 matches no server") }, "\(miss)")
        // A name resolves once (localhost from /etc/hosts: no network needed).
        let local = try Locations.run(capdiag, ["-q", "-r", Locations.capture("lo-refused.pcap"), "--upstream", "localhost"])
        #expect(local.status == 0, "\(local.stderr)")
        let unknown = try Locations.run(capdiag, ["-q", "-r", Locations.capture("lo-refused.pcap"), "--upstream", "no such host"])
        #expect(unknown.status == 64 && unknown.stderr.contains("CIDR"))
    }

    /// Compressed captures, as people send them around: the same analysis as the plain file;
    /// a truncated one is analysed up to the damage and says so.
    @Test func compressedCapturesReadAsThePlainFile() throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "capdiag-compressed-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // A name without .gz: the format is found from the content.
        let plain = directory.appending(path: "capture.pcap").path
        try FileManager.default.copyItem(atPath: Locations.capture("lab/keepalive-race.any.pcap"), toPath: plain)
        let expected = try Locations.run(capdiag, ["-q", "-T", "jsonl", "-r", plain]).stdout
        var tried = 0
        for (tool, suffix) in [("gzip", "gz"), ("zstd", "zst"), ("xz", "xz"), ("bzip2", "bz2")] {
            guard FileManager.default.isExecutableFile(atPath: "/usr/bin/\(tool)") else { continue }
            let packed = directory.appending(path: "capture.pcap.\(suffix)").path
            let made = try Locations.run(URL(fileURLWithPath: "/bin/sh"), ["-c", "\(tool) -c < '\(plain)' > '\(packed)'"])
            #expect(made.status == 0)
            let run = try Locations.run(capdiag, ["-q", "-T", "jsonl", "-r", packed])
            #expect(run.status == 0, "\(tool): \(run.stderr)")
            // Identical but for the input's path in the summary.
            #expect(run.stdout.replacingOccurrences(of: packed, with: plain) == expected, "\(tool)")
            tried += 1
        }
        #expect(tried >= 1, "gzip is part of every Debian system")
        let data = try Data(contentsOf: URL(fileURLWithPath: directory.appending(path: "capture.pcap.gz").path))
        let truncated = directory.appending(path: "truncated.gz").path
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: truncated))
        let cut = try json(["-r", truncated])
        let input = try #require(((cut["capture"] as? [String: Any])?["inputs"] as? [[String: Any]])?.first)
        #expect(input["stop"] as? String == "read_error")
        #expect((input["error"] as? String)?.contains("gzip failed") == true, "\(input)")
        #expect((input["packets_read"] as? Int ?? 0) > 0)
    }

    /// `-vv` shows what the library layers did (libpcap, the filter, the window); `-v` does not;
    /// usage and runtime errors share one style.
    @Test func doubleVerboseShowsTheLibrariesAndErrorsShareOneStyle() throws {
        let arguments = ["-r", Locations.capture("lab/keepalive-race.any.pcap"), "--window", "10s", "tcp", "port", "9012"]
        let debug = try Locations.run(capdiag, ["-vv"] + arguments)
        #expect(debug.stderr.contains("capdiag: debug: filter 'tcp port 9012' compiled to"), "\(debug.stderr)")
        #expect(debug.stderr.contains("capdiag: debug: opened") && debug.stderr.contains("libpcap version"))
        #expect(debug.stderr.contains("capdiag: debug: window 10s"))
        let info = try Locations.run(capdiag, ["-v"] + arguments)
        #expect(!info.stderr.contains("debug:") && info.status == 0)
        let usage = try Locations.run(capdiag, ["-r", Locations.capture("lo-refused.pcap"), "--bogus"])
        let runtime = try Locations.run(capdiag, ["-r", "/nonexistent.pcap"])
        #expect(usage.status == 64 && usage.stderr.hasPrefix("capdiag: error: Unknown option '--bogus'"), "\(usage.stderr)")
        #expect(runtime.status == 2 && runtime.stderr.hasPrefix("capdiag: error: /nonexistent.pcap"), "\(runtime.stderr)")
    }
}

/// The schema's two rules for pipelines: every number in every JSON output of every capture in
/// Captures/ (flows, summary, diagnosis, gateway logs) is an integer (`capdiag/2`), and every
/// endpoint is an object `{address, port}`, never a `"host:port"` string (`capdiag/3`).
@Suite struct SchemaRules {
    static func leaves(_ value: Any, path: String, numbers: inout [(String, NSNumber)], strings: inout [(String, String)]) {
        if let object = value as? [String: Any] {
            for (key, inner) in object { leaves(inner, path: path + "." + key, numbers: &numbers, strings: &strings) }
        } else if let array = value as? [Any] {
            for inner in array { leaves(inner, path: path + "[]", numbers: &numbers, strings: &strings) }
        } else if let number = value as? NSNumber {
            numbers.append((path, number))
        } else if let string = value as? String {
            strings.append((path, string))
        }
    }

    /// `10.0.0.1:80` or `[2001:db8::1]:80` and nothing else: an endpoint written as text.
    static func isEndpointText(_ text: String) -> Bool {
        text.wholeMatch(of: /(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:.]+\]):\d{1,5}/) != nil
    }

    @Test func everyNumberIsAnIntegerAndEveryEndpointAnObject() throws {
        let directory = Locations.captures
        var captures = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".pcap") }.map { directory.appending(path: $0).path }
        captures += try FileManager.default.contentsOfDirectory(atPath: directory.appending(path: "lab").path)
            .filter { $0.hasSuffix(".any.pcap") }.map { directory.appending(path: "lab/" + $0).path }
        let logs = Locations.captures.appending(path: "lab/gateway-logs")
        var checked = 0
        var endpoints = 0
        for capture in captures {
            var arguments = ["-q", "-T", "json", "-r", capture]
            // One run with gateway logs, so their records are checked too.
            if capture.hasSuffix("lab/keepalive-race.any.pcap") {
                arguments = ["-q", "-T", "json", "-r", logs.appending(path: "keepalive-race.any.pcap").path,
                    "--gateway-log", logs.appending(path: "keepalive-race.nginx-error.log").path,
                    "--gateway-log", logs.appending(path: "keepalive-race.nginx-access.log").path]
            }
            let run = try Locations.run(Locations.capdiagExecutable, arguments)
            let document = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8))
            var numbers: [(String, NSNumber)] = []
            var strings: [(String, String)] = []
            Self.leaves(document, path: "", numbers: &numbers, strings: &strings)
            for (path, number) in numbers {
                // A boolean reads as 0 or 1: integers too.
                #expect(!number.stringValue.contains(".") && !number.stringValue.lowercased().contains("e"), "\(capture): \(path) = \(number)")
                if path.hasSuffix(".port") { endpoints += 1 }
            }
            // The Host header and a CONNECT target are the client's text, "host:port" by HTTP's rule.
            for (path, string) in strings where !path.hasSuffix(".host") && !path.hasSuffix(".target") {
                #expect(!Self.isEndpointText(string), "\(capture): \(path) = \(string) is an endpoint written as text")
            }
            checked += numbers.count
        }
        #expect(checked > 10_000)
        #expect(endpoints > 1_000)
    }

    @Test func endpointTextSplitsAndJoins() {
        #expect(EndpointText.split("10.0.0.1:80")! == ("10.0.0.1", 80))
        #expect(EndpointText.split("[2001:db8::1]:443")! == ("2001:db8::1", 443))
        #expect(EndpointText.split("2001:db8::1") == nil)
        #expect(EndpointText.split("backend") == nil && EndpointText.split(":80") == nil && EndpointText.split("a:99999") == nil)
        #expect(EndpointText.join(address: "2001:db8::1", port: 443) == "[2001:db8::1]:443")
        #expect(EndpointText.join(address: "10.0.0.1", port: 80) == "10.0.0.1:80")
    }
}

/// The same capture gives the same output, byte for byte, run after run: nothing may depend on
/// a dictionary's iteration order (Swift seeds its hashing per process). A synthetic gateway
/// capture from the shared generator has the ties that used to flip (retries elsewhere counted
/// equally, reasons counted equally).
@Suite struct Determinism {
    @Test func threeRunsGiveTheSameBytes() throws {
        let generator = Locations.repositoryRoot.deletingLastPathComponent().appending(path: "shared/bench/gen_synth.py")
        var captures = [Locations.capture("lab/mixed.any.pcap"), Locations.capture("lab/failover.any.pcap")]
        let synthetic = FileManager.default.temporaryDirectory.appending(path: "capdiag-synth-\(UUID().uuidString).pcap")
        defer { try? FileManager.default.removeItem(at: synthetic) }
        if FileManager.default.fileExists(atPath: generator.path) {
            let made = try Locations.run(
                URL(fileURLWithPath: "/usr/bin/python3"), [generator.path, "-o", synthetic.path, "--size", "10M", "--seed", "3"])
            #expect(made.status == 0, "\(made.stderr)")
            captures.append(synthetic.path)
        }
        for capture in captures {
            let outputs = try (0..<3).map { _ in try Locations.run(Locations.capdiagExecutable, ["-q", "-T", "jsonl", "-r", capture]).stdout }
            #expect(!outputs[0].isEmpty)
            #expect(outputs[1] == outputs[0] && outputs[2] == outputs[0], "\(capture): the output changes from run to run")
        }
    }
}

/// Markdown escaped only where each construct needs it: the same rendering on GitHub, GitLab
/// and MkDocs (Python-Markdown prints `\:` and `\~` literally), and still no injected markup.
@Suite struct MarkdownEscaping {
    @Test func onlyWhatCouldStartMarkupIsEscaped() {
        #expect(Markup.markdown("keepalive_race at 10.77.2.2:9012 (nginx proxy_read_timeout)") == "keepalive_race at 10.77.2.2:9012 (nginx proxy_read_timeout)")
        #expect(Markup.markdown("_x_ and *y* and [z](u) a|b `c`") == "\\_x\\_ and \\*y\\* and \\[z\\](u) a\\|b \\`c\\`")
        #expect(Markup.markdown("~~gone~~ but ~ stays") == "\\~\\~gone\\~\\~ but ~ stays")
        #expect(!Markup.markdown("see http://evil.example/x").contains("://"))
        #expect(Markup.markdown("<script>&") == "&lt;script&gt;&amp;")
    }
}

/// A healthy capture's report is evidence ("it's not the network"): per upstream the requests,
/// the status mix and the first-byte latency percentiles, in text, JSON and the reports.
@Suite struct HealthyEvidence {
    @Test func healthyUpstreamsShowRequestsStatusesAndLatency() throws {
        let capture = Locations.capture("lab/healthy.any.pcap")
        let run = try Locations.run(Locations.capdiagExecutable, ["-q", "-T", "jsonl", "-r", capture])
        let last = try #require(run.stdout.split(separator: "\n").last)
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
        let upstream = try #require(((summary["diagnosis"] as? [String: Any])?["upstreams"] as? [[String: Any]])?.first)
        #expect(JSONEndpoint.text(upstream["upstream"]) == "10.77.2.2:9000" && upstream["statuses"] as? [String: Int] == ["200": 10])
        let p50 = try #require(upstream["latency_p50_ns"] as? Int)
        let p90 = try #require(upstream["latency_p90_ns"] as? Int)
        let p99 = try #require(upstream["latency_p99_ns"] as? Int)
        #expect(p50 > 0 && p50 <= p90 && p90 <= p99 && p99 < 1_000_000_000)
        let text = try Locations.run(Locations.capdiagExecutable, ["-q", "-r", capture]).stdout
        #expect(text.contains("10.77.2.2:9000: 10 requests in 10 connections, 200 ×10; first byte p50"), "\(text.prefix(500))")
        let markdown = try Locations.run(Locations.capdiagExecutable, ["-q", "-r", capture, "--report", "-"]).stdout
        #expect(markdown.contains("## Healthy upstreams") && markdown.contains("| 10.77.2.2:9000 | 10 / 10 | 200 ×10 |"))
    }
}

/// Ladders mark the pause that tells the story ("idle 1.067 s" before a keep-alive race), and
/// every element id in the HTML page is unique (one arrow marker per diagram).
@Suite struct LadderDetails {
    @Test func idleGapsAreMarkedAndIdsAreUnique() throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "capdiag-ladder-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let html = directory.appending(path: "r.html").path
        let run = try Locations.run(
            Locations.capdiagExecutable, ["-q", "-r", Locations.capture("lab/keepalive-race.any.pcap"), "--report", html])
        #expect(run.status == 0)
        let page = try String(contentsOfFile: html, encoding: .utf8)
        let ids = page.components(separatedBy: "id=\"").dropFirst().map { String($0.prefix { $0 != "\"" }) }
        #expect(ids.count >= 2 && Set(ids).count == ids.count, "duplicate ids: \(ids)")
        #expect(page.contains(">idle 1.0"), "the idle gap before the raced request")
        let markdown = try Locations.run(Locations.capdiagExecutable, ["-q", "-r", Locations.capture("lab/keepalive-race.any.pcap"), "--report", "-"]).stdout
        #expect(markdown.contains("idle 1.067 s"))
    }
}

/// The text diagnosis gives one line per affected upstream before the prose.
@Suite struct SummaryLines {
    @Test func oneLinePerUpstreamComesFirst() throws {
        let text = try Locations.run(Locations.capdiagExecutable, ["-q", "-r", Locations.capture("lab/keepalive-race.any.pcap")]).stdout
        let line = try #require(text.range(of: "  10.77.2.2:9012         8 of 30 failed  keepalive_race ×8\n"))
        let prose = try #require(text.range(of: "10.77.2.2:9012: 8 failed of"))
        #expect(line.lowerBound < prose.lowerBound)
    }
}

/// `-r ring0 ring1 …`: each flow names the files its frames came from with their own frame
/// numbers, so the report's tshark filter works on that file. tshark is the oracle: on each
/// file, the frames in the stated range with the flow's addresses and ports are exactly the
/// flow's packets, a connection that crosses a file boundary included.
@Suite struct SeveralInputs {
    static let tools = ["/usr/bin/editcap", "/usr/bin/tshark"]

    @Test(.enabled(if: tools.allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }, "editcap/tshark not installed (scripts/setup.sh --tests)"))
    func flowsNameTheirFilesAndFrames() throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "capdiag-ring-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // A ring of 200-packet files, as `tcpdump -C`/`editcap -c` leaves them.
        let split = try Locations.run(
            URL(fileURLWithPath: "/usr/bin/editcap"), ["-c", "200", Locations.capture("lab/keepalive-race.any.pcap"), directory.appending(path: "ring.pcap").path])
        #expect(split.status == 0, "\(split.stderr)")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted().map { directory.appending(path: $0).path }
        #expect(files.count == 3)
        let run = try Locations.run(Locations.capdiagExecutable, ["-q", "-T", "jsonl", "-r"] + files)
        let flows = try run.stdout.split(separator: "\n").compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { $0["type"] as? String == "flow" }
        #expect(flows.count > 40)
        // Per file, tshark's own frame numbers and 4-tuples.
        var packets: [String: [(frame: Int, tuple: Set<String>)]] = [:]
        for file in files {
            let fields = try Locations.run(
                URL(fileURLWithPath: "/usr/bin/tshark"),
                ["-n", "-r", file, "-Y", "tcp", "-T", "fields", "-e", "frame.number", "-e", "ip.src", "-e", "tcp.srcport", "-e", "ip.dst", "-e", "tcp.dstport"])
            packets[file] = fields.stdout.split(separator: "\n").compactMap { line in
                let f = line.split(separator: "\t").map(String.init)
                guard f.count == 5, let frame = Int(f[0]) else { return nil }
                return (frame, ["\(f[1]):\(f[2])", "\(f[3]):\(f[4])"])
            }
        }
        var spanning = 0
        for flow in flows {
            let sources = try #require(flow["sources"] as? [[String: Any]], "flow \(flow["id"] ?? "?") names no source")
            let tuple: Set<String> = [JSONEndpoint.text(flow["originator"]) ?? "", JSONEndpoint.text(flow["responder"]) ?? ""]
            var seen = 0
            for (index, source) in sources.enumerated() {
                let path = try #require(source["path"] as? String)
                let first = try #require(source["first_frame"] as? Int), last = try #require(source["last_frame"] as? Int)
                let inRange = (packets[path] ?? []).filter { $0.frame >= first && $0.frame <= last && $0.tuple == tuple }
                // Exact at the flow's first and last packet; at a file boundary the range runs to
                // the file's end or from its start (it bounds the flow's frames there).
                if index == 0 { #expect(inRange.first?.frame == first, "flow \(flow["id"] ?? "?") in \(path): \(first)-\(last)") }
                if index == sources.count - 1 { #expect(inRange.last?.frame == last, "flow \(flow["id"] ?? "?") in \(path): \(first)-\(last)") }
                seen += inRange.count
            }
            let orig = (flow["orig"] as? [String: Any])?["packets"] as? Int ?? 0, resp = (flow["resp"] as? [String: Any])?["packets"] as? Int ?? 0
            #expect(seen == orig + resp, "flow \(flow["id"] ?? "?"): tshark finds \(seen) packets, capdiag counted \(orig + resp)")
            if sources.count > 1 { spanning += 1 }
        }
        #expect(spanning >= 1, "a connection crosses a file boundary")
        // One capture: no sources (its frame numbers are the file's own).
        let single = try Locations.run(Locations.capdiagExecutable, ["-q", "-T", "jsonl", "-r", Locations.capture("lab/keepalive-race.any.pcap")])
        #expect(!single.stdout.contains("\"sources\""))
    }
}
