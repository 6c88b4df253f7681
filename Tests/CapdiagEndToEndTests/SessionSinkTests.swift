import CapdiagCapture
import CapdiagDiagnosis
import CapdiagReport
import CapdiagSession
import CapdiagTestSupport
import Foundation
import Testing

/// Outputs are sinks of one analysis session: each can be driven with a recorded event
/// sequence, without libpcap or the command line, and gives what the CLI prints.
@Suite struct SessionSinks {
    /// Records the events of a real capture once.
    static func record(_ capture: String) throws -> (events: [FlowEnded], conclusion: SessionConclusion) {
        var options = SessionOptions()
        options.listLimit = 50
        let session = AnalysisSession(options: options)
        let recorder = RecordingSink()
        session.attach(recorder)
        let inputs = session.readFiles(try OfflineReader(paths: [capture], filter: nil))
        let (conclusion, failures) = session.conclude(CaptureStopped(inputs: inputs, kernel: nil, writtenFiles: []))
        #expect(failures.isEmpty)
        return (recorder.events, conclusion)
    }

    static func replay(_ events: [FlowEnded], _ conclusion: SessionConclusion, into sink: any SessionSink) throws {
        for event in events { sink.flowEnded(event) }
        try sink.concluded(conclusion)
    }

    @Test(arguments: [("jsonl", "lab/keepalive-race.any.pcap"), ("json", "lab/refused.upstream.pcap"), ("text", "lo-http-keepalive.pcap")])
    func replayedEventsGiveWhatTheCLIPrints(format: String, capture: String) throws {
        let path = Locations.capture(capture)
        let (events, conclusion) = try Self.record(path)
        let buffer = TextBuffer()
        let sink: any SessionSink =
            switch format {
            case "jsonl": JSONLinesSink(output: buffer)
            case "json": JSONDocumentSink(output: buffer)
            default: TextReportSink(output: buffer)
            }
        try Self.replay(events, conclusion, into: sink)
        let cli = try Locations.run(Locations.capdiagExecutable, ["-q", "-T", format, "-r", path])
        #expect(cli.status == 0)
        #expect(buffer.text == cli.stdout)
    }

    @Test func aJSONDocumentWithoutFlowsIsStillComplete() throws {
        let (_, conclusion) = try Self.record(Locations.capture("lo-refused.pcap"))
        let buffer = TextBuffer()
        try Self.replay([], conclusion, into: JSONDocumentSink(output: buffer))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(buffer.text.utf8)) as? [String: Any])
        #expect((object["flows"] as? [Any])?.isEmpty == true)
        #expect(object["summary"] != nil)
    }

    /// A side output that fails does not take the others down: they still write, and the
    /// failure is returned to say so.
    @Test func oneFailingSinkDoesNotSilenceTheOthers() throws {
        final class Failing: SessionSink {
            func concluded(_ conclusion: SessionConclusion) throws { throw SinkError("disk full") }
        }
        let session = AnalysisSession(options: SessionOptions())
        let buffer = TextBuffer()
        session.attach(Failing())
        session.attach(TextReportSink(output: buffer))
        let inputs = session.readFiles(try OfflineReader(paths: [Locations.capture("lo-refused.pcap")], filter: nil))
        let (_, failures) = session.conclude(CaptureStopped(inputs: inputs, kernel: nil, writtenFiles: []))
        #expect(failures.map { "\($0)" } == ["disk full"])
        #expect(buffer.text.hasPrefix("Diagnosis\n"))
    }

    /// Redaction is an option of the session, not a process-wide switch: two sessions with
    /// different policies in one process each get their own.
    @Test func exportsFollowTheSessionsRedactionPolicy() throws {
        let capture = Locations.capture("lo-http-hostile.pcap")
        let (events, conclusion) = try Self.record(capture)
        for redact in [true, false] {
            let directory = FileManager.default.temporaryDirectory.appending(path: "capdiag-sink-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let sink = FlowExportSink(directory: directory, all: true, limit: 10, payload: .all, redact: redact)
            try Self.replay(events, conclusion, into: sink)
            #expect(!sink.written.isEmpty)
            let bytes = try sink.written.values.map { try Data(contentsOf: URL(fileURLWithPath: $0)) }.reduce(Data(), +)
            let text = String(decoding: bytes, as: UTF8.self)
            #expect(text.contains("Authorization: Bearer") != redact, "redact \(redact)")
        }
    }

    /// When the kernel dropped packets during a live capture, no conclusion is held with high
    /// confidence, and the first lines say why.
    @Test func kernelDropsLowerEveryConfidence() throws {
        let session = AnalysisSession(options: SessionOptions())
        let inputs = session.readFiles(try OfflineReader(paths: [Locations.capture("lo-refused.pcap")], filter: nil))
        let stopped = CaptureStopped(inputs: inputs, kernel: KernelRecord(received: 100, dropped: 7, interfaceDropped: 0), writtenFiles: [])
        let (conclusion, _) = session.conclude(stopped)
        let upstreams = try #require(conclusion.summary.diagnosis?.upstreams)
        let causes = upstreams.flatMap { $0.causes }
        #expect(causes.first?.code == "connection_refused")
        #expect(causes.allSatisfy { $0.confidence != "high" })
        #expect(conclusion.summary.capture.caveats.contains { $0.contains("dropped 7 packets") })
    }
}
