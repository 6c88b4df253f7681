import ArgumentParser
import CapdiagCapture
import CapdiagFlow
import CapdiagWire
import Foundation
import Logging

/// A flow chosen for `--export` while the analysis ran: enough to find its packets again.
struct ExportCandidate {
    var id: Int
    var originator: Endpoint
    var responder: Endpoint
    var firstFrame: Int
    var lastFrame: Int
    var start: Timestamp
    var code: String?

    init(flow: TCPFlow, code: String?) {
        id = flow.id
        originator = flow.originator
        responder = flow.responder
        firstFrame = flow.first.frame
        // The first ICMP error quoting the flow may come after its last TCP packet.
        lastFrame = max(flow.last.frame, flow.firstICMPError?.packet.frame ?? 0)
        start = flow.first.time
        self.code = code
    }

    /// `20261125T142405.565Z_10.77.2.2-9012_keepalive_race_flow5.pcap`: sorts by time, names
    /// the upstream and the verdict, and holds only characters safe in any file system.
    var fileName: String {
        let iso = start.iso8601  // 2026-11-25T14:24:05.565569000Z
        let compact = iso.prefix(23).filter { $0 != "-" && $0 != ":" } + "Z"
        let upstream = "\(responder.address)-\(responder.port)".map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" ? $0 : "-" }
        return "\(compact)_\(String(upstream))_\(code ?? "flow")_flow\(id).pcap"
    }
}

/// Writes the chosen flows with a second pass over the inputs and returns flow id → path.
func writeExports(
    _ candidates: [ExportCandidate], to directory: String, paths: [String], filter: String?, payload: ExportPayload,
    logger: Logger, notWritten: Int
) throws -> [Int: String] {
    do {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    } catch {
        FileHandle.standardError.write(Data("capdiag: error: cannot create \(directory): \(error.localizedDescription)\n".utf8))
        throw ExitCode(2)
    }
    let selections = candidates.map { candidate in
        FlowSelection(
            id: candidate.id, originator: (candidate.originator.address, candidate.originator.port),
            responder: (candidate.responder.address, candidate.responder.port), firstFrame: candidate.firstFrame,
            lastFrame: candidate.lastFrame, path: (directory as NSString).appendingPathComponent(candidate.fileName))
    }
    var exporter = FlowExporter()
    do {
        try exporter.export(
            paths: paths, filter: filter, limit: nil, flows: selections, payload: payload)
    } catch {
        FileHandle.standardError.write(Data("capdiag: error: export: \(error)\n".utf8))
        throw ExitCode(2)
    }
    logger.notice("\(selections.count) flow(s) exported to \(directory)")
    if notWritten > 0 { logger.warning("\(notWritten) more flow(s) not exported: raise --export-limit") }
    return Dictionary(uniqueKeysWithValues: selections.map { ($0.id, $0.path) })
}

/// `target` relative to the directory holding `file`, for links inside a report.
func relativePath(from file: String, to target: String) -> String {
    let cwd = FileManager.default.currentDirectoryPath
    func absolute(_ path: String) -> [String] {
        let full = path.hasPrefix("/") ? path : cwd + "/" + path
        return URL(fileURLWithPath: full).standardizedFileURL.pathComponents
    }
    let base = Array(absolute(file).dropLast())
    let goal = absolute(target)
    var common = 0
    while common < base.count && common < goal.count && base[common] == goal[common] { common += 1 }
    return (Array(repeating: "..", count: base.count - common) + goal[common...]).joined(separator: "/")
}
