/// Why a line gave no entry.
public enum GatewayBadLineReason: String, Hashable, Sendable {
    /// Longer than ``GatewayLogReader/Limits/maxLineBytes`` (skipped to its end, never buffered).
    case tooLong = "too_long"
    /// NUL bytes or mostly control bytes.
    case binary
    /// Started like a known format (``GatewayBadLine/format``) but did not read as one.
    case malformed
    /// No known format.
    case unrecognized
}

/// What one line gave.
public enum GatewayLineResult: Hashable, Sendable {
    case entry(GatewayLogEntry)
    /// Empty or blank.
    case blank
    /// A known line that is no request or event for capdiag (HAProxy's `[NOTICE]`/`[WARNING]`).
    case ignored
    /// Not readable; `format` is the format it started like, when it did.
    case bad(GatewayBadLineReason, format: GatewayLogFormat?)
}

/// Reads single lines; detects the format of each from its content, so one file may mix formats.
public enum GatewayLogParser {
    /// At most this many bytes of a line are kept in ``GatewayLogEntry/rawLine``.
    public static let defaultRawLineBytes = 2048

    /// Parses one line (without its newline).
    /// - Parameters:
    ///   - line: the line's bytes; a trailing `\r` is dropped. The bytes are copied.
    ///   - file: recorded in the entry.
    ///   - lineNumber: recorded in the entry (1-based).
    ///   - rawLineBytes: how much of the line the entry keeps as ``GatewayLogEntry/rawLine``.
    public static func parse(
        line: some Collection<UInt8>, file: String = "", lineNumber: Int = 0, rawLineBytes: Int = defaultRawLineBytes
    ) -> GatewayLineResult {
        var bytes = Array(line)
        if bytes.last == 0x0D { bytes.removeLast() }
        return parse(bytes: bytes, file: file, lineNumber: lineNumber, rawLineBytes: rawLineBytes)
    }

    /// Parses one line given as text.
    public static func parse(line: String, file: String = "", lineNumber: Int = 0) -> GatewayLineResult {
        parse(line: Array(line.utf8), file: file, lineNumber: lineNumber)
    }

    static func parse(bytes: [UInt8], file: String, lineNumber: Int, rawLineBytes: Int) -> GatewayLineResult {
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return .blank }
        var controls = 0
        for byte in bytes {
            if byte == 0 { return .bad(.binary, format: nil) }
            if (byte < 0x20 && byte != 0x09) || byte == 0x7F { controls += 1 }
        }
        if controls * 4 > bytes.count { return .bad(.binary, format: nil) }

        let keep = min(bytes.count, max(0, rawLineBytes))
        func entry(_ format: GatewayLogFormat, _ meaning: GatewayTimeMeaning) -> GatewayLogEntry {
            GatewayLogEntry(
                format: format, file: file, lineNumber: lineNumber, rawLine: LineText.string(bytes, 0..<keep),
                rawLineTruncated: keep < bytes.count, timeMeaning: meaning)
        }
        var first = 0
        while first < bytes.count && (bytes[first] == 0x20 || bytes[first] == 0x09) { first += 1 }

        if bytes[first] == 0x7B {
            var candidate = entry(.envoyJSON, .requestStart)
            let trimmed = Array(bytes[first...])
            return EnvoyLog.parseJSON(trimmed, into: &candidate)
                ? .entry(candidate) : .bad(.malformed, format: .envoyJSON)
        }
        if NginxErrorLog.looksLike(bytes) {
            var candidate = entry(.nginxError, .event)
            return NginxErrorLog.parse(bytes, into: &candidate)
                ? .entry(candidate) : .bad(.malformed, format: .nginxError)
        }
        var guess: GatewayLogFormat?
        if EnvoyLog.looksLikeText(bytes) {
            var candidate = entry(.envoyText, .requestStart)
            if EnvoyLog.parseText(bytes, into: &candidate) { return .entry(candidate) }
            guess = .envoyText
        }
        if HAProxyLog.isOwnMessage(bytes) { return .ignored }
        if HAProxyLog.dateStart(bytes) != nil {
            var candidate = entry(.haproxy, .requestStart)
            return HAProxyLog.parse(bytes, into: &candidate) ? .entry(candidate) : .bad(.malformed, format: .haproxy)
        }
        if NginxAccessLog.looksLikeKeyValue(bytes) {
            var candidate = entry(.nginxAccess, .requestEnd)
            return NginxAccessLog.parseKeyValue(bytes, into: &candidate)
                ? .entry(candidate) : .bad(.malformed, format: .nginxAccess)
        }
        if NginxAccessLog.looksLikeCombined(bytes) {
            var candidate = entry(.nginxCombined, .requestEnd)
            return NginxAccessLog.parseCombined(bytes, into: &candidate)
                ? .entry(candidate) : .bad(.malformed, format: .nginxCombined)
        }
        return guess.map { .bad(.malformed, format: $0) } ?? .bad(.unrecognized, format: nil)
    }
}
