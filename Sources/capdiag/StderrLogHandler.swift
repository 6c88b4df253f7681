import Logging

/// Writes log messages to stderr the way command-line tools do (`capdiag: warning: …`),
/// without timestamps or labels: stdout carries only the report.
struct StderrLogHandler: LogHandler {
    var logLevel: Logger.Level = .notice
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let prefix: String
        switch event.level {
        case .trace, .debug: prefix = "capdiag: debug: "
        case .info, .notice: prefix = "capdiag: "
        case .warning: prefix = "capdiag: warning: "
        case .error, .critical: prefix = "capdiag: error: "
        }
        writeStandardError((prefix + event.message.description + "\n"))
    }
}
