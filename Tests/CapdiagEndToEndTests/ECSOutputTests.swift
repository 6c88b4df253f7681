import CapdiagCapture
import CapdiagReport
import CapdiagSession
import CapdiagTestSupport
import Foundation
import Testing

/// `-T ecs` against the official ECS field reference: every field capdiag writes outside
/// `capdiag.` is an ECS field (vendored from elastic/ecs `generated/ecs/ecs_flat.yml` in
/// `Tests/ecs-reference/ecs-fields.tsv`) with a value of the JSON kind its ECS type takes, on
/// every capture of Captures/ and the lab; and the values say what capdiag's own JSON says.
@Suite struct ECSOutput {
    struct Field {
        var type: String
        var array: Bool
        var allowed: Set<String>?
    }

    /// The vendored reference, by flat name.
    static let reference: [String: Field] = {
        let path = Locations.repositoryRoot.appending(path: "Tests/ecs-reference/ecs-fields.tsv").path
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        var fields: [String: Field] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let columns = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard columns.count == 4 else { continue }
            fields[columns[0]] = Field(
                type: columns[1], array: columns[2] == "yes",
                allowed: columns[3] == "-" ? nil : Set(columns[3].split(separator: ",").map(String.init)))
        }
        return fields
    }()

    /// What is wrong with one output line, as sentences (empty: nothing).
    static func problems(_ line: String) -> [String] {
        let event: JSONValue
        do { event = try StrictJSON.parse(line) } catch { return ["not JSON: \(error)"] }
        guard case .object = event else { return ["not an object"] }
        var problems: [String] = []
        for required in ["@timestamp", "ecs.version", "event.kind", "event.dataset", "message"] where event[path: required] == nil {
            problems.append("\(required) missing")
        }
        for (path, value) in event.leaves() {
            if case .fraction(_, let text) = value { problems.append("\(path): \(text) is not an integer") }
            if path.hasPrefix("capdiag.") { continue }
            guard let field = reference[path] else {
                problems.append("\(path): not an ECS field (nor under capdiag.)")
                continue
            }
            var items = [value]
            if case .array(let values) = value {
                guard field.array else {
                    problems.append("\(path): an array, but ECS \(path) is not one")
                    continue
                }
                items = values
            }
            for item in items {
                if let problem = kindProblem(item, type: field.type) { problems.append("\(path): \(problem)") }
                if let allowed = field.allowed, let string = item.string, !allowed.contains(string) {
                    problems.append("\(path): \"\(string)\" is not an allowed value")
                }
            }
        }
        return problems
    }

    /// Whether a value is of the JSON kind an ECS type takes: keyword, wildcard, text, ip and
    /// date are strings (an ip an IPv4 or IPv6 address, a date ISO 8601 in UTC), long an integer.
    static func kindProblem(_ value: JSONValue, type: String) -> String? {
        switch type {
        case "keyword", "wildcard", "match_only_text", "text", "constant_keyword":
            return value.string == nil ? "\(value) is not a string (ECS \(type))" : nil
        case "ip":
            guard let text = value.string else { return "\(value) is not a string (ECS ip)" }
            var v4 = in_addr()
            var v6 = in6_addr()
            return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1 ? nil : "\(text) is not an IP address"
        case "date":
            guard let text = value.string else { return "\(value) is not a string (ECS date)" }
            let pattern = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/
            return text.wholeMatch(of: pattern) == nil ? "\(text) is not an ISO 8601 UTC time" : nil
        case "long":
            return value.integer == nil ? "\(value) is not an integer (ECS long)" : nil
        default:
            return "ECS type \(type) is not handled by this check"
        }
    }

    @Test func theReferenceIsComplete() {
        #expect(Self.reference.count >= 40)
        #expect(Self.reference["@timestamp"]?.type == "date")
        #expect(Self.reference["source.ip"]?.type == "ip")
        #expect(Self.reference["event.type"]?.array == true)
    }

    /// The check itself fails on what it must refuse.
    @Test func theCheckCatchesWhatIsNotECS() {
        #expect(Self.problems(#"{"@timestamp":"2026-11-25T13:03:17.219414000Z","ecs":{"version":"8.11.0"},"event":{"kind":"event","dataset":"d"},"message":"m"}"#).isEmpty)
        let bad = #"""
            {"@timestamp":"yesterday","ecs":{"version":8},"event":{"kind":"happening","dataset":"d","severity":1.5,"category":"network","type":["connection","exploded"]},"message":"m","source":{"ip":"10.0.0.300","port":"80"},"network":{"bytes":true},"foo":{"bar":1},"capdiag":{"ratio":0.5}}
            """#
        let found = Self.problems(bad)
        for expected in [
            "@timestamp: yesterday is not an ISO 8601", "ecs.version: integer(8) is not a string", "event.kind: \"happening\" is not an allowed",
            "event.severity: 1.5 is not an integer", "event.type: \"exploded\" is not an allowed", "source.ip: 10.0.0.300 is not an IP",
            "source.port: string(\"80\") is not an integer", "network.bytes: bool(true) is not an integer", "foo.bar: not an ECS field",
            "capdiag.ratio: 0.5 is not an integer",
        ] {
            #expect(found.contains { $0.hasPrefix(expected) }, "missed: \(expected) in \(found)")
        }
        #expect(Self.problems(#"{"event":{"kind":"event"}}"#).contains("@timestamp missing"))
        #expect(Self.problems("{\"@timestamp\": 1,}").first?.hasPrefix("not JSON") == true)
    }

    @Test(arguments: LogFormatRun.captures)
    func everyFieldIsECSOrCapdiags(path: String) throws {
        let run = try Locations.run(Locations.capdiagExecutable, ["-q", "-T", "ecs", "-r", path])
        #expect(run.status == 0, "\(run.stderr)")
        let lines = run.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count >= 2)
        for line in lines {
            let problems = Self.problems(line)
            #expect(problems.isEmpty, "\(path): \(problems.prefix(5)) in \(line.prefix(300))")
        }
    }

    @Test func everyCaptureIsChecked() {
        #expect(LogFormatRun.captures.count >= 40)
    }

    /// Each flow event says what the flow's JSON record says; the last line is the summary.
    @Test(arguments: ["lo-http-keepalive.pcap", "lo-refused.pcap", "lab/keepalive-race.any.pcap", "lo-http-pipelining.pcap", "ns-syn-retransmits.pcap", "lab/cut-rst.any.pcap"])
    func eventsSayWhatTheFlowRecordsSay(capture: String) throws {
        let path = Locations.capture(capture)
        let events = try LogFormatRun.lines(["-q", "-T", "ecs", "-r", path])
        let records = try LogFormatRun.lines(["-q", "-T", "jsonl", "-r", path])
        let flows = records.filter { $0["type"]?.string == "flow" }
        let flowEvents = events.filter { $0[path: "event.dataset"]?.string == "capdiag.flow" }
        #expect(flowEvents.count == flows.count)
        #expect(events.last?[path: "event.dataset"]?.string == "capdiag.summary")
        #expect(events.last?[path: "capdiag.summary.flows"]?.integer == records.last?[path: "flows.total"]?.integer)
        let byID = Dictionary(uniqueKeysWithValues: flows.compactMap { flow in flow["id"]?.integer.map { ($0, flow) } })
        for event in flowEvents {
            let id = try #require(event[path: "capdiag.flow_id"]?.integer)
            let flow = try #require(byID[id])
            for (ecs, ours) in [
                ("source.ip", "originator.address"), ("source.port", "originator.port"), ("source.packets", "orig.packets"),
                ("source.bytes", "orig.bytes"), ("destination.ip", "responder.address"), ("destination.port", "responder.port"),
                ("destination.packets", "resp.packets"), ("destination.bytes", "resp.bytes"), ("network.community_id", "community_id"),
                ("event.duration", "duration_ns"), ("event.start", "start"), ("event.end", "end"), ("@timestamp", "start"),
                ("capdiag.conn_state", "conn_state"), ("capdiag.history", "history"), ("capdiag.first_frame", "first_frame"),
            ] {
                #expect(event[path: ecs] != nil && event[path: ecs] == flow[path: ours], "\(capture) flow \(id): \(ecs) \(String(describing: event[path: ecs])) vs \(ours) \(String(describing: flow[path: ours]))")
            }
            #expect(event[path: "network.bytes"]?.integer == (flow[path: "orig.bytes"]?.integer ?? -1) + (flow[path: "resp.bytes"]?.integer ?? -1))
            let severity = flow[path: "diagnosis.severity"]?.string ?? "none"
            #expect(event[path: "capdiag.severity"]?.string == severity)
            #expect(event[path: "event.outcome"]?.string == (["medium", "high"].contains(severity) ? "failure" : "success"))
            let codes = (flow[path: "diagnosis.findings"]?.array ?? []).compactMap { $0["code"]?.string }
            #expect((event[path: "capdiag.verdicts"]?.array ?? []).compactMap { $0["code"]?.string } == codes)
            if !codes.isEmpty { #expect(codes.contains { event["message"]?.string?.contains($0) == true }) }
            // http.* describe the exchange the worst verdict is about, else the first one.
            if let exchanges = flow[path: "http.exchanges"]?.array, !exchanges.isEmpty {
                let index = try #require(event[path: "capdiag.http.exchange_index"]?.integer)
                let exchange = try #require(exchanges.first { $0["index"]?.integer == index })
                #expect(event[path: "http.request.method"] == exchange["method"])
                #expect(event[path: "http.response.status_code"] == exchange["status"])
                #expect(event[path: "url.original"] == exchange["target"])
                let rank = ["info": 1, "low": 2, "medium": 3, "high": 4]
                let about = (flow[path: "diagnosis.findings"]?.array ?? []).filter { $0["exchange"] != nil }
                var worst: JSONValue?
                for finding in about where worst == nil || rank[finding["severity"]?.string ?? ""]! > rank[worst?["severity"]?.string ?? ""]! {
                    worst = finding
                }
                let kept = exchanges.contains { $0["index"] == worst?["exchange"] }
                #expect(index == (kept ? worst?["exchange"]?.integer : exchanges.first?["index"]?.integer), "\(capture) flow \(id)")
                #expect(event[path: "network.protocol"]?.string == "http")
            }
        }
    }

    /// A pcap of three requests on three connections, each with different request-ID headers.
    static func tracedCapture() throws -> String {
        let requests = [
            "GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: shop.test:8080\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\nX-Request-Id: req-77\r\n\r\n",
            "GET http://api.test/v1/items HTTP/1.1\r\nHost: ignored.test\r\ntraceparent: 00-00000000000000000000000000000000-00f067aa0ba902b7-01\r\n\r\n",
            "GET /c HTTP/1.1\r\nHost: [2001:db8::1]:80\r\ntraceparent: 00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01\r\n\r\n",
        ]
        let exchanges = requests.map { (request: $0, response: "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 2\r\n\r\nno", secrets: [String]()) }
        let path = FileManager.default.temporaryDirectory.appending(path: "capdiag-traced-\(UUID().uuidString).pcap").path
        try RedactionEverywhere.pcap(exchanges).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// `trace.id` comes from a valid W3C `traceparent` only; `url.*` split from the target.
    @Test func traceIDAndURLFromTheRequest() throws {
        let path = try Self.tracedCapture()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let run = try Locations.run(Locations.capdiagExecutable, ["-q", "-T", "ecs", "-r", path])
        for line in run.stdout.split(separator: "\n") { #expect(Self.problems(String(line)).isEmpty) }
        let events = try run.stdout.split(separator: "\n").map { try StrictJSON.parse(String($0)) }
            .filter { $0[path: "event.dataset"]?.string == "capdiag.flow" }
        #expect(events.count == 3)
        let byTarget = Dictionary(uniqueKeysWithValues: events.compactMap { e in e[path: "url.original"]?.string.map { ($0, e) } })
        let first = try #require(byTarget["/a/b?x=1&y=2"])
        #expect(first[path: "trace.id"]?.string == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(first[path: "http.request.id"]?.string == "req-77")
        #expect(first[path: "url.path"]?.string == "/a/b")
        #expect(first[path: "url.query"]?.string == "x=1&y=2")
        #expect(first[path: "url.domain"]?.string == "shop.test")
        #expect(first[path: "http.response.status_code"]?.integer == 502)
        let absolute = try #require(byTarget["http://api.test/v1/items"])
        #expect(absolute[path: "trace.id"] == nil, "an all-zero trace-id is invalid")
        #expect(absolute[path: "url.scheme"]?.string == "http")
        #expect(absolute[path: "url.domain"]?.string == "api.test")
        #expect(absolute[path: "url.path"]?.string == "/v1/items")
        #expect(absolute[path: "url.query"] == nil)
        let upper = try #require(byTarget["/c"])
        #expect(upper[path: "trace.id"] == nil, "upper-case hex is invalid")
        #expect(upper[path: "url.domain"]?.string == "[2001:db8::1]")
    }

    @Test func traceparentVersions() {
        func id(_ value: String) -> String? { ECSRecord.traceID(traceparent: value) }
        #expect(id("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01") == "0af7651916cd43dd8448eb211c80319c")
        #expect(id("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra") == "0af7651916cd43dd8448eb211c80319c")
        #expect(id("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra") == nil)
        #expect(id("ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01") == nil)
        #expect(id("00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01") == nil)
        #expect(id("00-0af7651916cd43dd8448eb211c8031-b7ad6b7169203331-01") == nil)
        #expect(id(" 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01") == nil)
    }

    /// A live capture's verdicts (replayed: the session decides them as flows terminate) come
    /// as `capdiag.verdict` alerts before their flow's event, and are valid ECS too.
    @Test func liveVerdictsAreAlerts() throws {
        var options = SessionOptions()
        options.liveVerdicts = true
        let session = AnalysisSession(options: options)
        let buffer = TextBuffer()
        session.attach(ECSSink(output: buffer))
        let inputs = session.readFiles(try OfflineReader(paths: [Locations.capture("lab/keepalive-race.any.pcap")], filter: nil))
        _ = session.conclude(CaptureStopped(inputs: inputs, kernel: nil, writtenFiles: []))
        let lines = buffer.text.split(separator: "\n").map(String.init)
        for line in lines { #expect(Self.problems(line).isEmpty, "\(Self.problems(line))") }
        let events = try lines.map(StrictJSON.parse)
        let verdicts = events.enumerated().filter { $0.element[path: "event.dataset"]?.string == "capdiag.verdict" }
        #expect(verdicts.count >= 2)
        for (position, verdict) in verdicts {
            #expect(verdict[path: "event.kind"]?.string == "alert")
            let flow = try #require(verdict[path: "capdiag.flow_id"]?.integer)
            let flowEvent = try #require(events.firstIndex { $0[path: "event.dataset"]?.string == "capdiag.flow" && $0[path: "capdiag.flow_id"]?.integer == flow })
            #expect(position < flowEvent)
        }
    }

    /// The sink driven by recorded events writes what the command line prints.
    @Test func replayedEventsGiveWhatTheCLIPrints() throws {
        let path = Locations.capture("lab/keepalive-race.any.pcap")
        let (events, conclusion) = try SessionSinks.record(path)
        for (format, sink) in [("ecs", { (b: TextBuffer) -> any SessionSink in ECSSink(output: b) }), ("zeek", { ZeekSink(output: $0) })] {
            let buffer = TextBuffer()
            try SessionSinks.replay(events, conclusion, into: sink(buffer))
            let cli = try Locations.run(Locations.capdiagExecutable, ["-q", "-T", format, "-r", path])
            #expect(cli.status == 0)
            #expect(buffer.text == cli.stdout, "\(format)")
        }
    }

    @Test func optionCombinations() throws {
        let capture = Locations.capture("lo-refused.pcap")
        for format in ["ecs", "zeek"] {
            let interval = try Locations.run(Locations.capdiagExecutable, ["-i", "lo", "-T", format, "--interval", "10"])
            #expect(interval.status == 64)
            #expect(interval.stderr.contains("--interval would put rolling summary lines among the -T \(format) records"))
            let report = try Locations.run(Locations.capdiagExecutable, ["-r", capture, "-T", format, "--report", "-"])
            #expect(report.status == 64)
            #expect(report.stderr.contains("cannot go with -T \(format)"))
            // A report file and JSON Lines file beside the records leave stdout alone.
            let directory = FileManager.default.temporaryDirectory.appending(path: "capdiag-\(format)-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let lines = try LogFormatRun.lines(["-q", "-r", capture, "-T", format, "--report", directory + "/r.md"])
            #expect(!lines.isEmpty)
            #expect(FileManager.default.fileExists(atPath: directory + "/r.md"))
        }
    }

    /// The fuzzer's former crashers (an answer stamped before its request): both formats run
    /// to the end and every line is valid.
    @Test(arguments: HostileOptions.failCases)
    func formerCrashersGiveValidLines(path: String) throws {
        for format in ["ecs", "zeek"] {
            let run = try Locations.run(Locations.capdiagExecutable, ["-q", "-T", format, "-r", path])
            #expect(run.status == 0 || run.status == 2, "\(format): exit \(run.status)")
            for line in run.stdout.split(separator: "\n").map(String.init) {
                if format == "ecs" {
                    #expect(Self.problems(line).isEmpty, "\(Self.problems(line))")
                } else {
                    #expect(ZeekOutput.layoutProblems(try StrictJSON.parse(line)).isEmpty)
                }
            }
        }
    }

    /// No secret of the hostile requests survives `-T ecs` or `-T zeek`; with `--no-redact`
    /// the query secrets do appear (the check is not vacuous).
    @Test func redactedLikeEveryOtherOutput() throws {
        var rng = RedactionEverywhere.Seeded(state: 11)
        let exchanges = (0..<12).map { _ in RedactionEverywhere.exchange(&rng) }
        let path = FileManager.default.temporaryDirectory.appending(path: "capdiag-hostile-\(UUID().uuidString).pcap").path
        try RedactionEverywhere.pcap(exchanges).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        for format in ["ecs", "zeek"] {
            let redacted = try Locations.run(Locations.capdiagExecutable, ["-q", "-T", format, "-r", path])
            let leaked = exchanges.flatMap(\.secrets).filter { redacted.stdout.contains($0) }
            #expect(leaked.isEmpty, "\(format): \(leaked)")
            let clear = try Locations.run(Locations.capdiagExecutable, ["-q", "-T", format, "-r", path, "--no-redact"])
            // The second secret of each exchange is the query parameter's.
            #expect(exchanges.allSatisfy { clear.stdout.contains($0.secrets[1]) }, "\(format)")
        }
    }
}
