import CapdiagGatewayLogs
import CapdiagTestSupport
import Foundation
import Testing

/// Files a reader must survive: mixed formats, binary, NULs, invalid UTF-8, a 10 MB line, gzip
/// cut short, corrupt or followed by junk. Good lines still come out; bad ones are counted.
@Suite struct HostileInput {
    static let nginxError = """
        2026/11/25 14:24:05 [error] 1234#1234: *45 upstream prematurely closed connection while reading response \
        header from upstream, client: 10.77.1.2, server: _, request: "POST /x HTTP/1.1", upstream: \
        "http://10.77.2.2:9012/x", host: "10.77.1.1:8012"
        """
    static let nginxAccess = """
        10.77.1.2:40001 [2026-11-25T14:24:05+00:00] msec=1795616645.120 "GET /a HTTP/1.1" 502 \
        upstream_addr="10.77.2.2:9001" upstream_status="502" upstream_connect_time="-" upstream_header_time="-" \
        upstream_response_time="0.000" request_time=0.001 request_id=abc
        """
    static let combined = #"10.77.1.2 - - [25/Nov/2026:14:24:05 +0000] "GET /c HTTP/1.1" 502 157 "-" "curl/7.88.1""#
    static let haproxy = """
        10.77.1.2:45982 [25/Nov/2026:14:24:05.123] fe be/s1 0/0/0/-1/1 502 209 SH-- 1/1/0/0/0 10.77.2.1:40242 \
        "GET /h HTTP/1.1"
        """
    static let haproxySyslog = """
        <134>Nov 25 14:24:05 lb1 haproxy[2601]: 10.77.1.2:45986 [25/Nov/2026:14:24:05.135] fe be/s1 0/0/-1/-1/3006 \
        503 217 - - SC-- 1/1/0/0/3 0/0 "GET /h2 HTTP/1.1"
        """
    static let haproxyNotice = "[NOTICE]   (2601) : New worker (2603) forked"
    static let envoy = """
        [2016-04-15T20:17:00.310Z] "POST /api/v1/locations HTTP/2" 204 - 154 0 226 100 "10.0.35.28" "nsq2http" \
        "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2" "locations" "tcp://10.0.2.1:80"
        """
    static let envoyJSON =
        #"{"start_time":"2020-11-25T21:26:18.409Z","response_code":503,"response_flags":"UF,URX","upstream_host":"10.44.1.27:80"}"#
    static let good = [nginxError, nginxAccess, combined, haproxy, haproxySyslog, envoy, envoyJSON]

    static func temporaryFile(_ bytes: [UInt8], suffix: String = ".log") throws -> String {
        let url = FileManager.default.temporaryDirectory.appending(path: "capdiag-gwlogs-\(UUID().uuidString)\(suffix)")
        try Data(bytes).write(to: url)
        return url.path
    }

    static func text(_ lines: [String]) -> [UInt8] { Array((lines.joined(separator: "\n") + "\n").utf8) }

    /// `gzip -c -n` of `bytes`.
    static func gzip(_ bytes: [UInt8]) throws -> [UInt8] {
        let input = try temporaryFile(bytes)
        defer { try? FileManager.default.removeItem(atPath: input) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/gzip")
        process.arguments = ["-c", "-n", input]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        return Array(data)
    }

    static func read(_ bytes: [UInt8]) throws -> GatewayLogFile {
        let path = try temporaryFile(bytes)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try GatewayLogReader(path: path).read()
    }

    @Test func mixedFormatsInOneFile() throws {
        var lines = Self.good
        lines.insert("", at: 2)
        lines.insert(Self.haproxyNotice, at: 4)
        lines.insert("this is not a gateway log line", at: 6)
        var bytes = Self.text(lines)
        bytes += Array((Self.haproxy.replacingOccurrences(of: "/h ", with: "/crlf ") + "\r\n").utf8)
        bytes += Array(Self.nginxError.utf8)  // no newline at the end
        let file = try Self.read(bytes)
        #expect(file.stats.lines == 12)
        #expect(file.entries.count == 9)
        #expect(file.stats.blank == 1)
        #expect(file.stats.ignored == 1)
        #expect(file.stats.bad == 1)
        #expect(file.stats.badExamples.map(\.lineNumber) == [7])
        #expect(file.stats.badExamples.first?.reason == .unrecognized)
        #expect(
            file.entries.map(\.format) == [
                .nginxError, .nginxAccess, .nginxCombined, .haproxy, .haproxy, .envoyText, .envoyJSON, .haproxy,
                .nginxError,
            ])
        #expect(file.stats.formats[.haproxy] == 3)
        #expect(file.entries[7].request?.target == "/crlf")
        #expect(file.entries[7].request?.version == "HTTP/1.1", "the \\r is dropped")
        #expect(file.entries.map(\.lineNumber) == [1, 2, 4, 6, 8, 9, 10, 11, 12])
    }

    @Test func aTenMegabyteLineIsSkippedNotBuffered() throws {
        var bytes = Array((Self.nginxError + "\n").utf8)
        bytes += Array("2026/11/25 14:24:05 [error] 1#1: *1 ".utf8)
        bytes += [UInt8](repeating: 0x61, count: 10 * 1024 * 1024)
        bytes += Array(("\n" + Self.haproxy + "\n").utf8)
        bytes += [UInt8](repeating: 0x28, count: 10 * 1024 * 1024)  // a last over-long line without newline
        let start = ContinuousClock.now
        let file = try Self.read(bytes)
        #expect(ContinuousClock.now - start < .seconds(10))
        #expect(file.entries.map(\.format) == [.nginxError, .haproxy])
        #expect(file.stats.bad == 2)
        #expect(file.stats.tooLong == 2)
        #expect(file.stats.badExamples.map(\.lineNumber) == [2, 4])
        #expect(file.stats.badExamples.allSatisfy { $0.reason == .tooLong })
        #expect(file.entries[1].lineNumber == 3)
    }

    /// Lines under the limit built to make a careless parser quadratic: each reads in well under
    /// a second (the debug build reads 64 KiB of plain text in milliseconds).
    static let adversarial: [String] = [
        "2026/11/25 14:24:05 [error] 1#1: *1 " + String(repeating: "(1: ", count: 15_000),
        "2026/11/25 14:24:05 [error] 1#1: *1 x" + String(repeating: ", client: 10.0.0.1", count: 3_000),
        "2026/11/25 14:24:05 [error] 1#1: *1 x, client: 10.0.0.1, server: a, request: \""
            + String(repeating: "\", host: ", count: 6_000),
        String(repeating: " [", count: 30_000),
        "10.0.0.1:1 [25/Nov/2026:14:24:05.123] fe b/s 1/1/1/1/1 200 1 " + String(repeating: "{", count: 30_000),
        "{" + String(repeating: "\"a\":[", count: 10_000),
        "{\"start_time\":\"" + String(repeating: "\\u0041", count: 10_000) + "\"}",
        String(repeating: "upstream_addr=", count: 4_000),
        "[2016-04-15T20:17:00.310Z] \"" + String(repeating: "\\\"", count: 30_000),
    ]

    @Test(arguments: adversarial.indices)
    func adversarialLinesStayLinear(index: Int) throws {
        let line = Self.adversarial[index]
        #expect(line.utf8.count > 30_000 && line.utf8.count < 65_536)
        let start = ContinuousClock.now
        _ = GatewayLogParser.parse(line: line)
        #expect(ContinuousClock.now - start < .seconds(1))
    }

    @Test func binaryNULsAndInvalidUTF8() throws {
        var random = SplitMix(state: 0x5eed)
        var bytes = (0..<300_000).map { _ in UInt8.random(in: 0...255, using: &random) }
        bytes += Array(("\n" + Self.haproxy + "\n").utf8)
        bytes += (0..<300_000).map { _ in UInt8.random(in: 0...255, using: &random) }
        bytes += Array(("\nGET / HTTP/1.1\u{0}\u{0}\n").utf8)
        // nginx quotes an upstream's bytes: invalid UTF-8 in a message is kept, repaired.
        bytes +=
            Array("2026/11/25 14:24:05 [error] 1#1: *2 upstream sent invalid header: \"".utf8) + [0xFF, 0xFE]
            + Array(
                "\" while reading response header from upstream, client: 10.77.1.2, server: , request: \"GET /u HTTP/1.1\", upstream: \"http://10.77.2.2:9007/u\", host: \"h\"\n"
                    .utf8)
        let file = try Self.read(bytes)
        #expect(file.stats.bad > 0)
        let haproxy = file.entries.filter { $0.format == .haproxy && $0.request?.target == "/h" }
        #expect(haproxy.count == 1)
        let nginx = try #require(file.entries.first { $0.request?.target == "/u" })
        #expect(nginx.gatewayWords?.contains("\u{FFFD}") == true)
        #expect(nginx.upstream?.description == "10.77.2.2:9007")
        #expect(GatewayVocabulary.candidates(for: nginx) == ["invalid_response"])
        #expect(file.stats.badExamples.count <= 5)
        #expect(GatewayLogParser.parse(line: [0x47, 0x00, 0x54]) == .bad(.binary, format: nil))
    }

    @Test func gzipIsDetectedByItsMagicBytes() throws {
        let plain = Self.text(Self.good)
        let compressed = try Self.gzip(plain)
        let path = try Self.temporaryFile(compressed, suffix: ".log")  // no .gz: detected from content
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = try GatewayLogReader(path: path).read()
        let reference = try Self.read(plain)
        #expect(file.stats.compressed)
        #expect(!reference.stats.compressed)
        #expect(file.stats.problem == nil)
        #expect(file.stats.bytes == Int64(plain.count))
        #expect(file.entries.map(\.rawLine) == reference.entries.map(\.rawLine))
        #expect(file.entries.count == Self.good.count)
        // Members one after another (cat a.gz b.gz) are one file.
        let twice = try Self.read(compressed + compressed)
        #expect(twice.entries.count == 2 * Self.good.count)
        #expect(twice.stats.problem == nil)
        // Junk after the stream: the lines are kept, the junk reported.
        let junk = try Self.read(compressed + Array("not gzip".utf8))
        #expect(junk.entries.count == Self.good.count)
        #expect(junk.stats.problem?.contains("not gzip") == true)
    }

    @Test func truncatedGzipKeepsTheLinesBeforeTheCut() throws {
        var lines: [String] = []
        var random = SplitMix(state: 7)
        for index in 0..<4000 {
            lines.append(Self.haproxy.replacingOccurrences(of: "/h ", with: "/\(index)-\(random.next()) "))
        }
        let compressed = try Self.gzip(Self.text(lines))
        #expect(compressed.count > 20_000)
        let half = try Self.read(Array(compressed.prefix(compressed.count / 2)))
        #expect(half.stats.compressed)
        #expect(half.stats.problem?.contains("truncated") == true)
        #expect(half.entries.count > 500 && half.entries.count < 4000)
        #expect(half.stats.bad <= 1, "at most the line cut in the middle")
        // Every cut of a small file: never a crash, never more than the whole.
        let small = try Self.gzip(Self.text(Self.good))
        for length in 0..<small.count {
            let file = try Self.read(Array(small.prefix(length)))
            #expect(file.entries.count <= Self.good.count)
            if length >= 2 { #expect(file.stats.problem != nil, "cut at \(length)") }
        }
        // Corrupt bytes in the middle of the stream.
        var corrupt = compressed
        for index in stride(from: corrupt.count / 3, to: corrupt.count / 3 + 64, by: 1) { corrupt[index] ^= 0x5A }
        let damaged = try Self.read(corrupt)
        #expect(damaged.stats.problem != nil)
        #expect(damaged.entries.count < 4000)
    }

    @Test func missingEmptyAndStoppedEarly() throws {
        do {
            _ = try GatewayLogReader(path: "/nonexistent/capdiag/gateway.log").read()
            Issue.record("a missing file was read")
        } catch {
            #expect(error.function == "open")
            #expect(error.reason == "No such file or directory")
        }
        let empty = try Self.read([])
        #expect(empty.stats.lines == 0 && empty.entries.isEmpty && empty.stats.problem == nil)
        let path = try Self.temporaryFile(Self.text(Self.good))
        defer { try? FileManager.default.removeItem(atPath: path) }
        var seen = 0
        let stats = try GatewayLogReader(path: path).forEachEntry { _ in
            seen += 1
            return seen < 2
        }
        #expect(seen == 2)
        #expect(stats.entries == 2)
    }

    /// Numbers past Int64 once scaled to nanoseconds are dropped, not trapped on.
    @Test func hugeNumbersDoNotOverflow() throws {
        let envoy = GatewayLogParser.parse(line: """
            [2016-04-15T20:17:00.310Z] "GET / HTTP/1.1" 503 UF 0 0 999999999999999999 999999999999999999 "-" "-" "-" "-" "-"
            """)
        guard case .entry(let envoyEntry) = envoy else { Issue.record("not read"); return }
        #expect(envoyEntry.requestDuration == nil && envoyEntry.envoy?.upstreamServiceTime == nil)
        let haproxy = GatewayLogParser.parse(
            line: "10.0.0.1:1 [25/Nov/2026:14:24:05.123] fe b/s 0/0/0/0/999999999999999999 200 1 ---- 1/1/1/1/0 \"GET / HTTP/1.1\"")
        guard case .entry(let haproxyEntry) = haproxy else { Issue.record("not read"); return }
        #expect(haproxyEntry.haproxy?.totalTime == 999_999_999_999_999_999 && haproxyEntry.requestDuration == nil)
        let nginx = GatewayLogParser.parse(
            line: "10.0.0.1:1 msec=99999999999.999 \"GET / HTTP/1.1\" 200 upstream_addr=\"-\" request_time=99999999999.999")
        guard case .entry(let nginxEntry) = nginx else { Issue.record("not read"); return }
        #expect(nginxEntry.time == nil && nginxEntry.requestDuration == nil && nginxEntry.upstreamAttempts.isEmpty)
    }

    /// Every prefix of real lines (the first of each recorded log): no trap, and only the whole
    /// line gives the whole entry.
    @Test func everyPrefixOfRealLines() throws {
        var lines: [String] = []
        for file in try FileManager.default.contentsOfDirectory(atPath: GatewayLogsLabel.folder.path) where file.hasSuffix(".log") {
            let text = try String(contentsOfFile: GatewayLogsLabel.path(file), encoding: .utf8)
            lines += text.split(separator: "\n").prefix(2).map(String.init)
        }
        #expect(lines.count >= 40)
        for line in lines {
            let bytes = Array(line.utf8)
            guard case .entry(let whole) = GatewayLogParser.parse(line: bytes) else {
                Issue.record("not read: \(line)")
                continue
            }
            for length in 0..<bytes.count {
                if case .entry(let partial) = GatewayLogParser.parse(line: bytes.prefix(length)) {
                    #expect(partial != whole)
                }
            }
        }
    }

    @Test func rawLinesAreBounded() throws {
        let long = Self.nginxError.replacingOccurrences(
            of: "POST /x", with: "POST /" + String(repeating: "x", count: 5000))
        var limits = GatewayLogReader.Limits()
        limits.rawLineBytes = 100
        let path = try Self.temporaryFile(Self.text([long]))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = try GatewayLogReader(path: path, limits: limits).read()
        let entry = try #require(file.entries.first)
        #expect(entry.rawLine.utf8.count == 100)
        #expect(entry.rawLineTruncated)
        #expect(entry.request?.target.utf8.count == 5001, "parsing sees the whole line")
    }
}
