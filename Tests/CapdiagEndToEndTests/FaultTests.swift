import CapdiagTestSupport
import Foundation
import Glibc
import Testing

/// Faults are loud and nothing already gathered is lost: a side output that cannot be written
/// gives a clear error and exit status 2, and the report on stdout is still printed in full.
@Suite(.serialized) struct Faults {
    let capdiag = Locations.capdiagExecutable

    /// A 24 KiB tmpfs fills up during `--export` and `--report` (root only: CI runs as root).
    @Test(.enabled(if: getuid() == 0, "mounting a small tmpfs needs root"))
    func aFullDiskIsAnErrorAndStdoutStillHasTheReport() throws {
        let mountPoint = FileManager.default.temporaryDirectory.appending(path: "capdiag-full-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: mountPoint) }
        let mounted = try Locations.run(URL(fileURLWithPath: "/bin/mount"), ["-t", "tmpfs", "-o", "size=24k", "tmpfs", mountPoint])
        try #require(mounted.status == 0, "mount: \(mounted.stderr)")
        defer { _ = try? Locations.run(URL(fileURLWithPath: "/bin/umount"), [mountPoint]) }
        let result = try Locations.run(capdiag, [
            "-q", "-r", Locations.capture("lab/keepalive-race.any.pcap"), "--export-all", "--export-payload", "all",
            "--export", mountPoint + "/flows", "--report", mountPoint + "/report.html",
        ])
        #expect(result.status == 2)
        #expect(result.stderr.contains("No space left on device"), "\(result.stderr)")
        #expect(result.stderr.contains("report.html"))
        #expect(!result.stderr.contains("exported to"), "no success message for a failed export")
        #expect(result.stdout.hasPrefix("Diagnosis\n") && result.stdout.contains("keepalive_race"))
    }

    @Test func anUnwritableReportIsAnErrorAndStdoutStillHasTheReport() throws {
        let result = try Locations.run(capdiag, [
            "-q", "-T", "json", "-r", Locations.capture("lo-refused.pcap"), "--report", "/nonexistent-dir/report.md",
        ])
        #expect(result.status == 2)
        #expect(result.stderr.contains("cannot write /nonexistent-dir/report.md"))
        // The JSON document on stdout is complete.
        #expect(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) is [String: Any])
    }

    /// `--export` reads its inputs twice; a pipe cannot be read twice, so it is refused up front
    /// instead of hanging.
    @Test func exportFromAPipeIsRefusedBeforeReading() throws {
        let fifo = FileManager.default.temporaryDirectory.appending(path: "capdiag-fifo-\(UUID().uuidString)").path
        try #require(mkfifo(fifo, 0o600) == 0)
        defer { unlink(fifo) }
        let result = try Locations.run(capdiag, ["-r", fifo, "--export", FileManager.default.temporaryDirectory.path + "/x"])
        #expect(result.status == 64)
        #expect(result.stderr.contains("is a pipe or stdin"))
    }

    /// An input that cannot be opened leaves no partial JSON document on stdout.
    @Test func anOpenErrorLeavesNoPartialJSON() throws {
        let result = try Locations.run(capdiag, ["-T", "json", "-r", "/nonexistent/capture.pcap"])
        #expect(result.status == 2)
        #expect(result.stdout.isEmpty)
    }
}
