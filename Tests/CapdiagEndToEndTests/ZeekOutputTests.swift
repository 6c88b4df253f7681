import CapdiagCapture
import CapdiagReport
import CapdiagSession
import CapdiagTestSupport
import Foundation
import Testing

/// `-T zeek` against Zeek's log layout and against tshark's and capdiag's own facts. Zeek is
/// not installable here (Debian 12 has no `zeek` package), so the oracle is Zeek's field lists
/// (`Conn::Info`, `HTTP::Info`, `Notice::Info`), tshark for packet and byte counts, times and
/// sequence-space sizes, and `capdiag -T jsonl` for `conn_state` and `history`.
@Suite struct ZeekOutput {
    /// Zeek's log fields in declaration order (the order its JSON writer uses), `_path` first.
    static let order: [String: [String]] = [
        "conn": [
            "_path", "ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "service", "duration", "orig_bytes",
            "resp_bytes", "conn_state", "local_orig", "local_resp", "missed_bytes", "history", "orig_pkts", "orig_ip_bytes",
            "resp_pkts", "resp_ip_bytes", "tunnel_parents", "ip_proto", "community_id",
        ],
        "http": [
            "_path", "ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "trans_depth", "method", "host", "uri",
            "referrer", "version", "user_agent", "origin", "request_body_len", "response_body_len", "status_code", "status_msg",
            "info_code", "info_msg", "tags", "username", "password", "proxied", "orig_fuids", "orig_filenames",
            "orig_mime_types", "resp_fuids", "resp_filenames", "resp_mime_types",
        ],
        "notice": [
            "_path", "ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "fuid", "file_mime_type", "file_desc",
            "proto", "note", "msg", "sub", "src", "dst", "p", "n", "peer_descr", "actions", "email_dest", "suppress_for",
        ],
    ]

    /// What is wrong with one record's layout (empty: nothing).
    static func layoutProblems(_ record: JSONValue) -> [String] {
        guard let path = record["_path"]?.string, let fields = order[path] else { return ["no known _path: \(record.keys.prefix(3))"] }
        var problems: [String] = []
        if record.keys.first != "_path" { problems.append("_path is not the first field") }
        var last = -1
        for key in record.keys {
            guard let position = fields.firstIndex(of: key) else {
                problems.append("\(path): \(key) is no Zeek field")
                continue
            }
            if position <= last { problems.append("\(path): \(key) out of Zeek's order") }
            last = position
        }
        for required in ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p"] where record[required] == nil {
            problems.append("\(path): \(required) missing")
        }
        if case .fraction(_, let text) = record["ts"] {
            if text.wholeMatch(of: /-?\d+\.\d+/) == nil { problems.append("ts \(text) is not plain epoch seconds") }
        } else {
            problems.append("ts is not a double: \(String(describing: record["ts"]))")
        }
        if let uid = record["uid"]?.string, uid.wholeMatch(of: /C[0-9A-Za-z]{17}/) == nil { problems.append("uid \(uid) is not Zeek's form") }
        return problems
    }

    @Test func theLayoutCheckFails() throws {
        let good = #"{"_path":"conn","ts":1795611798.591424,"uid":"C1PFz40AuGggnZjDoS","id.orig_h":"127.0.0.1","id.orig_p":1,"id.resp_h":"127.0.0.1","id.resp_p":2,"proto":"tcp"}"#
        #expect(Self.layoutProblems(try StrictJSON.parse(good)).isEmpty)
        let bad = #"{"ts":1e9,"_path":"conn","uid":"X1","id.orig_h":"127.0.0.1","id.orig_p":1,"id.resp_h":"127.0.0.1","proto":"tcp","id.resp_p":2,"orig_packets":3}"#
        let problems = Self.layoutProblems(try StrictJSON.parse(bad))
        for expected in ["_path is not the first", "ts 1e9 is not plain", "uid X1", "conn: id.resp_p out of", "conn: orig_packets is no Zeek field"] {
            #expect(problems.contains { $0.hasPrefix(expected) }, "missed \(expected) in \(problems)")
        }
    }

    /// A packet time as Zeek holds it, from tshark's `frame.time_epoch` (nanosecond digits).
    static func zeekSeconds(_ epoch: String) -> Double? {
        let parts = epoch.split(separator: ".")
        guard let seconds = Int64(parts[0]) else { return nil }
        let digits = parts.count > 1 ? String(parts[1].prefix(9)).padding(toLength: 9, withPad: "0", startingAt: 0) : "000000000"
        guard let nanoseconds = Int64(digits) else { return nil }
        return Double(seconds) + Double(nanoseconds / 1000) / 1e6
    }

    struct Stream {
        var first: Double
        var last: Double
        /// By "address|port" of the sender.
        var packets: [String: Int] = [:]
        var ipBytes: [String: Int] = [:]
        /// Highest relative sequence number plus length of a segment with data.
        var dataEnd: [String: Int] = [:]
    }

    /// tshark's view of every TCP connection, by its endpoints and first packet time.
    static func tsharkStreams(_ path: String) throws -> [String: Stream] {
        let tshark = URL(fileURLWithPath: "/usr/bin/tshark")
        try #require(FileManager.default.isExecutableFile(atPath: tshark.path), "tshark is not installed (apt-get install tshark)")
        let result = try Locations.run(tshark, [
            "-n", "-r", path, "-Y", "tcp", "-T", "fields", "-E", "separator=/t", "-e", "frame.time_epoch", "-e", "tcp.stream",
            "-e", "ip.src", "-e", "ipv6.src", "-e", "tcp.srcport", "-e", "ip.dst", "-e", "ipv6.dst", "-e", "tcp.dstport",
            "-e", "ip.len", "-e", "ipv6.plen", "-e", "tcp.seq", "-e", "tcp.len",
        ])
        var byStream: [String: (ends: [String], stream: Stream)] = [:]
        for line in result.stdout.split(separator: "\n") {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard f.count >= 12, let time = zeekSeconds(f[0]) else { continue }
            let source = (f[2].isEmpty ? f[3] : f[2]) + "|" + f[4]
            let destination = (f[5].isEmpty ? f[6] : f[5]) + "|" + f[7]
            let ipBytes = f[8].isEmpty ? (Int(f[9]) ?? 0) + 40 : Int(f[8]) ?? 0
            var entry = byStream[f[1]] ?? ([source, destination].sorted(), Stream(first: time, last: time))
            entry.stream.last = time
            entry.stream.packets[source, default: 0] += 1
            entry.stream.ipBytes[source, default: 0] += ipBytes
            if let sequence = Int(f[10]), let length = Int(f[11]), length > 0 {
                entry.stream.dataEnd[source] = max(entry.stream.dataEnd[source] ?? 0, sequence + length)
            }
            byStream[f[1]] = entry
        }
        var streams: [String: Stream] = [:]
        for (ends, stream) in byStream.values { streams[ends.joined(separator: " ") + " @\(stream.first.bitPattern)"] = stream }
        return streams
    }

    @Test(arguments: [
        "lo-http-keepalive.pcap", "lo-refused.pcap", "lo-http-cut-rst.pcap", "lo-http-pipelining.pcap", "lo-http-chunked.pcap",
        "ns-syn-retransmits.pcap", "lab/keepalive-race.any.pcap", "lab/cut-rst.any.pcap", "lab/refused.any.pcap",
        "lo-tls-unknown-ca.pcap", "lo-dns-then-refused.pcap",
    ])
    func connLogMatchesTsharkAndCapdiag(capture: String) throws {
        let path = Locations.capture(capture)
        let records = try LogFormatRun.lines(["-q", "-T", "zeek", "-r", path])
        let flows = try LogFormatRun.lines(["-q", "-T", "jsonl", "-r", path]).filter { $0["type"]?.string == "flow" }
        let streams = try Self.tsharkStreams(path)
        for record in records { #expect(Self.layoutProblems(record).isEmpty, "\(capture): \(Self.layoutProblems(record))") }
        let conns = records.filter { $0["_path"]?.string == "conn" }
        // Flows end in the same order in both outputs.
        #expect(conns.count == flows.count)
        #expect(conns.count == streams.count, "\(capture): \(conns.count) conn records, tshark \(streams.count) streams")
        let uids = conns.compactMap { $0["uid"]?.string }
        #expect(Set(uids).count == conns.count, "uids are unique")
        for (conn, flow) in zip(conns, flows) {
            #expect(conn["community_id"] == flow["community_id"])
            #expect(conn["conn_state"] == flow["conn_state"])
            #expect(conn["history"] == flow["history"])
            #expect(conn["id.orig_h"] == flow[path: "originator.address"])
            #expect(conn["id.resp_p"] == flow[path: "responder.port"])
            #expect(conn["proto"]?.string == "tcp")
            #expect(conn["service"]?.string == ["http": "http", "tls": "ssl", "dns": "dns"][flow["application"]?.string ?? ""])
            let orig = "\(conn["id.orig_h"]?.string ?? "")|\(conn["id.orig_p"]?.integer ?? 0)"
            let resp = "\(conn["id.resp_h"]?.string ?? "")|\(conn["id.resp_p"]?.integer ?? 0)"
            let ts = try #require(conn["ts"]?.double)
            let stream = try #require(streams[[orig, resp].sorted().joined(separator: " ") + " @\(ts.bitPattern)"], "\(capture): no tshark stream for \(orig) \(resp) at \(ts)")
            #expect(conn["orig_pkts"]?.integer == Int64(stream.packets[orig] ?? 0), "\(capture) \(orig)")
            #expect(conn["resp_pkts"]?.integer == Int64(stream.packets[resp] ?? 0), "\(capture) \(resp)")
            #expect(conn["orig_ip_bytes"]?.integer == Int64(stream.ipBytes[orig] ?? 0))
            #expect(conn["resp_ip_bytes"]?.integer == Int64(stream.ipBytes[resp] ?? 0))
            let duration = stream.last - stream.first
            if duration > 0 {
                #expect(conn["duration"]?.double == duration, "\(capture): duration \(String(describing: conn["duration"])) vs \(duration)")
                // Zeek's orig_bytes: the data bytes in sequence space (no SYN or FIN octet).
                if conn["missed_bytes"]?.integer == 0, flow["history"]?.string?.hasPrefix("S") == true {
                    #expect(conn["orig_bytes"]?.integer == Int64(max(0, (stream.dataEnd[orig] ?? 1) - 1)), "\(capture) \(orig)")
                    #expect(conn["resp_bytes"]?.integer == Int64(max(0, (stream.dataEnd[resp] ?? 1) - 1)), "\(capture) \(resp)")
                }
            } else {
                #expect(conn["duration"] == nil && conn["orig_bytes"] == nil, "Zeek leaves them out at zero duration")
            }
            // http.log: one record per exchange capdiag kept, in order.
            let uid = conn["uid"]?.string
            let http = records.filter { $0["_path"]?.string == "http" && $0["uid"]?.string == uid }
            let exchanges = flow[path: "http.exchanges"]?.array ?? []
            #expect(http.count == exchanges.count)
            for (record, exchange) in zip(http, exchanges) {
                #expect(record["trans_depth"]?.integer == (exchange["index"]?.integer ?? -2) + 1)
                #expect(record["method"] == exchange["method"])
                #expect(record["uri"] == exchange["target"])
                #expect(record["host"] == exchange["host"])
                #expect(record["status_code"] == exchange["status"])
                #expect(record["response_body_len"] == exchange["delivered_body_bytes"])
                #expect(record["tags"] == .array([]))
            }
            // notice.log: the flow's medium and high verdicts.
            let notes = records.filter { $0["_path"]?.string == "notice" && $0["uid"]?.string == uid }.compactMap { $0["note"]?.string }
            let verdicts = (flow[path: "diagnosis.findings"]?.array ?? []).filter { ["medium", "high"].contains($0["severity"]?.string ?? "") }
            #expect(notes == verdicts.compactMap { $0["code"]?.string.map { "Capdiag::" + $0 } })
        }
        // Every http or notice record belongs to a conn record.
        #expect(records.allSatisfy { uids.contains($0["uid"]?.string ?? "") })
    }

    /// RapidJSON's layout of doubles (what Zeek's JSON writer uses): shortest round-trip digits,
    /// plain decimal from 1e-6 up, `.0` on whole numbers, exponent form below 1e-6.
    @Test func numbersAreWrittenAsZeekWritesThem() {
        #expect(ZeekRecord.number(1591367999.305988) == "1591367999.305988")
        #expect(ZeekRecord.number(3600) == "3600.0")
        #expect(ZeekRecord.number(0.06685185432434082) == "0.06685185432434082")
        #expect(ZeekRecord.number(0.00004887580871582031) == "0.00004887580871582031")
        #expect(ZeekRecord.number(0.000001) == "0.000001")
        #expect(ZeekRecord.number(0.0000001) == "1e-7")
        #expect(ZeekRecord.number(0.00000015) == "1.5e-7")
        #expect(ZeekRecord.number(1e21) == "1e21")
        #expect(ZeekRecord.number(123456789012345680000) == "123456789012345680000.0")
        for value in [0.1, 2.5e-5, 1795611798.591424, 7.000001, 1e-6, 3.0e-7] {
            #expect(Double(ZeekRecord.number(value)) == value, "\(value) reads back")
        }
    }

    /// A live capture's verdicts go out as notices when decided, and are not repeated when
    /// their flow ends.
    @Test func liveNoticesAreNotRepeated() throws {
        var options = SessionOptions()
        options.liveVerdicts = true
        let session = AnalysisSession(options: options)
        let buffer = TextBuffer()
        session.attach(ZeekSink(output: buffer))
        let inputs = session.readFiles(try OfflineReader(paths: [Locations.capture("lab/keepalive-race.any.pcap")], filter: nil))
        _ = session.conclude(CaptureStopped(inputs: inputs, kernel: nil, writtenFiles: []))
        let records = try buffer.text.split(separator: "\n").map { try StrictJSON.parse(String($0)) }
        let notices = records.filter { $0["_path"]?.string == "notice" }
        #expect(notices.count >= 2)
        let keys = notices.map { "\($0["uid"]?.string ?? "") \($0["note"]?.string ?? "")" }
        #expect(Set(keys).count == keys.count, "a notice twice: \(keys)")
        // Each went out before its conn record.
        for notice in notices {
            let position = try #require(records.firstIndex { $0 == notice })
            let conn = try #require(records.firstIndex { $0["_path"]?.string == "conn" && $0["uid"] == notice["uid"] })
            #expect(position < conn)
        }
        let offline = try LogFormatRun.lines(["-q", "-T", "zeek", "-r", Locations.capture("lab/keepalive-race.any.pcap")])
        #expect(offline.filter { $0["_path"]?.string == "notice" }.count == notices.count)
    }

    /// `jq` splits the stream into the per-log files Zeek writes, as the docs say.
    @Test func jqSplitsTheStreamByPath() throws {
        let jq = URL(fileURLWithPath: "/usr/bin/jq")
        try #require(FileManager.default.isExecutableFile(atPath: jq.path), "jq is not installed")
        let path = Locations.capture("lab/keepalive-race.any.pcap")
        let all = try Locations.run(Locations.capdiagExecutable, ["-q", "-T", "zeek", "-r", path]).stdout
        let file = FileManager.default.temporaryDirectory.appending(path: "capdiag-zeek-\(UUID().uuidString).json").path
        try all.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let conn = try Locations.run(jq, ["-c", "select(._path==\"conn\") | del(._path)", file])
        let lines = try conn.stdout.split(separator: "\n").map { try StrictJSON.parse(String($0)) }
        #expect(lines.count == all.split(separator: "\n").filter { $0.hasPrefix("{\"_path\":\"conn\"") }.count)
        #expect(lines.allSatisfy { $0.keys.first == "ts" && $0["conn_state"] != nil })
    }
}
