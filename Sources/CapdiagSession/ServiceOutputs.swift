import CapdiagDiagnosis
import CapdiagReport
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#endif

/// A file appended line by line that rotates by size as logrotate would: `PATH` is renamed
/// `PATH.1`, `PATH.1` becomes `PATH.2`, … and the oldest beyond `keep` is deleted. `reopen()`
/// (SIGHUP) starts writing `PATH` afresh, for an outside logrotate that moved it away. A failed
/// write is kept, not thrown per line: the owner asks `failure` and says so at the end.
public final class RotatingFile {
    public let path: String
    public let maximumBytes: Int64
    public let keep: Int
    private var stream: UnsafeMutablePointer<FILE>?
    private var written: Int64 = 0
    public private(set) var failure: String?
    public private(set) var rotations = 0

    /// Opens (appends to) `path`.
    /// - Throws: `SinkError` when it cannot be opened.
    public init(path: String, maximumBytes: Int64, keep: Int) throws {
        self.path = path
        self.maximumBytes = max(maximumBytes, 1)
        self.keep = max(keep, 0)
        try open()
    }

    deinit { if let stream { fclose(stream) } }

    private func open() throws {
        guard let opened = fopen(path, "a") else {
            throw SinkError("cannot open \(path): \(String(cString: strerror(errno)))")
        }
        stream = opened
        var info = stat()
        written = fstat(fileno(opened), &info) == 0 ? Int64(info.st_size) : 0
    }

    /// Appends `line` and a newline, rotating first when the file is full.
    public func append(_ line: String) {
        let bytes = Int64(line.utf8.count + 1)
        if written > 0 && written + bytes > maximumBytes { rotate() }
        guard let stream else { return }
        if fputs(line, stream) < 0 || fputc(10, stream) < 0 || fflush(stream) != 0 {
            note(String(cString: strerror(errno)))
            return
        }
        written += bytes
    }

    /// Closes and reopens `PATH` (after an outside rotation moved it away).
    public func reopen() {
        if let stream { fclose(stream) }
        stream = nil
        do { try open() } catch { note("\(error)") }
    }

    private func rotate() {
        if let stream { fclose(stream) }
        stream = nil
        if keep == 0 {
            unlink(path)
        } else {
            unlink("\(path).\(keep)")
            for generation in stride(from: keep - 1, through: 1, by: -1) {
                rename("\(path).\(generation)", "\(path).\(generation + 1)")
            }
            rename(path, "\(path).1")
        }
        rotations += 1
        do { try open() } catch { note("\(error)") }
    }

    private func note(_ message: String) {
        if failure == nil { failure = "\(path): \(message)" }
    }

    public func close() {
        if let stream {
            if fflush(stream) != 0 { note(String(cString: strerror(errno))) }
            fclose(stream)
        }
        stream = nil
    }
}

/// `--jsonl-file PATH`: what a log shipper tails on a gateway that runs capdiag as a service —
/// each verdict as it is decided (`"type":"verdict"`), each flagged flow as it ends (the flow
/// record), the `--interval` records and the summary at the end, one JSON object per line, in
/// a file that rotates by size.
public final class JSONLinesFileSink: SessionSink {
    public let file: RotatingFile

    public init(file: RotatingFile) { self.file = file }

    public func flowEnded(_ event: FlowEnded) {
        guard !event.diagnosis.isHealthy else { return }
        file.append(event.record.jsonLine)
    }

    public func verdictDecided(_ event: VerdictDecided) {
        file.append(JSONOutput.line(event.record))
    }

    /// An `--interval` record.
    public func interval(_ record: IntervalRecord) {
        file.append(JSONOutput.line(record))
    }

    public func concluded(_ conclusion: SessionConclusion) throws {
        file.append(JSONOutput.line(conclusion.summary))
        file.close()
        if let failure = file.failure { throw SinkError("cannot write \(failure)") }
    }
}

/// `--report-dir DIR`: ticket reports (Markdown and HTML) written while a live capture runs —
/// on SIGHUP, every `--report-every`, and at the end — named by the UTC time they were made,
/// the newest `keep` pairs kept.
public final class ReportDirectorySink: SessionSink {
    public let directory: String
    public let keep: Int
    let redacted: Bool
    public private(set) var written: [String] = []

    public init(directory: String, keep: Int, redacted: Bool) {
        self.directory = directory
        self.keep = max(keep, 1)
        self.redacted = redacted
    }

    /// Writes the report of `conclusion` now.
    /// - Returns: the files written.
    @discardableResult
    public func write(_ conclusion: SessionConclusion, at date: Date = Date()) throws -> [String] {
        try AtomicFile.createDirectories(directory)
        var stamp = Self.stamp(date)
        // Two reports within the same second (SIGHUP right after the timer) keep both.
        while written.contains(where: { $0.hasSuffix("capdiag-\(stamp).md") }) { stamp += "-1" }
        let base = PathText.appending(directory, "capdiag-\(stamp)")
        let report = TicketReport(summary: conclusion.summary, flows: conclusion.builder.flagged, exports: [:], redacted: redacted)
        var files: [String] = []
        for (path, text) in [(base + ".md", MarkdownReport.render(report)), (base + ".html", HTMLReport.render(report))] {
            try AtomicFile.write(text, to: path)
            files.append(path)
        }
        written += files
        // The oldest pairs beyond `keep` go.
        while written.count > keep * 2 {
            unlink(written.removeFirst())
        }
        return files
    }

    public func concluded(_ conclusion: SessionConclusion) throws {
        try write(conclusion)
    }

    /// `20261201T171500Z`.
    static func stamp(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        strftime(&buffer, buffer.count, "%Y%m%dT%H%M%SZ", &parts)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
