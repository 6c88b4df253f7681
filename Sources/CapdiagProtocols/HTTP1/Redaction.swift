/// Masks credentials before captured text reaches any output: values of credential-like query
/// parameters and URL passwords in request targets, and the values of credential headers
/// (Authorization, Cookie, API keys, …) wherever a header line is quoted. On by default; the
/// analysis passes its own policy (`enabled`) down to every use, so no process-wide switch
/// decides it (`--no-redact` sets the session's option).
public enum Redaction {
    public static let mask = "REDACTED"

    /// Header names whose values are secrets (compared lowercased).
    public static let secretHeaders: Set<String> = [
        "authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key", "apikey",
        "x-auth-token", "x-access-token", "x-amz-security-token", "x-csrf-token", "x-xsrf-token",
    ]
    /// In a fixed order, computed once (sorting it for every text cost as much as the scan).
    static let sortedSecretHeaders = secretHeaders.sorted()

    /// Query parameter names whose values are secrets (compared lowercased).
    public static let secretParameters: Set<String> = [
        "token", "access_token", "id_token", "refresh_token", "api_key", "apikey", "api-key", "key", "secret",
        "client_secret", "password", "passwd", "pwd", "pass", "auth", "authorization", "signature", "sig",
        "x-amz-signature", "x-amz-credential", "x-amz-security-token", "session", "sessionid", "session_id", "sid",
        "code", "jwt", "private_token",
    ]

    /// A request target with secret query values and URL passwords masked.
    public static func target(_ target: String, enabled: Bool = true) -> String {
        // Runs on every request: most targets have neither a query nor a userinfo part.
        guard enabled, target.utf8.contains(where: { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "@") }) else { return target }
        var result = target
        // http://user:password@host/… → http://user:REDACTED@host/…
        if let scheme = result.find("://"), let at = result[scheme.upperBound...].firstIndex(of: "@"),
            let colon = result[scheme.upperBound..<at].firstIndex(of: ":"),
            !result[scheme.upperBound..<at].contains("/")
        {
            result.replaceSubrange(result.index(after: colon)..<at, with: mask)
        }
        guard let question = result.firstIndex(of: "?") else { return result }
        let query = result[result.index(after: question)...]
        let parts = query.split(separator: "&", omittingEmptySubsequences: false).map { part -> String in
            guard let equals = part.firstIndex(of: "=") else { return String(part) }
            // Names may be percent-encoded (access%5Ftoken) or any case.
            let name = percentDecoded(Array(part[..<equals].utf8)).lowercased()
            return secretParameters.contains(name) && part.index(after: equals) < part.endIndex
                ? String(part[...equals]) + mask : String(part)
        }
        return String(result[...question]) + parts.joined(separator: "&")
    }

    /// Free text quoting captured bytes (a bad header line, a status line): secret header
    /// values (to the end of the line or quote) and secret query values masked.
    public static func text(_ text: String, enabled: Bool = true) -> String {
        guard enabled else { return text }
        // On UTF-8 bytes, ASCII case folded by bit: walking Characters and lower-casing each
        // (a String per call) made this a fifth of an HTTP/1 capture's time, since every
        // response through a gateway keeps its `Server:` line as evidence.
        // Nothing copied unless a secret header is there: this runs for every kept value (a
        // gateway's `Server:` line on every response), and `String.contains` is Unicode-aware.
        let hasQuery = text.utf8.contains(UInt8(ascii: "?"))
        let mayHoldSecret = text.utf8.contains(UInt8(ascii: ":"))
            && (text.utf8.withContiguousStorageIfAvailable { bytes in
                sortedSecretHeaderBytes.contains { firstMatch($0, in: bytes, from: 0) != nil }
            } ?? true)
        guard mayHoldSecret else { return hasQuery ? target(text) : text }
        var out = Array(text.utf8)
        let maskBytes = Array((" " + mask).utf8)
        var changed = false
        for name in sortedSecretHeaderBytes {
            var from = 0
            while let start = firstMatch(name, in: out, from: from) {
                let value = start + name.count
                var end = value
                // Up to the end of the line or of a quoted string, as the text was written.
                while end < out.count, !(10...13).contains(out[end]), out[end] != UInt8(ascii: "'"), out[end] != UInt8(ascii: "\"") {
                    end += 1
                }
                out.replaceSubrange(value..<end, with: maskBytes)
                changed = true
                from = value + maskBytes.count
            }
        }
        let result = changed ? String(decoding: out, as: UTF8.self) : text
        return result.utf8.contains(UInt8(ascii: "?")) ? target(result) : result
    }

    /// Each secret header name with its colon, lower case, as bytes.
    static let sortedSecretHeaderBytes: [[UInt8]] = sortedSecretHeaders.map { Array(($0 + ":").utf8) }

    /// Where `needle` (lower-case ASCII) first occurs in `bytes` at or after `from`, ignoring ASCII case.
    static func firstMatch<Bytes: RandomAccessCollection<UInt8>>(_ needle: [UInt8], in bytes: Bytes, from: Int) -> Int?
    where Bytes.Index == Int {
        guard !needle.isEmpty, bytes.count >= needle.count else { return nil }
        var index = max(from, 0)
        while index + needle.count <= bytes.count {
            var matched = 0
            while matched < needle.count {
                let byte = bytes[index + matched]
                let folded = (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) ? byte | 0x20 : byte
                guard folded == needle[matched] else { break }
                matched += 1
            }
            if matched == needle.count { return index }
            index += 1
        }
        return nil
    }

    /// Masks credentials inside raw HTTP bytes in place, keeping the length (so TCP sequence
    /// numbers in an exported pcap stay consistent): on every line, whatever follows a secret
    /// header name and its colon, and in a request line the values of secret query parameters;
    /// each masked byte becomes `*`.
    public static func maskHeaders(in bytes: inout [UInt8], from start: Int = 0, to end: Int? = nil) {
        let limit = min(end ?? bytes.count, bytes.count)
        let names = secretHeaders.map { Array(($0 + ":").utf8) }
        var lineStart = start
        while lineStart < limit {
            var lineEnd = lineStart
            while lineEnd < limit && bytes[lineEnd] != 0x0A { lineEnd += 1 }
            for name in names {
                var index = lineStart
                while index + name.count <= lineEnd {
                    if matchesLowercased(bytes, at: index, name) {
                        var value = index + name.count
                        while value < lineEnd && bytes[value] == 0x20 { value += 1 }
                        while value < lineEnd && bytes[value] != 0x0D {
                            bytes[value] = UInt8(ascii: "*")
                            value += 1
                        }
                        break
                    }
                    index += 1
                }
            }
            maskQuery(in: &bytes, lineStart, lineEnd)
            maskUserinfo(in: &bytes, lineStart, lineEnd)
            lineStart = lineEnd + 1
        }
    }

    /// `name=value` pairs after the first `?` of a line, up to the next space.
    /// `http://user:password@host/…` in a line (a proxy's absolute-form request target): the
    /// password masked in place.
    private static func maskUserinfo(in bytes: inout [UInt8], _ lineStart: Int, _ lineEnd: Int) {
        let scheme = Array("://".utf8)
        var index = lineStart
        while index + scheme.count <= lineEnd {
            guard bytes[index] == scheme[0], bytes[index + 1] == scheme[1], bytes[index + 2] == scheme[2] else {
                index += 1
                continue
            }
            let authority = index + scheme.count
            var end = authority
            while end < lineEnd, bytes[end] != UInt8(ascii: "/"), bytes[end] != 0x20, bytes[end] != UInt8(ascii: "?") { end += 1 }
            if let at = bytes[authority..<end].lastIndex(of: UInt8(ascii: "@")),
                let colon = bytes[authority..<at].firstIndex(of: UInt8(ascii: ":"))
            {
                for position in (colon + 1)..<at { bytes[position] = UInt8(ascii: "*") }
            }
            index = end
        }
    }

    /// A query parameter name with its %XX escapes decoded (bounded: names are short).
    static func percentDecoded(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        var index = 0
        while index < bytes.count && out.count < 256 {
            if bytes[index] == UInt8(ascii: "%"), index + 2 < bytes.count,
                let value = UInt8(String(decoding: bytes[(index + 1)...(index + 2)], as: UTF8.self), radix: 16)
            {
                out.append(value)
                index += 3
            } else {
                out.append(bytes[index])
                index += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func maskQuery(in bytes: inout [UInt8], _ lineStart: Int, _ lineEnd: Int) {
        guard var index = bytes[lineStart..<lineEnd].firstIndex(of: UInt8(ascii: "?")) else { return }
        index += 1
        while index < lineEnd && bytes[index] != 0x20 {
            var pairEnd = index
            while pairEnd < lineEnd && bytes[pairEnd] != UInt8(ascii: "&") && bytes[pairEnd] != 0x20 { pairEnd += 1 }
            if let equals = bytes[index..<pairEnd].firstIndex(of: UInt8(ascii: "=")),
                secretParameters.contains(percentDecoded(Array(bytes[index..<equals])).lowercased())
            {
                for position in (equals + 1)..<pairEnd { bytes[position] = UInt8(ascii: "*") }
            }
            index = pairEnd < lineEnd && bytes[pairEnd] == UInt8(ascii: "&") ? pairEnd + 1 : pairEnd
        }
    }

    private static func matchesLowercased(_ bytes: [UInt8], at index: Int, _ name: [UInt8]) -> Bool {
        for offset in 0..<name.count {
            var byte = bytes[index + offset]
            if (0x41...0x5A).contains(byte) { byte += 0x20 }
            if byte != name[offset] { return false }
        }
        return true
    }
}

extension String {
    /// Equal but for case. ASCII letters are compared by their bits: `Character.lowercased()`
    /// builds a String per call, and this ran for every character of every gateway's `Server`
    /// header (a fifth of the time of an HTTP/1 capture through nginx).
    static func sameIgnoringCase(_ a: Character, _ b: Character) -> Bool {
        if let x = a.asciiValue, let y = b.asciiValue {
            let lower = x | 0x20
            return lower == (y | 0x20) && lower >= UInt8(ascii: "a") && lower <= UInt8(ascii: "z")
        }
        return a.lowercased() == b.lowercased()
    }

    /// The first occurrence of `needle` (optionally ignoring case), without Foundation.
    func find(_ needle: String, in range: Range<Index>? = nil, caseInsensitive: Bool = false) -> Range<Index>? {
        let range = range ?? startIndex..<endIndex
        let needleChars = Array(needle)
        guard !needleChars.isEmpty else { return nil }
        var index = range.lowerBound
        while index < range.upperBound {
            var probe = index
            var matched = 0
            while matched < needleChars.count, probe < range.upperBound {
                let a = self[probe], b = needleChars[matched]
                guard a == b || (caseInsensitive && Self.sameIgnoringCase(a, b)) else { break }
                matched += 1
                probe = self.index(after: probe)
            }
            if matched == needleChars.count { return index..<probe }
            index = self.index(after: index)
        }
        return nil
    }
}
