import CapdiagCapture
import CapdiagDiagnosis
import CapdiagReport
import CapdiagTestSupport
import Foundation
import Testing

/// Compares `actual` with `Golden/NAME`; `CAPDIAG_UPDATE_GOLDEN=1` rewrites the file instead.
func assertGolden(_ actual: String, named name: String, filePath: String = #filePath, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let url = URL(fileURLWithPath: filePath).deletingLastPathComponent().appending(path: "Golden/\(name)")
    if ProcessInfo.processInfo.environment["CAPDIAG_UPDATE_GOLDEN"] == "1" {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try actual.write(to: url, atomically: true, encoding: .utf8)
        return
    }
    let expected = try String(contentsOf: url, encoding: .utf8)
    #expect(actual == expected, "golden \(name) differs; rerun with CAPDIAG_UPDATE_GOLDEN=1 and review the diff", sourceLocation: sourceLocation)
}

/// A scratch directory for one test, removed afterwards by the caller.
func scratchDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appending(path: "capdiag-report-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

@Suite(.serialized) struct TicketReports {
    static let goldenCaptures = ["lab/keepalive-race.any.pcap", "lab/refused.upstream.pcap", "lo-tls-unknown-ca.pcap", "lo-http-keepalive.pcap"]

    /// The report of a capture in Captures/, with the input named relative to the repository
    /// so the output is the same on every machine.
    static func report(_ relative: String) throws -> TicketReport {
        var analysis = try analyze([Locations.captures.appending(path: relative).path])
        analysis.summary.capture.inputs[0].path = "Captures/" + relative
        return TicketReport(summary: analysis.summary, flows: analysis.flows.filter(\.isFlagged), redacted: true)
    }

    @Test(arguments: goldenCaptures)
    func markdownMatchesGolden(capture: String) throws {
        let name = capture.replacingOccurrences(of: "/", with: "_")
        try assertGolden(MarkdownReport.render(try Self.report(capture)), named: name + ".md")
    }

    @Test(arguments: goldenCaptures)
    func htmlMatchesGolden(capture: String) throws {
        let name = capture.replacingOccurrences(of: "/", with: "_")
        let html = HTMLReport.render(try Self.report(capture))
        try assertGolden(html, named: name + ".html")
        #expect(!html.contains("<script") && !html.contains("http://") && !html.contains("https://"), "self-contained, no scripts")
    }

    @Test func reportLeadsWithTheConclusionAndDrawsTheRace() throws {
        let markdown = MarkdownReport.render(try Self.report("lab/keepalive-race.any.pcap"))
        let conclusion = try #require(markdown.range(of: "## Conclusion"))
        let facts = try #require(markdown.range(of: "## Capture facts"))
        #expect(conclusion.lowerBound < facts.lowerBound)
        #expect(markdown.contains("`keepalive_race`") && markdown.contains("RST (no ACK: no socket)") || markdown.contains("|<") )
        #expect(markdown.contains("```text\n  offset"))
        #expect(markdown.contains("tshark: `ip.addr == 10.77.2.1 && tcp.port == "))
    }

    /// Exported pcaps reopen with libpcap and hold exactly the flow's packets.
    @Test func exportedFlowsHoldExactlyTheirPackets() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let capture = LabCaptures.folder.appending(path: "icmp-prohibited.any.pcap").path
        let run = try Locations.run(Locations.capdiagExecutable, [
            "-q", "-T", "json", "-r", capture, "--export", directory.path, "--export-all", "--export-payload", "all",
            "--report", directory.appending(path: "report.md").path,
        ])
        #expect(run.status == 0, "\(run.stderr)")
        let original = try analyze([capture]).flows
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".pcap") }
        #expect(files.count == original.count)
        for flow in original {
            let file = try #require(files.first { $0.hasSuffix("_flow\(flow.id).pcap") }, "flow \(flow.id) not exported")
            let exported = try analyze([directory.appending(path: file).path])
            #expect(exported.flows.count == 1)
            let copy = try #require(exported.flows.first)
            #expect(copy.orig.packets == flow.orig.packets && copy.resp.packets == flow.resp.packets)
            #expect(copy.history == flow.history && copy.connState == flow.connState)
            #expect(exported.summary.capture.packets.icmp == (flow.icmpError?.count ?? 0), "the ICMP errors tied to the flow come along")
            #expect(exported.summary.capture.packets.read == flow.orig.packets + flow.resp.packets + (flow.icmpError?.count ?? 0))
        }
        let report = try String(contentsOf: directory.appending(path: "report.md"), encoding: .utf8)
        #expect(report.contains("](") && report.contains("_destination_unavailable_flow"), "the report links the exported files")
        // Files beside the report are linked by name (their names hold only safe characters).
        for file in files { #expect(report.contains("](\(file))"), "\(file) is listed") }
    }

    /// The DNS answer that gave out the upstream's address travels with the flow it led to.
    @Test func exportCarriesTheDNSAnswerThatNamedTheUpstream() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let run = try Locations.run(Locations.capdiagExecutable, ["-q", "-r", Locations.capture("lo-dns-then-refused.pcap"), "--export", directory.path])
        #expect(run.status == 0)
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        #expect(files.count == 2 && files.allSatisfy { $0.contains("_127.0.0.2-18091_connection_refused_flow") })
        for file in files {
            let exported = try analyze([directory.appending(path: file).path])
            #expect(exported.summary.capture.packets.udp == 2, "one query and its answer")
            #expect(exported.summary.capture.packets.tcp == 2)
            #expect(exported.summary.dns?.queries == 1 && exported.summary.dns?.responses == 1)
        }
    }

    /// Credentials never reach a report, the terminal, JSON or a default export; markup and
    /// terminal escapes from the capture are neutralised in every format.
    @Test func hostileCaptureIsRedactedAndEscapedEverywhere() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let capture = Locations.capture("lo-http-hostile.pcap")
        var outputs: [String: Data] = [:]
        for format in ["text", "json", "jsonl"] {
            let run = try Locations.run(Locations.capdiagExecutable, [
                "-T", format, "-r", capture, "--report", directory.appending(path: "r.md").path,
                "--export", directory.appending(path: "exports").path,
            ])
            #expect(run.status == 0)
            outputs["stdout.\(format)"] = Data(run.stdout.utf8)
            outputs["stderr.\(format)"] = Data(run.stderr.utf8)
        }
        _ = try Locations.run(Locations.capdiagExecutable, ["-q", "-r", capture, "--report", directory.appending(path: "r.html").path])
        outputs["r.md"] = try Data(contentsOf: directory.appending(path: "r.md"))
        outputs["r.html"] = try Data(contentsOf: directory.appending(path: "r.html"))
        for file in try FileManager.default.contentsOfDirectory(atPath: directory.appending(path: "exports").path) {
            outputs[file] = try Data(contentsOf: directory.appending(path: "exports/\(file)"))
        }
        #expect(outputs.keys.filter { $0.hasSuffix(".pcap") }.count == 2)
        for (name, data) in outputs {
            let text = String(decoding: data, as: UTF8.self)
            for secret in ["SECRET-TOKEN-1", "SECRET-AUTH-2", "SECRET-COOKIE-3", "SECRET-APIKEY-4", "SECRET-SETCOOKIE-5", "SECRET-INLINE-6", "SECRET-APIKEY-7"] {
                #expect(!text.contains(secret), "\(secret) leaked into \(name)")
            }
            if !name.hasSuffix(".pcap") {
                #expect(!data.contains(0x1B), "a raw ESC from the capture reached \(name)")
            }
        }
        let html = String(decoding: outputs["r.html"] ?? Data(), as: UTF8.self)
        #expect(!html.contains("<script>alert") && !html.contains("<img src=x"))
        #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        let markdown = String(decoding: outputs["r.md"] ?? Data(), as: UTF8.self)
        // Outside code blocks (where text is shown verbatim) no markup from the capture survives.
        let prose = markdown.components(separatedBy: "```").enumerated().filter { $0.offset % 2 == 0 }.map(\.element).joined()
        #expect(!prose.contains("<script>") && !prose.contains("[a](javascript"))
        #expect(markdown.contains("\\`x\\`\\|\\[a\\]"), "backticks, pipes and brackets escaped")
        #expect(markdown.contains("masked (REDACTED)"))

        // --no-redact shows them, and the report says so.
        let shown = try Locations.run(Locations.capdiagExecutable, [
            "-q", "-r", capture, "--no-redact", "--report", directory.appending(path: "shown.md").path,
        ])
        #expect(shown.stdout.contains("SECRET-TOKEN-1"))
        let shownReport = try String(contentsOf: directory.appending(path: "shown.md"), encoding: .utf8)
        #expect(shownReport.contains("**shown** (`--no-redact`)"))
    }

    /// The HTML report in a real browser: headless Chromium loads it without errors (no
    /// blocked fetch, no script error) and the screenshot holds the diagrams.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium"), "chromium not installed (scripts/setup.sh installs it)"))
    func htmlLoadsInHeadlessChromium() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let page = directory.appending(path: "report.html")
        try HTMLReport.render(try Self.report("lab/keepalive-race.any.pcap")).write(to: page, atomically: true, encoding: .utf8)
        let shot = directory.appending(path: "shot.png")
        let common = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--user-data-dir=\(directory.appending(path: "profile").path)"]
        let screenshot = try Locations.run(
            URL(fileURLWithPath: "/usr/bin/chromium"), common + ["--window-size=1200,2400", "--screenshot=\(shot.path)", page.absoluteString])
        let png = try Data(contentsOf: shot)
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]) && png.count > 20_000, "screenshot: \(screenshot.stderr)")
        // What was drawn, read off the screenshot's pixels: the timeline's attempt bars (grey)
        // in one lane with its failed buckets (red) in them, and below it the ladders' lifelines
        // and the red arrows of the packets a verdict cites.
        let colours = try Locations.run(
            URL(fileURLWithPath: "/usr/bin/python3"),
            [Locations.repositoryRoot.appending(path: "scripts/png-colours.py").path, shot.path, "b9c7d6", "b00020", "999999"])
        let found = try colours.stdout.split(separator: "\n").map { (try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] ?? [:]).compactMapValues { $0 as? Int } }
        #expect(found.count == 3, "png-colours.py: \(colours.stderr)")
        if found.count == 3 {
            let (bars, red, lifelines) = (found[0], found[1], found[2])
            #expect((bars["pixels"] ?? 0) > 1_000, "timeline bars: \(bars)")
            #expect((bars["bottom"] ?? 0) - (bars["top"] ?? 0) < 60, "one lane of bars: \(bars)")
            #expect((red["top"] ?? .max) >= (bars["top"] ?? 0) && (red["top"] ?? .max) <= (bars["bottom"] ?? 0), "failed buckets in the lane: \(red) \(bars)")
            #expect((red["bottom"] ?? 0) > (bars["bottom"] ?? 0) + 300, "evidence arrows in the ladders below: \(red)")
            #expect((lifelines["pixels"] ?? 0) > 300 && (lifelines["bottom"] ?? 0) > (bars["bottom"] ?? 0) + 300, "ladder lifelines: \(lifelines)")
        }
        let dom = try Locations.run(URL(fileURLWithPath: "/usr/bin/chromium"), common + ["--dump-dom", page.absoluteString])
        #expect(dom.stdout.contains("class=\"ladder\"") && dom.stdout.contains("class=\"timeline\""))
        #expect(dom.stdout.components(separatedBy: "class=\"packet\"").count > 5, "the ladder has its arrows")
        // Successes are drawn, not only failures: buckets with attempts and no failure.
        #expect(dom.stdout.contains(", 0 failed</title>"), "the timeline draws successful intervals")
        #expect(dom.stdout.contains("<a href=\"#flow-5\">flow #5</a>") && dom.stdout.contains("id=\"flow-5\""), "tables link to the drawn flows")
        #expect(dom.stdout.contains("title=\"2026-11-25T14:24:05.565"), "full precision on hover")
        for problem in ["Uncaught", "Refused to", "Failed to load resource"] {
            #expect(!screenshot.stderr.contains(problem) && !dom.stderr.contains(problem), "\(problem) in chromium's log")
        }
    }
}

/// The JSON output and its documentation agree: every key capdiag writes is described in
/// docs/json-schema.md, and the schema version is the documented one.
@Suite struct JSONSchemaDocumentation {
    @Test func everyKeyInRealOutputIsDocumented() throws {
        let doc = try String(contentsOf: Locations.repositoryRoot.appending(path: "docs/json-schema.md"), encoding: .utf8)
        #expect(doc.contains("schema `capdiag/3`") && ReportBuilder.schema == "capdiag/3")
        var keys = Set<String>()
        func collect(_ value: Any) {
            if let object = value as? [String: Any] {
                for (key, inner) in object {
                    keys.insert(key)
                    collect(inner)
                }
            } else if let array = value as? [Any] {
                array.forEach(collect)
            }
        }
        for capture in ["lab/keepalive-race.any.pcap", "lab/icmp-prohibited.any.pcap", "lo-dns.pcap", "lo-tls-unknown-ca.pcap", "lab/mixed.upstream.pcap"] {
            let run = try Locations.run(Locations.capdiagExecutable, ["-q", "-T", "json", "-r", Locations.capture(capture)])
            collect(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)))
        }
        /// The key as a whole word of the document (not inside a longer name).
        func documented(_ key: String) -> Bool {
            let isNameCharacter: (Character) -> Bool = { $0.isLetter || $0.isNumber || $0 == "_" }
            var rest = doc[...]
            while let range = rest.range(of: key) {
                let before = range.lowerBound == doc.startIndex ? nil : doc[doc.index(before: range.lowerBound)]
                let after = range.upperBound == doc.endIndex ? nil : doc[range.upperBound]
                if !(before.map(isNameCharacter) ?? false) && !(after.map(isNameCharacter) ?? false) { return true }
                rest = doc[range.upperBound...]
            }
            return false
        }
        let undocumented = keys.filter { !documented($0) }
        // Keys of by_conn_state and rcodes are values (SF, NXDOMAIN), documented by example.
        let values = Set(["SF", "S0", "S1", "S2", "S3", "REJ", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SH", "SHR", "OTH", "NOERROR", "NXDOMAIN", "SERVFAIL", "REFUSED"])
        #expect(undocumented.subtracting(values).isEmpty, "undocumented keys: \(undocumented.subtracting(values).sorted())")
    }
}

