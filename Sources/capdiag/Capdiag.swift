import ArgumentParser
import CapdiagCapture
import CapdiagEngine
import CapdiagFlow
import CapdiagReport
import CapdiagWire
import Foundation
import Logging

/// Report formats (`-T`, as in tshark).
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json, jsonl
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

            Exit status: 0 the analysis ran; 2 an input could not be opened or the filter is invalid; \
            64 bad usage.
            """,
        version: "0.1.0")

    @Option(
        name: [.customShort("r"), .customLong("read-file")],
        help: ArgumentHelp("Read packets from a pcap or pcapng file. Repeat to merge several files by timestamp.", valueName: "file"))
    var readFiles: [String] = []

    @Option(
        name: [.customShort("i"), .customLong("interface")],
        help: ArgumentHelp("Capture live on an interface (not available yet).", valueName: "interface"))
    var interface: String?

    @Option(
        name: [.customShort("f"), .customLong("filter")],
        help: ArgumentHelp("BPF capture filter, compiled by libpcap (see pcap-filter(7)).", valueName: "expression"))
    var filter: String?

    @Option(
        name: [.customShort("c", allowingJoined: true), .customLong("count")],
        help: ArgumentHelp("Stop after reading this many packets.", valueName: "n"))
    var count: Int?

    @Option(name: [.customShort("T"), .customLong("format")], help: "Output format: text, json (one document) or jsonl (one flow per line, as flows end).")
    var format: OutputFormat = .text

    @Option(name: .customLong("idle-timeout"), help: ArgumentHelp("Seconds without packets after which a flow ends.", valueName: "seconds"))
    var idleTimeout: Double = 300

    @Option(name: .customLong("max-flows"), help: ArgumentHelp("Most flows tracked at once; the least recently active are evicted beyond it.", valueName: "n"))
    var maxFlows: Int = 1_000_000

    @Option(name: .customLong("list"), help: ArgumentHelp("Flows of each kind listed in the text output.", valueName: "n"))
    var listLimit: Int = 50

    @Flag(name: .customShort("n"), help: "Accepted for tcpdump compatibility; capdiag never resolves names.")
    var numeric = false

    @Flag(name: .shortAndLong, help: "More messages on stderr (-vv for debug).")
    var verbose: Int

    @Flag(name: .shortAndLong, help: "Only errors on stderr; no progress.")
    var quiet = false

    @Argument(help: ArgumentHelp("Capture filter as trailing words, tcpdump style.", valueName: "expression"))
    var expression: [String] = []

    func validate() throws {
        if interface != nil {
            throw ValidationError("live capture (-i) is not implemented yet; capture with tcpdump -w and use -r")
        }
        if readFiles.isEmpty { throw ValidationError("give at least one capture file with -r FILE") }
        if let count, count <= 0 { throw ValidationError("-c needs a positive packet count") }
        if filter != nil && !expression.isEmpty {
            throw ValidationError("give the filter either with -f or as trailing words, not both")
        }
        if idleTimeout <= 0 { throw ValidationError("--idle-timeout must be positive") }
        if maxFlows <= 0 { throw ValidationError("--max-flows must be positive") }
    }

    func run() throws {
        let level: Logger.Level = quiet ? .error : verbose >= 2 ? .debug : verbose == 1 ? .info : .notice
        LoggingSystem.bootstrap { _ in StderrLogHandler(logLevel: level) }
        let logger = Logger(label: "capdiag")

        let filterExpression = filter ?? (expression.isEmpty ? nil : expression.joined(separator: " "))
        let reader: OfflineReader
        do {
            reader = try OfflineReader(paths: readFiles, filter: filterExpression)
        } catch {
            FileHandle.standardError.write(Data("capdiag: error: \(error)\n".utf8))
            throw ExitCode(2)
        }
        for input in reader.inputs {
            logger.notice("reading from file \(input.path), link-type \(input.linkTypeName), snapshot length \(input.snapshotLength)")
        }

        var options = AnalyzerOptions()
        options.flowTable.idleTimeout = Int64(idleTimeout * 1e9)
        options.flowTable.maximumFlows = maxFlows
        var analyzer = Analyzer(options: options)
        var builder = ReportBuilder(keep: listLimit)
        let output = StandardOutput()
        var document = format == .json ? JSONDocumentWriter(write: output.write) : nil
        let progress = Progress(enabled: !quiet && isatty(STDERR_FILENO) == 1)

        func take(_ flow: TCPFlow, _ session: ProtocolSession) {
            guard format != .text else {
                builder.add(flow, session: session)
                return
            }
            let record = FlowRecord(flow, session: session)
            builder.add(record)
            if format == .json {
                document?.add(record)
            } else {
                output.write(record.jsonLine + "\n")
                output.flush()
            }
        }

        reader.read(limit: count) { metadata, linkType, bytes in
            analyzer.feed(time: metadata.timestamp, wireLength: metadata.wireLength, linkType: linkType, bytes: bytes)
            analyzer.drainFinishedFlows(take)
            progress.tick(packets: analyzer.stats.packets, flows: analyzer.flows.activeFlows)
            return true
        }
        analyzer.finish()
        analyzer.drainFinishedFlows(take)
        progress.clear()

        let inputs = reader.inputs.map { input in
            var stop = "end_of_file"
            var message: String?
            switch input.stop {
            case .readError(let text):
                stop = "read_error"
                message = text
                logger.warning("\(input.path): reading stopped after \(input.packetsRead) packets: \(text)")
            case .packetLimit: stop = "packet_limit"
            case .endOfFile, nil: break
            }
            return InputRecord(
                path: input.path, linkType: input.linkType, linkTypeName: input.linkTypeName,
                snaplen: input.snapshotLength, packetsRead: input.packetsRead, stop: stop, error: message)
        }
        for input in reader.inputs where !LinkType(dlt: input.linkType).isSupported {
            logger.warning("\(input.path): link type \(input.linkTypeName) is not decoded; its packets are counted as skipped")
        }
        let summary = builder.summary(inputs: inputs, filter: filterExpression, stats: analyzer.stats, table: analyzer.flows, dns: analyzer.dns)
        switch format {
        case .text: output.write(TextReport.render(summary: summary, builder: builder))
        case .json: document?.finish(summary)
        case .jsonl: output.write(JSONOutput.line(summary) + "\n")
        }
        output.flush()
    }
}

/// Buffered stdout through C stdio: the report only, never logs.
final class StandardOutput {
    /// A stdio stream of its own on file descriptor 1 (the C `stdout` global is not
    /// concurrency-safe to name in Swift 6).
    private let stream = fdopen(STDOUT_FILENO, "w")

    func write(_ text: String) {
        guard let stream else { return }
        fputs(text, stream)
    }

    func flush() {
        guard let stream else { return }
        fflush(stream)
    }
}

/// A status line on stderr about once a second, only when stderr is a terminal.
final class Progress {
    private let enabled: Bool
    private var lastUpdate = DispatchTime.now()
    private var shown = false

    init(enabled: Bool) { self.enabled = enabled }

    @inline(__always)
    func tick(packets: Int, flows: Int) {
        // Look at the clock only every 64K packets.
        guard enabled, packets & 0xFFFF == 0 else { return }
        let now = DispatchTime.now()
        guard now.uptimeNanoseconds - lastUpdate.uptimeNanoseconds >= 1_000_000_000 else { return }
        lastUpdate = now
        shown = true
        FileHandle.standardError.write(Data("\r\u{1B}[K\(packets) packets, \(flows) open flows".utf8))
    }

    func clear() {
        if shown { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}
