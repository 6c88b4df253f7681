import CapdiagTestSupport
import Foundation

/// The labels of Captures/lab/gateway-logs/ (written by its label.py from the capture and from the
/// raw logs read with regular expressions, i.e. independently of the Swift reader).
struct GatewayLogsLabel: Decodable {
    struct Files: Decodable {
        var capture: String
        var nginxErrorLog: String?
        var nginxAccessLog: String?
        var haproxyLog: String?
    }
    struct ErrorLine: Decodable {
        var line: Int
        var time: String
        var timeUtc: String
        var level: String
        var pid: Int
        var connection: Int?
        var message: String
        var client: String?
        var upstream: String?
        var host: String?
    }
    struct AccessLine: Decodable {
        var line: Int
        var client: String
        var time: String
        var msec: String
        var status: Int
        var upstreamAddr: [String]
        var upstreamStatus: [String]
        var upstreamConnectTime: [String]
        var upstreamHeaderTime: [String]
        var upstreamResponseTime: [String]
        var requestTime: String
        var requestId: String
    }
    struct HAProxyLine: Decodable {
        var line: Int
        var syslogHeader: Bool
        var pid: Int?
        var client: String
        var time: String
        var timeUtc: String
        var frontend: String
        var backend: String
        var server: String
        var timers: [Int]
        var status: Int
        var bytes: Int
        var terminationState: String
        var retries: String
        var backendSource: String?
    }
    struct Connection: Decodable {
        var gateway: String
        var upstream: String
        var requestSent: String?
        var xRequestId: String?
    }
    struct Request: Decodable {
        var method: String
        var target: String
        var client: String
        var clientRequestTime: String
        var upstreamConnections: [Connection]
        var nginxErrorLog: [ErrorLine]?
        var nginxAccessLog: AccessLine?
        var haproxyLog: HAProxyLine?
    }
    struct Tuple: Decodable {
        var gateway: String
        var upstream: String
    }
    struct Failure: Decodable {
        var target: String
        var loggedIn: [String]
        var gatewayWords: [String]
        var status: Int?
        var upstreamTuples: [Tuple]
        var tupleSource: String
    }
    var scenario: String
    var expectedCause: String
    var gateway: String
    var gatewayTimeZone: String
    var utcOffsetSeconds: Int
    var clientStatuses: [String: Int]
    var files: Files
    var requests: [Request]
    var otherErrorLogLines: [ErrorLine]
    var failures: [Failure]

    static let folder = Locations.captures.appending(path: "lab/gateway-logs")

    static let names: [String] = {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter { $0.hasSuffix(".json") }
            .map { String($0.dropLast(5)) }.sorted()
    }()

    static func load(_ name: String) throws -> GatewayLogsLabel {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(GatewayLogsLabel.self, from: Data(contentsOf: folder.appending(path: "\(name).json")))
    }

    static func path(_ file: String) -> String { folder.appending(path: file).path }
}

/// The older lab labels (Captures/lab/*.json): what nginx and HAProxy logged, timestamps stripped.
struct LabLabel: Decodable {
    var scenario: String
    var expectedCause: String
    var gateway: String
    var gatewayErrorLog: [String]
    var gatewayAccessLog: [String]

    static let folder = Locations.captures.appending(path: "lab")

    static func all() throws -> [LabLabel] {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".json") }
            .sorted()
            .map { try decoder.decode(LabLabel.self, from: Data(contentsOf: folder.appending(path: $0))) }
    }
}

/// The lab's expected causes are scenario names for a few scenarios; the verdict code capdiag
/// gives for each (docs/json-schema.md).
func verdictCode(forLabCause cause: String) -> String {
    switch cause {
    case "invalid_header": return "invalid_response"
    case "response_cut_short_fin", "response_cut_short_rst": return "response_cut_short"
    case "failover_retry": return "connection_refused"  // the failed first try
    case "sporadic_upstream_resets": return "upstream_reset_after_request"
    default: return cause
    }
}

/// `2026-12-01T16:54:32.664811Z` → nanoseconds since the epoch (microsecond input).
func utcNanoseconds(_ text: String) -> Int64? {
    let parts = text.split(whereSeparator: { "-T:.Z".contains($0) }).compactMap { Int($0) }
    guard parts.count == 7 else { return nil }
    var calendar = Calendar(identifier: .gregorian)
    guard let utc = TimeZone(identifier: "UTC") else { return nil }
    calendar.timeZone = utc
    let components = DateComponents(
        year: parts[0], month: parts[1], day: parts[2], hour: parts[3], minute: parts[4], second: parts[5])
    guard let date = calendar.date(from: components) else { return nil }
    return Int64(date.timeIntervalSince1970) * 1_000_000_000 + Int64(parts[6]) * 1000
}

/// `1796144072.665` → nanoseconds.
func msecNanoseconds(_ text: String) -> Int64? {
    let parts = text.split(separator: ".")
    guard parts.count == 2, let seconds = Int64(parts[0]), let millis = Int64(parts[1]), parts[1].count == 3 else {
        return nil
    }
    return seconds * 1_000_000_000 + millis * 1_000_000
}
