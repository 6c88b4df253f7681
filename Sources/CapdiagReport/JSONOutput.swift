#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// JSON encoding shared by every JSON output: sorted keys and snake_case, so output is
/// deterministic and diffable.
public enum JSONOutput {
    public static func encoder(pretty: Bool) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }

    /// Shared by every line: building a JSONEncoder costs more than encoding one flow. The
    /// pipeline is single-threaded.
    private static let lineEncoder = encoder(pretty: false)

    /// One value as a single line of JSON.
    public static func line(_ value: some Encodable) -> String {
        guard let data = try? lineEncoder.encode(value) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}

/// Writes `-T json`: one document, `{"schema":…, "flows":[…], "summary":{…}}`. Flows are
/// written as they finish, so memory does not grow with the capture.
public struct JSONDocumentWriter {
    private var wroteFlow = false
    private let write: (String) -> Void

    public init(write: @escaping (String) -> Void) {
        self.write = write
        write("{\"schema\":\"\(ReportBuilder.schema)\",\"flows\":[")
    }

    public mutating func add(_ record: FlowRecord) {
        write((wroteFlow ? ",\n" : "\n") + record.jsonLine)
        wroteFlow = true
    }

    public func finish(_ summary: SummaryRecord) {
        write("\n],\"summary\":" + JSONOutput.line(summary) + "}\n")
    }
}
