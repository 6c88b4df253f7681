import CapdiagReport
import CapdiagTestSupport
import Foundation
import Testing

/// No confident wrong answer on traffic capdiag was not built on: every medium or high verdict
/// on the public corpus must be in the reviewed list (`Tests/corpus-review/reviewed-verdicts.tsv`,
/// each line checked against the packets with tshark, with its reason), and every listed one must
/// still be given. A new verdict fails until a person has reviewed it; a vanished one fails so a
/// missed failure cannot hide behind a precision fix.
@Suite(.enabled(if: Locations.publicCorpus != nil, "public corpus not found"))
struct CorpusVerdictReview {
    struct Entry: Hashable, CustomStringConvertible {
        var file: String
        var flow: Int
        var code: String
        var severity: String
        var description: String { "\(file)\tflow \(flow)\t\(code)\t\(severity)" }
    }

    static let listPath = Locations.repositoryRoot.appending(path: "Tests/corpus-review/reviewed-verdicts.tsv").path

    static func reviewed() throws -> [Entry: (status: String, reason: String)] {
        var entries: [Entry: (String, String)] = [:]
        let text = try String(contentsOfFile: listPath, encoding: .utf8)
        for line in text.split(separator: "\n") where !line.hasPrefix("#") && !line.hasPrefix("file\t") {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 6, let flow = Int(fields[1]) else {
                Issue.record("malformed line: \(line)")
                continue
            }
            entries[Entry(file: fields[0], flow: flow, code: fields[2], severity: fields[3])] = (fields[4], fields[5])
        }
        return entries
    }

    @Test func everyMediumOrHighVerdictIsReviewed() throws {
        let corpus = try #require(Locations.publicCorpus)
        let manifest = try String(contentsOf: corpus.appending(path: "MANIFEST.tsv"), encoding: .utf8)
        let files = manifest.split(separator: "\n").dropFirst().map { String($0.prefix { $0 != "\t" }) }
        #expect(files.count >= 600)
        var given = Set<Entry>()
        for file in files {
            // Files libpcap cannot open are the robustness tests' business.
            guard let analysis = try? analyze([corpus.appending(path: file).path]) else { continue }
            for flow in analysis.flows {
                for finding in flow.diagnosis?.findings ?? [] where finding.severity == "medium" || finding.severity == "high" {
                    given.insert(Entry(file: file, flow: flow.id, code: finding.code, severity: finding.severity))
                }
            }
        }
        let reviewed = try Self.reviewed()
        for (entry, review) in reviewed {
            #expect(["right", "unsure", "known_false"].contains(review.status), "\(entry): status \(review.status)")
            #expect(review.reason.count >= 30, "\(entry): a reason a person can check")
        }
        let unreviewed = given.subtracting(reviewed.keys).sorted { $0.description < $1.description }
        let vanished = Set(reviewed.keys).subtracting(given).sorted { $0.description < $1.description }
        #expect(unreviewed.isEmpty, "verdicts nobody reviewed (check them with tshark, then list them):\n\(unreviewed.map(\.description).joined(separator: "\n"))")
        #expect(vanished.isEmpty, "reviewed verdicts no longer given:\n\(vanished.map(\.description).joined(separator: "\n"))")
        // Precision is the point: wrong verdicts left in must stay rare and named.
        #expect(reviewed.values.filter { $0.status == "known_false" }.count <= 2)
    }
}
