import CapdiagCapture
import CapdiagReport
import CapdiagTestSupport
import Foundation
import Testing

/// Every file of the public corpus: analysed without a crash, or rejected by libpcap with its
/// own message; odd link types are decoded or counted as unsupported with their name.
@Suite(.enabled(if: Locations.publicCorpus != nil, "public corpus not found: set CAPDIAG_PUBLIC_CAPTURES"))
struct CorpusRobustness {
    static let manifest: [String: String] = {
        guard let root = Locations.publicCorpus,
            let text = try? String(contentsOf: root.appending(path: "MANIFEST.tsv"), encoding: .utf8)
        else { return [:] }
        var rows: [String: String] = [:]
        for line in text.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            if fields.count > 6 { rows[String(fields[0])] = String(fields[6]) }
        }
        return rows
    }()

    static let files = Locations.publicFiles("robustness") + Locations.publicFiles("http-tcp") + Locations.publicFiles("tls")

    @Test(arguments: files)
    func analysedOrClearlyRejected(path: String) throws {
        let relative = path.split(separator: "/").suffix(2).joined(separator: "/")
        let notes = Self.manifest[relative] ?? ""
        do {
            let (flows, summary) = try analyze([path])
            // Every verdict is well formed: scores in range, evidence inside its flow, and a
            // healthy flow carries nothing above info.
            for flow in flows {
                let diagnosis = try #require(flow.diagnosis)
                let scores = diagnosis.scores
                for score in [scores.reset, scores.handshake, scores.timeout, scores.invalidResponse, scores.networkQuality] {
                    #expect((0...100).contains(score))
                }
                #expect(diagnosis.healthy == diagnosis.findings.allSatisfy { $0.severity == "info" })
                for finding in diagnosis.findings {
                    #expect(!finding.summary.isEmpty && !finding.code.isEmpty)
                    for evidence in finding.evidence {
                        #expect(evidence.frame >= 1 && evidence.frame <= summary.capture.packets.read, "\(relative): \(finding.code)")
                    }
                }
            }
            #expect(summary.diagnosis != nil)
            // Both reports render for every capture (odd timestamps included).
            let report = TicketReport(summary: summary, flows: flows.filter(\.isFlagged), redacted: true)
            #expect(MarkdownReport.render(report).hasPrefix("# capdiag report: "))
            #expect(HTMLReport.render(report).hasSuffix("</body></html>\n"))
            let input = try #require(summary.capture.inputs.first)
            if notes.contains("LIBPCAP CANNOT OPEN") {
                // tcpdump, not libpcap, refuses an unknown link type; libpcap opens the file.
                #expect(notes.contains("unknown data link type"), "libpcap was expected to reject \(relative)")
                #expect(summary.capture.packets.decoded == 0)
            }
            if notes.contains("LIBPCAP READ ERROR") {
                #expect(input.stop == "read_error" && !(input.error ?? "").isEmpty, "\(relative): read error not reported")
            }
            // Packets are either decoded or counted as skipped with a reason.
            #expect(summary.capture.packets.decoded + summary.capture.packets.skipped == summary.capture.packets.read)
            let linkType = input.linkType
            if ![0, 1, 12, 14, 101, 108, 113, 276, 228, 229].contains(linkType) && summary.capture.packets.read > 0 {
                #expect(summary.capture.skipped.contains { $0.reason == "unsupported_link_type_\(linkType)" })
                #expect(!input.linkTypeName.isEmpty)
            }
        } catch let error as CaptureError {
            #expect(notes.contains("LIBPCAP CANNOT OPEN"), "\(relative) was rejected: \(error)")
            #expect(!error.message.isEmpty)
        }
    }
}
