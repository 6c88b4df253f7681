import ArgumentParser
import CapdiagCapture
import CapdiagDiagnosis
import CapdiagEngine
import CapdiagFlow
import CapdiagProtocols
import CapdiagReport
import CapdiagSession
import CapdiagWire
import Dispatch
import Glibc
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import Synchronization

/// Report formats (`-T`, as in tshark).
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json, jsonl, ecs, zeek
}

@main
struct Capdiag: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capdiag",
        abstract: "Find what on the wire between a gateway and its upstream caused a 502.",
        discussion: """
            Reads pcap or pcapng captures through libpcap, decodes every packet, and tracks each TCP \
            connection as a flow with Zeek's conn_state and history, handshake times, resets, \
            retransmissions and capture loss.

            A capture filter can be given with -f or as trailing words, as with tcpdump:
              capdiag -r upstream.pcap tcp port 8080
            Put -- before an expression that starts with '-'.

            Every flow is scored (reset, handshake, timeout, invalid response, network quality) and \
            its failures get verdicts with evidence; the report then names, per upstream, the causes \
            of failed requests and the fix. Thresholds follow nginx's defaults; set them to the \
            gateway's own with --connect-timeout, --read-timeout and --max-header-size.

            Exit status: 0 the analysis ran (and, with --fail-on, found nothing that severe); 1 a \
            verdict at or above the --fail-on severity; 2 an input could not be opened or the filter \
            is invalid; 64 bad usage.
            """,
        version: capdiagVersion)

    @Option(
        name: [.customShort("r"), .customLong("read-file")],
        help: ArgumentHelp("Read packets from a pcap or pcapng file. Repeat to merge several files by timestamp.", valueName: "file"), completion: .file())
    var readFiles: [String] = []

    @Option(
        name: [.customShort("i"), .customLong("interface")],
        help: ArgumentHelp("Capture live on an interface ('any' for all). Stop with Ctrl-C, -c or --duration.", valueName: "interface"), completion: .shellCommand("ls /sys/class/net 2>/dev/null; echo any"))
    var interface: String?

    @Flag(name: [.customShort("D"), .customLong("list-interfaces")], help: "List the interfaces live capture can use.")
    var listInterfaces = false

    @Flag(
        name: .customLong("gateway-words"),
        help: "Print what nginx, HAProxy and Envoy log for each verdict (a Markdown table; docs/gateway-words.md), to go from a log line to the verdict and back.")
    var printGatewayWords = false

    @Option(
        name: [.customShort("s", allowingJoined: true), .customLong("snapshot-length")],
        help: ArgumentHelp("Live capture: bytes kept per packet.", valueName: "snaplen"))
    var snapshotLength: Int = 262_144

    @Option(
        name: [.customShort("B", allowingJoined: true), .customLong("buffer-size")],
        help: ArgumentHelp(
            "Live capture: kernel buffer in KiB. The default, 32 MiB, holds a few seconds of a busy link while the analysis catches up (libpcap's own is 2 MiB, a few dozen packets of 64 KiB on loopback).",
            valueName: "KiB"))
    var bufferSize: Int = 32_768

    @Flag(name: [.customShort("p"), .customLong("no-promiscuous-mode")], help: "Live capture: do not put the interface in promiscuous mode.")
    var noPromiscuous = false

    @Flag(
        name: .customLong("immediate-mode"),
        help: "Live capture: hand each packet over as it arrives instead of in kernel batches (which are at most 100 ms late). Measured to lose packets under bursts (Benchmarks/burst.sh): libpcap then gives every packet a 64 KiB slot, so -B buys far fewer packets.")
    var immediate = false

    /// The default now; still accepted so scripts written for earlier versions keep working.
    @Flag(name: .customLong("no-immediate-mode"), help: .hidden)
    var noImmediate = false

    @Option(name: .customLong("duration"), help: ArgumentHelp("Live capture: stop after this long (e.g. 90s, 5m, 1h).", valueName: "time"), transform: TimeSpan.parse)
    var duration: TimeSpan?

    @Option(name: .customLong("interval"), help: ArgumentHelp("Live capture: print a rolling summary with the verdicts so far on stdout this often (e.g. 10s).", valueName: "time"), transform: TimeSpan.parse)
    var interval: TimeSpan?

    @Option(
        name: [.customShort("w"), .customLong("write-file")],
        help: ArgumentHelp("Live capture: also write the raw packets to this pcap file.", valueName: "file"), completion: .file())
    var writeFile: String?

    @Option(
        name: [.customShort("C", allowingJoined: true), .customLong("file-size")],
        help: ArgumentHelp("With -w: start a new file after this many MB (files FILE0, FILE1, …).", valueName: "MB"))
    var fileSize: Int?

    @Option(
        name: [.customShort("W", allowingJoined: true), .customLong("file-count")],
        help: ArgumentHelp("With -w and -C or -G: keep at most this many files, reused in a ring.", valueName: "n"))
    var fileCount: Int?

    @Option(
        name: [.customShort("G", allowingJoined: true), .customLong("rotate-seconds")],
        help: ArgumentHelp(
            "With -w: start a new file every N seconds of capture (tcpdump -G). A path with strftime conversions (e.g. /var/lib/capdiag/%Y%m%d-%H%M%S.pcap, UTC) names each file by its start, and with -W only the newest files are kept; without them files are FILE0, FILE1, ….",
            valueName: "seconds"))
    var rotateSeconds: Int?

    @Option(
        name: [.customShort("Z"), .customLong("relinquish-privileges")],
        help: ArgumentHelp("Live capture: after opening the interface, run as this user (as tcpdump -Z).", valueName: "user"), completion: .shellCommand("getent passwd | cut -d: -f1"))
    var user: String?

    @Option(
        name: [.customShort("f"), .customLong("filter")],
        help: ArgumentHelp("BPF capture filter, compiled by libpcap (see pcap-filter(7)).", valueName: "expression"))
    var filter: String?

    @Option(
        name: [.customShort("c", allowingJoined: true), .customLong("count")],
        help: ArgumentHelp("Stop after reading this many packets.", valueName: "n"))
    var count: Int?

    @Option(name: [.customShort("T"), .customLong("format")], help: "Output format: text, json (one document), jsonl (one flow per line, as flows end), ecs (Elastic Common Schema events) or zeek (Zeek conn/http/notice JSON records tagged by _path).")
    var format: OutputFormat = .text

    @Option(name: .customLong("idle-timeout"), help: ArgumentHelp("Time without packets after which a flow ends (default 300s).", valueName: "time"), transform: TimeSpan.parse)
    var idleTimeout = TimeSpan(seconds: 300)

    @Option(name: .customLong("max-flows"), help: ArgumentHelp("Most flows tracked at once; the least recently active are evicted beyond it.", valueName: "n"))
    var maxFlows: Int = 1_000_000

    @Option(
        name: .customLong("reassembly-memcap"),
        help: ArgumentHelp(
            "Most memory, in MiB, all flows together may hold in out-of-order buffers (each direction also stops at 256 KiB). When it is reached, the flow that needs more gives up its oldest hole as a gap; the summary counts the hits.",
            valueName: "MB"))
    var reassemblyMemcap: Int = ReassemblyMemory.defaultLimit / 1_048_576

    @Option(
        name: .customLong("metrics-file"),
        help: ArgumentHelp(
            "Write Prometheus metrics (text exposition) to this file, atomically: every --interval (10 s by default) during a live capture, and at the end (node_exporter's textfile collector reads it).",
            valueName: "path"), completion: .file())
    var metricsFile: String?

    @Option(
        name: .customLong("metrics-listen"),
        help: ArgumentHelp("Live capture: serve Prometheus metrics at http://HOST:PORT/metrics (IPv4 HOST).", valueName: "host:port"))
    var metricsListen: String?

    @Option(
        name: .customLong("window"),
        help: ArgumentHelp(
            "Conclusions (causes per upstream, gateway roles, the flows listed) cover the flows that ended in this last stretch of capture time, so a capture running for weeks speaks of the last minutes and keeps a window's worth of records. Default: 15m for live capture, the whole capture for files ('all').",
            valueName: "time"), completion: .list(["5m", "15m", "1h", "all"]))
    var window: String?

    @Option(
        name: .customLong("report-dir"),
        help: ArgumentHelp(
            "Write ticket reports (capdiag-YYYYMMDDTHHMMSSZ.md and .html) to this directory at the end and, during a live capture, on SIGHUP and every --report-every.",
            valueName: "dir"), completion: .directory)
    var reportDirectory: String?

    @Option(name: .customLong("report-every"), help: ArgumentHelp("Live capture with --report-dir: write a report this often (e.g. 15m).", valueName: "time"), transform: TimeSpan.parse)
    var reportEvery: TimeSpan?

    @Option(name: .customLong("report-keep"), help: ArgumentHelp("With --report-dir: keep the newest N reports, deleting older ones.", valueName: "n"))
    var reportKeep: Int = 96

    @Option(
        name: .customLong("jsonl-file"),
        help: ArgumentHelp(
            "Append verdicts as they are decided, flagged flows as they end, --interval records and the final summary to this file as JSON Lines (for a log shipper). It rotates by size (FILE.1, FILE.2, …) and is reopened on SIGHUP.",
            valueName: "file"), completion: .file())
    var jsonlFile: String?

    @Option(name: .customLong("jsonl-file-size"), help: ArgumentHelp("With --jsonl-file: rotate after this many MB.", valueName: "MB"))
    var jsonlFileSize: Int = 100

    @Option(name: .customLong("jsonl-file-count"), help: ArgumentHelp("With --jsonl-file: rotated files kept besides the current one.", valueName: "n"))
    var jsonlFileCount: Int = 10

    @Option(
        name: .customLong("gateway-log"),
        help: ArgumentHelp(
            "A gateway log to join to the flows (repeatable; plain or gzip): nginx's error log and access log, HAProxy's HTTP log, Envoy's access log (text or JSON), detected from the content. Each logged failure gets the flow it describes, that flow's verdict, and whether they agree.",
            valueName: "file"), completion: .file())
    var gatewayLogs: [String] = []

    @Option(name: .customLong("list"), help: ArgumentHelp("Flows of each kind listed in the text output.", valueName: "n"))
    var listLimit: Int = 50

    @Option(name: .customLong("upstream"), help: ArgumentHelp("Treat this server as an upstream (repeatable): an address, a CIDR range (10.0.0.0/8) or a host name (resolved once), with or without :PORT; other servers are not reported as upstreams.", valueName: "host[:port]"))
    var upstreams: [String] = []

    @Option(name: .customLong("gateway"), help: ArgumentHelp("The gateway's client-facing address, range or host name, with or without :PORT (repeatable), instead of finding it from the traffic.", valueName: "host[:port]"))
    var gateways: [String] = []

    @Option(name: .customLong("connect-timeout"), help: ArgumentHelp("The gateway's connect timeout (nginx proxy_connect_timeout; default 60s).", valueName: "time"), transform: TimeSpan.parse)
    var connectTimeout = TimeSpan(seconds: 60)

    @Option(name: .customLong("read-timeout"), help: ArgumentHelp("The gateway's read timeout (nginx proxy_read_timeout; default 60s): a request unanswered this long is a timeout. Times are written as in nginx: 500ms, 60s, 5m, 1h30m.", valueName: "time"), transform: TimeSpan.parse)
    var readTimeout = TimeSpan(seconds: 60)

    @Option(name: .customLong("max-header-size"), help: ArgumentHelp("The gateway's response header buffer in bytes (nginx proxy_buffer_size, 4096 on x86-64).", valueName: "bytes"))
    var maxHeaderSize: Int = 4096

    @Option(name: .customLong("fail-on"), help: ArgumentHelp("Exit with status 1 when a verdict is at least this severe: info, low, medium or high.", valueName: "severity"), completion: .list(["info", "low", "medium", "high"]))
    var failOn: String?

    @Option(name: .customLong("report"), help: ArgumentHelp("Also write a ticket report: FILE.md (Markdown) or FILE.html (self-contained HTML with SVG diagrams); - writes the Markdown report on stdout instead of the text report.", valueName: "file"), completion: .file(extensions: ["md", "html"]))
    var reportFile: String?

    @Option(name: .customLong("export"), help: ArgumentHelp("Write each flagged flow as its own small pcap in this directory (live capture: needs -w without -W).", valueName: "dir"), completion: .directory)
    var exportDirectory: String?

    @Flag(name: .customLong("export-all"), help: "With --export: every flow, not only flagged ones.")
    var exportAll = false

    @Option(name: .customLong("export-payload"), help: ArgumentHelp("What exported packets keep of their TCP payload: headers (HTTP heads, default), none, or all.", valueName: "headers|none|all"), completion: .list(["headers", "none", "all"]))
    var exportPayload: String = "headers"

    @Option(name: .customLong("export-limit"), help: ArgumentHelp("Most flows written by --export.", valueName: "n"))
    var exportLimit: Int = 200

    @Flag(name: .customLong("no-redact"), help: "Show credentials from the capture (Authorization, Cookie, API keys, token query parameters) instead of masking them; the report says so.")
    var noRedact = false

    @Flag(name: .customShort("n"), help: "Accepted for tcpdump compatibility; capdiag never resolves names.")
    var numeric = false

    @Flag(name: .shortAndLong, help: "More messages on stderr (-vv for debug).")
    var verbose: Int

    @Flag(name: .shortAndLong, help: "Only errors on stderr; no progress.")
    var quiet = false

    @Argument(help: ArgumentHelp("Capture filter as trailing words, tcpdump style.", valueName: "expression"))
    var expression: [String] = []

    /// Every capture file: those after `-r`, then trailing words that name capture files —
    /// what a shell glob gives, `capdiag -r ring.pcap*` → `-r ring.pcap0 ring.pcap1 …`.
    var inputFiles: [String] { readFiles + trailingFiles }

    /// The leading trailing words (with `-r` given) that are existing files.
    var trailingFiles: [String] {
        guard !readFiles.isEmpty else { return [] }
        return Array(expression.prefix { isCaptureFileWord($0) })
    }

    /// The filter: `-f`, or the trailing words after any file names.
    var filterExpression: String? {
        if let filter { return filter }
        let words = expression.dropFirst(trailingFiles.count)
        return words.isEmpty ? nil : words.joined(separator: " ")
    }

    /// Parses, runs, and reports every error in one style, `capdiag: error: …` on stderr
    /// (usage errors followed by a pointer to --help), as runtime errors already are.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            let text = fullMessage(for: error)
            if code == .success {
                // --help, --version: what was asked for, on stdout.
                if !text.isEmpty { print(text) }
            } else if error is ExitCode {
                // Thrown after its message was written.
            } else {
                var message = self.message(for: error)
                if message.hasPrefix("Error: ") { message.removeFirst("Error: ".count) }
                writeStandardError("capdiag: error: \(message)\n")
                if code == .validationFailure {
                    writeStandardError("Usage: \(usageString())\n  See 'capdiag --help' for more information.\n")
                }
            }
            Glibc.exit(code.rawValue)
        }
    }

    func validate() throws {
        if listInterfaces || printGatewayWords { return }
        // A file name among the filter words: files go right after -r, the filter after them.
        if let stray = expression.dropFirst(trailingFiles.count).first(where: { isCaptureFileWord($0) }) {
            throw ValidationError(
                "'\(stray)' names a file, but it comes after filter words: put capture files right after -r (capdiag -r a.pcap b.pcap tcp port 80), or quote the filter with -f")
        }
        if interface != nil && !readFiles.isEmpty { throw ValidationError("give either -i INTERFACE or -r FILE, not both") }
        if interface == nil && readFiles.isEmpty { throw ValidationError("give a capture file with -r FILE or an interface with -i") }
        if interface == nil {
            for (flag, used) in [
                ("-w", writeFile != nil), ("--duration", duration != nil), ("--interval", interval != nil), ("-Z", user != nil),
                ("--report-every", reportEvery != nil),
            ]
            where used {
                throw ValidationError("\(flag) applies to live capture (-i) only")
            }
        }
        if (fileSize != nil || fileCount != nil || rotateSeconds != nil) && writeFile == nil { throw ValidationError("-C, -G and -W need -w FILE") }
        if fileCount != nil && fileSize == nil && rotateSeconds == nil { throw ValidationError("-W needs -C or -G") }
        if let rotateSeconds, rotateSeconds <= 0 || Double(rotateSeconds) > longestOptionSeconds {
            throw ValidationError("-G needs a number of seconds from 1 to \(Int(longestOptionSeconds))")
        }
        if let window, window != "all" && parseDuration(window) == nil {
            throw ValidationError("--window takes a time like 15m or 1h, or 'all', not '\(window)'")
        }
        if reportEvery != nil && reportDirectory == nil { throw ValidationError("--report-every needs --report-dir DIR") }
        if reportKeep <= 0 || reportKeep > 1_000_000 { throw ValidationError("--report-keep needs a count from 1 to 1000000") }
        if jsonlFileSize <= 0 || jsonlFileSize > 1_000_000 { throw ValidationError("--jsonl-file-size needs a size in MB from 1 to 1000000") }
        if jsonlFileCount < 0 || jsonlFileCount > 10_000 { throw ValidationError("--jsonl-file-count needs a count from 0 to 10000") }
        if jsonlFile == "-" { throw ValidationError("--jsonl-file writes a file; for JSON Lines on stdout use -T jsonl") }
        if immediate && noImmediate { throw ValidationError("give --immediate-mode or --no-immediate-mode, not both") }
        if let metricsListen, interface == nil || parseListen(metricsListen) == nil {
            throw ValidationError(interface == nil ? "--metrics-listen applies to live capture (-i) only" : "--metrics-listen takes IPv4HOST:PORT, not '\(metricsListen)'")
        }
        if interval != nil && format == .json {
            throw ValidationError("--interval would break the single JSON document of -T json: use -T jsonl, where intervals are records")
        }
        if interval != nil && (format == .ecs || format == .zeek) {
            throw ValidationError("--interval would put rolling summary lines among the -T \(format.rawValue) records: use --jsonl-file FILE for interval records")
        }
        if let count, count <= 0 { throw ValidationError("-c needs a positive packet count") }
        if filter != nil && expression.count > trailingFiles.count {
            throw ValidationError("give the filter either with -f or as trailing words, not both")
        }
        if let failOn, Severity(name: failOn) == nil { throw ValidationError("--fail-on takes info, low, medium or high, not '\(failOn)'") }
        for (flag, values) in [("--upstream", upstreams), ("--gateway", gateways)] {
            for value in values where EndpointPattern(value) == nil {
                throw ValidationError(
                    "\(flag) takes an address, a CIDR range or a host name that resolves, with or without :PORT (10.0.0.5:8080, 10.0.0.0/8, [2001:db8::1]:443, backend.internal:8080), not '\(value)'")
            }
        }
        if maxHeaderSize <= 0 { throw ValidationError("--max-header-size must be positive") }
        // libpcap takes the buffer size as a C int of bytes: at most 2 GiB.
        if bufferSize <= 0 || bufferSize > Int(Int32.max) / 1024 { throw ValidationError("-B needs a size in KiB from 1 to 2097151") }
        if let fileSize, fileSize <= 0 || fileSize > 1_000_000_000 { throw ValidationError("-C needs a size in MB from 1 to 1000000000") }
        if let fileCount, fileCount <= 0 || fileCount > 1_000_000 { throw ValidationError("-W needs a file count from 1 to 1000000") }
        if snapshotLength < 0 || snapshotLength > 262_144 { throw ValidationError("-s needs a snapshot length from 0 (whole packets) to 262144") }
        if listLimit < 0 { throw ValidationError("--list cannot be negative") }
        if let reportFile, reportFile != "-", ![".md", ".html", ".htm"].contains(where: { reportFile.lowercased().hasSuffix($0) }) {
            throw ValidationError("--report needs a file ending in .md or .html (or - for Markdown on stdout)")
        }
        if reportFile == "-" && format != .text {
            throw ValidationError("--report - writes the Markdown report on stdout in place of the text report: it cannot go with -T \(format.rawValue)")
        }
        if ExportPayload(rawValue: exportPayload) == nil { throw ValidationError("--export-payload takes headers, none or all") }
        if exportAll && exportDirectory == nil { throw ValidationError("--export-all needs --export DIR") }
        if exportDirectory != nil && interface != nil && (writeFile == nil || fileCount != nil) {
            throw ValidationError("--export during a live capture needs -w FILE (without -W), to read the packets back")
        }
        if exportLimit <= 0 { throw ValidationError("--export-limit must be positive") }
        // --export reads the inputs a second time: a pipe or stdin cannot be read twice.
        if exportDirectory != nil {
            for path in inputFiles where path == "-" || !isRegularFileOrMissing(path) {
                throw ValidationError("--export reads the input twice, but '\(path)' is a pipe or stdin: save it to a file first")
            }
        }
        if maxFlows <= 0 { throw ValidationError("--max-flows must be positive") }
        for path in gatewayLogs where access(path, R_OK) != 0 {
            throw ValidationError("--gateway-log \(path): \(String(cString: strerror(errno)))")
        }
        if reassemblyMemcap <= 0 || reassemblyMemcap > 1_048_576 {
            throw ValidationError("--reassembly-memcap needs a size in MiB from 1 to 1048576")
        }
    }

    func run() throws {
        let level: Logger.Level = quiet ? .error : verbose >= 2 ? .debug : verbose == 1 ? .info : .notice
        LoggingSystem.bootstrap { _ in StderrLogHandler(logLevel: level) }
        let logger = Logger(label: "capdiag")
        if listInterfaces {
            try printInterfaces()
            return
        }
        if printGatewayWords {
            print(GatewayWordsTable.markdown(), terminator: "")
            return
        }
        let options = sessionOptions()
        let session = AnalysisSession(options: options)
        let output = StandardOutput()
        let exports = exportDirectory.map {
            FlowExportSink(
                directory: $0, all: exportAll, limit: exportLimit, payload: ExportPayload(rawValue: exportPayload) ?? .headers,
                redact: options.redact)
        }
        // Files first (the report links to the exports), stdout last.
        if let exports { session.attach(exports) }
        if let reportFile {
            session.attach(TicketReportSink(path: reportFile, exports: exports, redacted: options.redact, standardOutput: output))
        }
        let reports = reportDirectory.map { ReportDirectorySink(directory: $0, keep: reportKeep, redacted: options.redact) }
        if let reports { session.attach(reports) }
        let metrics = metricsFile.map { MetricsFileSink(path: $0) }
        if let metrics { session.attach(metrics) }
        var jsonl: JSONLinesFileSink?
        if let jsonlFile {
            do {
                jsonl = JSONLinesFileSink(
                    file: try RotatingFile(path: jsonlFile, maximumBytes: Int64(jsonlFileSize) * 1_000_000, keep: jsonlFileCount))
            } catch {
                writeStandardError("capdiag: error: \(error)\n")
                throw ExitCode(2)
            }
        }
        if let jsonl { session.attach(jsonl) }
        switch format {
        case .text where reportFile == "-": break  // the Markdown report takes stdout
        case .text: session.attach(TextReportSink(output: output))
        case .json: session.attach(JSONDocumentSink(output: output))
        case .jsonl: session.attach(JSONLinesSink(output: output))
        case .ecs: session.attach(ECSSink(output: output))
        case .zeek: session.attach(ZeekSink(output: output))
        }

        let stopped = try interface.map {
            try captureLive(on: $0, session: session, output: output, sideOutputs: SideOutputs(metrics: metrics, reports: reports, jsonl: jsonl), logger: logger)
        }
            ?? readOffline(session: session, logger: logger)
        for input in stopped.inputs where !LinkType(dlt: input.linkType).isSupported {
            logger.warning("\(input.path): link type \(input.linkTypeName) is not decoded; its packets are counted as skipped")
        }
        let (conclusion, failures) = session.conclude(stopped)
        for caveat in conclusion.summary.capture.caveats where caveat.hasPrefix("--upstream") || caveat.hasPrefix("--gateway") {
            logger.warning("\(caveat)")
        }
        if let exports, !failures.contains(where: { "\($0)".hasPrefix("export") || "\($0)".hasPrefix("cannot create") }) {
            logger.notice("\(counted(exports.written.count, "flow")) exported to \(exports.directory)")
            if exports.notSelected > 0 { logger.warning("\(counted(exports.notSelected, "more flow")) not exported: raise --export-limit") }
        }
        if let reportFile, reportFile != "-", !failures.contains(where: { "\($0)".contains(reportFile) }) {
            logger.notice("report written to \(reportFile)")
        }
        if let reports, let last = reports.written.last, last.hasSuffix(".html") { logger.notice("report written to \(last)") }
        // A side output that failed is an error, but what the other outputs hold still went out.
        var errors = failures.map { "\($0)" }
        if let failure = stopped.writeFailure { errors.append("-w: \(failure); the written capture is incomplete") }
        if let failure = output.failure { errors.append("writing to standard output: \(failure)") }
        for error in errors { writeStandardError("capdiag: error: \(error)\n") }
        if !errors.isEmpty { throw ExitCode(2) }
        if let failOn, let threshold = Severity(name: failOn), let worst = session.worstSeverity, worst >= threshold {
            throw ExitCode(1)
        }
    }

    /// The analysis as the options describe it.
    func sessionOptions() -> SessionOptions {
        var options = SessionOptions()
        options.analyzer.flowTable.idleTimeout = idleTimeout.nanoseconds
        options.analyzer.flowTable.maximumFlows = maxFlows
        options.analyzer.flowTable.reassemblyMemcap = reassemblyMemcap * 1_048_576
        options.thresholds.connectTimeout = connectTimeout.nanoseconds
        options.thresholds.readTimeout = readTimeout.nanoseconds
        options.thresholds.maxHeaderSize = maxHeaderSize
        options.upstreams = upstreams.compactMap { EndpointPattern($0) }
        options.gateways = gateways.compactMap { EndpointPattern($0) }
        options.listLimit = listLimit
        options.filter = filterExpression
        options.packetLimit = count
        options.redact = !noRedact
        options.liveVerdicts = interface != nil
        options.gatewayLogs = gatewayLogs
        // Live captures conclude over the last 15 minutes unless told otherwise; files, whole.
        switch window {
        case "all": options.window = nil
        case let text?: options.window = parseDuration(text).map { Int64($0 * 1e9) }
        case nil: options.window = interface != nil ? 15 * 60 * 1_000_000_000 : nil
        }
        return options
    }

    /// `-r FILE …`: reads every file to the end.
    func readOffline(session: AnalysisSession, logger: Logger) throws -> CaptureStopped {
        let reader: OfflineReader
        do {
            reader = try OfflineReader(paths: inputFiles, filter: session.options.filter)
        } catch {
            writeStandardError("capdiag: error: \(error)\n")
            throw ExitCode(2)
        }
        for input in reader.inputs {
            logger.notice("reading from file \(input.path), link-type \(input.linkTypeName), snapshot length \(input.snapshotLength)")
        }
        let progress = Progress(enabled: !quiet && isatty(STDERR_FILENO) == 1)
        let inputs = session.readFiles(reader) { packets, flows in progress.tick(packets: packets, flows: flows) }
        progress.clear()
        for input in inputs {
            if let message = input.error { logger.warning("\(input.path): reading stopped after \(input.packetsRead) packets: \(message)") }
        }
        return CaptureStopped(inputs: inputs, kernel: nil, writtenFiles: [])
    }

    /// `-i IFACE`: captures until a signal, `-c` or `--duration`, with a status line and
    /// `--interval` summaries.
    /// Every output must be writable before the capture starts (and again after -Z dropped
    /// root): finding out at the end would lose the run. A file's directory must be writable;
    /// a directory still to be created, its nearest existing ancestor.
    func checkOutputsWritable() throws {
        let directories = [exportDirectory, reportDirectory].compactMap { $0.map { $0 + "/x" } }
        for path in [reportFile == "-" ? nil : reportFile, metricsFile, writeFile, jsonlFile].compactMap({ $0 }) + directories {
            var directory = PathText.deletingLastComponent(path)
            while !directory.isEmpty && directory != "/" && access(directory, F_OK) != 0 {
                directory = PathText.deletingLastComponent(directory)
            }
            if access(directory.isEmpty ? "." : directory, W_OK) != 0 {
                writeStandardError("capdiag: error: cannot write \(path): \(String(cString: strerror(errno)))\n")
                throw ExitCode(2)
            }
        }
    }

    /// The files a live capture keeps up to date while it runs.
    struct SideOutputs {
        var metrics: MetricsFileSink?
        var reports: ReportDirectorySink?
        var jsonl: JSONLinesFileSink?
    }

    func captureLive(
        on interface: String, session: AnalysisSession, output: StandardOutput, sideOutputs: SideOutputs, logger: Logger
    ) throws -> CaptureStopped {
        let metrics = sideOutputs.metrics
        try checkOutputsWritable()
        var server: MetricsServer?
        if let metricsListen, let (host, port) = parseListen(metricsListen) {
            do { server = try MetricsServer(host: host, port: port) } catch {
                writeStandardError("capdiag: error: \(error)\n")
                throw ExitCode(2)
            }
            logger.notice("metrics at http://\(host):\(server?.port ?? port)/metrics")
        }
        defer { server?.stop() }
        var live = LiveOptions()
        // tcpdump's -s 0 means "whole packets": libpcap's maximum.
        live.snapshotLength = snapshotLength == 0 ? 262_144 : snapshotLength
        live.bufferSize = bufferSize * 1024
        live.promiscuous = !noPromiscuous
        live.immediate = immediate && !noImmediate
        let write = writeFile.map {
            WriteOptions(path: $0, rotateBytes: fileSize.map { Int64($0) * 1_000_000 }, rotateSeconds: rotateSeconds, fileCount: fileCount)
        }
        let reader: LiveReader
        do {
            reader = try LiveReader(device: interface, options: live, filter: session.options.filter, write: write)
            if let user { try reader.dropPrivileges(to: user, handing: [jsonlFile].compactMap { $0 }) }
        } catch {
            writeStandardError("capdiag: error: \(error)\n")
            throw ExitCode(2)
        }
        // Once -Z dropped root, the outputs must be writable by that user too.
        if let user {
            do { try checkOutputsWritable() } catch {
                writeStandardError("capdiag: error: after -Z \(user): outputs must be writable by that user\n")
                throw error
            }
        }
        logger.notice("listening on \(interface), link-type \(reader.handle.dataLinkName), snapshot length \(reader.handle.snapshotLength)")
        StopSignal.install()
        HangupSignal.install()
        let progress = Progress(enabled: !quiet && isatty(STDERR_FILENO) == 1)
        let rolling = RollingLineWriter(output: output, asJSON: format == .jsonl)
        let started = DispatchTime.now().uptimeNanoseconds
        let limitNs = duration.map { UInt64($0.nanoseconds) }
        var nextRolling = interval.map { started + UInt64($0.nanoseconds) }
        let metricsEvery = UInt64(interval?.nanoseconds ?? 10_000_000_000)
        var nextMetrics = started
        var stoppedBy = "interrupted"
        let reportEveryNs = reportEvery.map { UInt64($0.nanoseconds) }
        var nextReport = reportEveryNs.map { started + $0 }
        let stopped = session.readLive(
            reader, interface: interface,
            shouldStop: {
                if StopSignal.requested { return true }
                if let limitNs, DispatchTime.now().uptimeNanoseconds - started >= limitNs {
                    stoppedBy = "duration"
                    return true
                }
                return false
            },
            stoppedBy: { stoppedBy },
            periodic: { tick in
                progress.tick(
                    packets: tick.packets, flows: tick.openFlows, force: true,
                    extra: "\(tick.flagged) flagged\(causeCounts(tick.verdicts)), \(tick.kernelDrops) dropped by the kernel")
                let now = DispatchTime.now().uptimeNanoseconds
                let hangup = HangupSignal.take()
                if hangup {
                    sideOutputs.jsonl?.file.reopen()
                    if sideOutputs.reports == nil && sideOutputs.jsonl == nil { logger.notice("SIGHUP: nothing to write (see --report-dir, --jsonl-file)") }
                }
                if let reports = sideOutputs.reports, hangup || nextReport.map({ now >= $0 }) == true {
                    let state = session.liveState(reader, interface: interface, stop: "running")
                    do {
                        let files = try reports.write(session.interimConclusion(state))
                        logger.notice("report written to \(files.last ?? reports.directory)")
                    } catch {
                        logger.error("\(error)")
                    }
                    if let every = reportEveryNs { nextReport = now + every }
                }
                if (metrics != nil || server != nil) && now >= nextMetrics {
                    session.refreshListeners()
                    let text = MetricsExposition.render(session.metricsSnapshot(kernelDropped: tick.kernelDrops))
                    server?.update(text)
                    // A failed write here shows again, as an error, at the final write.
                    try? metrics?.write(text)
                    nextMetrics = now + metricsEvery
                }
                if let next = nextRolling, now >= next {
                    rolling.rollingLine(tick, builder: session.builder)
                    sideOutputs.jsonl?.interval(RollingLineWriter.record(tick, builder: session.builder))
                    nextRolling = next + UInt64(interval?.nanoseconds ?? 1_000_000_000)
                }
            })
        progress.clear()
        if let message = reader.stop?.message { logger.warning("\(interface): capture stopped: \(message)") }
        if let kernel = stopped.kernel, kernel.dropped + kernel.interfaceDropped > 0 {
            logger.warning("\(kernel.dropped) packets dropped by the kernel, \(kernel.interfaceDropped) by the interface: conclusions may be incomplete")
        }
        for file in stopped.writtenFiles { logger.notice("packets written to \(file)") }
        return stopped
    }

    private func printInterfaces() throws {
        do {
            for (index, device) in try PcapHandle.interfaces().enumerated() {
                var line = "\(index + 1).\(device.name)"
                if let description = device.description { line += " (\(description))" }
                var flags: [String] = []
                if device.isUp { flags.append("Up") }
                if device.isLoopback { flags.append("Loopback") }
                if !flags.isEmpty { line += " [\(flags.joined(separator: ", "))]" }
                if !device.addresses.isEmpty { line += " " + device.addresses.joined(separator: " ") }
                print(line)
            }
        } catch {
            writeStandardError("capdiag: error: \(error)\n")
            throw ExitCode(2)
        }
    }
}

/// `90s`, `5m`, `1h`, `250ms` or plain seconds.
/// " (3 keepalive_race, 1 connection_refused)" for the status line, or "".
func causeCounts(_ counts: [String: Int]) -> String {
    guard !counts.isEmpty else { return "" }
    let parts = counts.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.prefix(3).map { "\($0.value) \($0.key)" }
    return " (" + parts.joined(separator: ", ") + ")"
}

/// A time as nginx writes it, so a value can be pasted from the gateway's configuration:
/// `500ms`, `60s`, `5m`, `1h`, `1d`, `1w`, combined as `1m30s` or `1h 30m`; a plain number is
/// seconds (`2.5`). Within a second and a year (see `longestOptionSeconds`).
func parseDuration(_ text: String) -> Double? {
    let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400), ("w", 604_800)]
    if !text.contains(where: \.isLetter) {
        guard let value = Double(text) else { return nil }
        return secondsInRange(value) ? value : nil
    }
    var total = 0.0
    var rest = Substring(text)
    while !rest.isEmpty {
        rest = rest.drop { $0 == " " }
        let number = rest.prefix { $0.isNumber || $0 == "." }
        guard !number.isEmpty, let value = Double(number) else { return nil }
        rest = rest.dropFirst(number.count)
        guard let (unit, scale) = units.first(where: { rest.hasPrefix($0.0) }) else { return nil }
        rest = rest.dropFirst(unit.count)
        total += value * scale
        rest = rest.drop { $0 == " " }
    }
    return secondsInRange(total) ? total : nil
}

/// A time option (`--read-timeout 60s`): nginx's syntax, see `parseDuration`.
struct TimeSpan: ExpressibleByArgument, CustomStringConvertible {
    var seconds: Double

    init(seconds: Double) { self.seconds = seconds }

    init?(argument: String) {
        guard let seconds = parseDuration(argument) else { return nil }
        self.seconds = seconds
    }

    var nanoseconds: Int64 { Int64(seconds * 1e9) }

    /// For `@Option(transform:)`: the message says what a time looks like.
    static func parse(_ text: String) throws -> TimeSpan {
        guard let span = TimeSpan(argument: text) else {
            throw ValidationError("a time as nginx writes it (500ms, 60s, 5m, 1h30m; a plain number is seconds), from 1 ms to a year")
        }
        return span
    }

    var description: String {
        seconds == seconds.rounded() ? "\(Int(seconds))s" : "\(Int((seconds * 1000).rounded()))ms"
    }
}

/// The longest time any option takes: a year. Longer values (and nan, infinities, zero and
/// negatives) are typing mistakes, and past about 292 years they no longer fit the
/// nanosecond counters every timing is kept in.
let longestOptionSeconds = 366.0 * 86_400

func secondsInRange(_ value: Double) -> Bool {
    value.isFinite && value > 0 && value <= longestOptionSeconds
}

/// `HOST:PORT` for `--metrics-listen` (IPv4 host).
func parseListen(_ text: String) -> (String, UInt16)? {
    guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else { return nil }
    let host = String(text[..<colon])
    var address = in_addr()
    return inet_pton(AF_INET, host, &address) == 1 ? (host, port) : nil
}

/// A word that is a capture file rather than a filter word: an existing regular file whose
/// name has a dot or a slash (no BPF keyword has either; `port 80` or `tcp` in the current
/// directory stay filter words).
func isCaptureFileWord(_ word: String) -> Bool {
    guard word.contains(".") || word.contains("/") else { return false }
    var info = stat()
    return stat(word, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
}

/// Whether `path` is a regular file, or does not exist (opening it will say so).
func isRegularFileOrMissing(_ path: String) -> Bool {
    var info = stat()
    guard stat(path, &info) == 0 else { return true }
    return (info.st_mode & S_IFMT) == S_IFREG
}

/// Buffered stdout through C stdio: the report only, never logs.
final class StandardOutput: TextOutput {
    /// A stdio stream of its own on file descriptor 1 (the C `stdout` global is not
    /// concurrency-safe to name in Swift 6).
    private let stream = fdopen(STDOUT_FILENO, "w")
    /// The first write error (a full disk, a closed pipe): the output is incomplete.
    private(set) var failure: String?

    func write(_ text: String) {
        guard let stream else { return }
        if fputs(text, stream) < 0 { noteFailure() }
    }

    func flush() {
        guard let stream else { return }
        if fflush(stream) != 0 || ferror(stream) != 0 { noteFailure() }
    }

    private func noteFailure() {
        if failure == nil { failure = String(cString: strerror(errno)) }
    }
}

/// A status line on stderr about once a second, only when stderr is a terminal.
final class Progress {
    private let enabled: Bool
    private var lastUpdate = DispatchTime.now()
    private var shown = false

    init(enabled: Bool) { self.enabled = enabled }

    @inline(__always)
    func tick(packets: Int, flows: Int, force: Bool = false, extra: String = "") {
        // Look at the clock only every 64K packets (or when a live capture is idle).
        guard enabled, force || packets & 0xFFFF == 0 else { return }
        let now = DispatchTime.now()
        guard now.uptimeNanoseconds - lastUpdate.uptimeNanoseconds >= 1_000_000_000 else { return }
        lastUpdate = now
        shown = true
        let tail = extra.isEmpty ? "" : ", " + extra
        writeStandardError("\r\u{1B}[K\(packets) packets, \(flows) open flows\(tail)")
    }

    func clear() {
        if shown { writeStandardError("\r\u{1B}[K") }
    }
}

/// SIGHUP during a live capture: write a report now (`--report-dir`) and reopen the
/// `--jsonl-file` (after an outside logrotate).
enum HangupSignal {
    static let pending = Atomic<Bool>(false)

    /// Whether a SIGHUP arrived since the last call.
    static func take() -> Bool { pending.exchange(false, ordering: .relaxed) }

    static func install() {
        let handler: @convention(c) (Int32) -> Void = { _ in HangupSignal.pending.store(true, ordering: .relaxed) }
        signal(SIGHUP, handler)
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGHUP)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }
}

/// Ctrl-C and SIGTERM: the first asks the capture to stop and report; the second exits at once.
enum StopSignal {
    static let count = Atomic<Int>(0)

    static var requested: Bool { count.load(ordering: .relaxed) > 0 }

    static func install() {
        let handler: @convention(c) (Int32) -> Void = { _ in
            if StopSignal.count.add(1, ordering: .relaxed).newValue >= 2 { _exit(130) }
        }
        signal(SIGINT, handler)
        signal(SIGTERM, handler)
        // A parent may have started capdiag with these signals blocked (test runners, some
        // supervisors); unblock them so Ctrl-C and SIGTERM always reach the handler.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }
}

/// Writes to file descriptor 2 directly (messages and the status line; never buffered).
func writeStandardError(_ text: String) {
    var bytes = Array(text.utf8)
    bytes.withUnsafeMutableBytes { buffer in
        var offset = 0
        while offset < buffer.count {
            let written = write(STDERR_FILENO, buffer.baseAddress! + offset, buffer.count - offset)
            if written < 0 && errno == EINTR { continue }
            if written <= 0 { return }
            offset += written
        }
    }
}
