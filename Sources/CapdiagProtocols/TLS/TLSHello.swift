/// A bounds-checked reader over a handshake message body.
struct ByteCursor {
    let bytes: [UInt8]
    var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var remaining: Int { bytes.count - offset }

    mutating func u8() -> UInt8? {
        guard remaining >= 1 else { return nil }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func u16() -> UInt16? {
        guard remaining >= 2 else { return nil }
        defer { offset += 2 }
        return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }

    mutating func take(_ count: Int) -> ArraySlice<UInt8>? {
        guard count >= 0, remaining >= count else { return nil }
        defer { offset += count }
        return bytes[offset..<(offset + count)]
    }

    /// A vector with a 1- or 2-byte length prefix.
    mutating func vector(lengthBytes: Int) -> ArraySlice<UInt8>? {
        let length = lengthBytes == 1 ? u8().map(Int.init) : u16().map(Int.init)
        guard let length else { return nil }
        return take(length)
    }
}

/// ClientHello (RFC 8446 §4.1.2): legacy_version, random, session id, cipher suites,
/// compression methods, extensions. Returns nil if it is malformed.
func parseClientHello(_ message: [UInt8]) -> TLSClientHello? {
    var cursor = ByteCursor(message)
    guard let version = cursor.u16(), cursor.take(32) != nil, cursor.vector(lengthBytes: 1) != nil,
        let suites = cursor.vector(lengthBytes: 2), cursor.vector(lengthBytes: 1) != nil
    else { return nil }
    var hello = TLSClientHello(
        legacyVersion: version, serverName: nil, offeredVersions: [version], alpn: [], cipherSuiteCount: suites.count / 2)
    guard let extensions = cursor.vector(lengthBytes: 2) else { return hello }
    forEachExtension(Array(extensions)) { type, data in
        var inner = ByteCursor(Array(data))
        switch type {
        case 0:
            // server_name (RFC 6066 §3): list of (type, host name).
            guard let list = inner.vector(lengthBytes: 2) else { return }
            var names = ByteCursor(Array(list))
            while let kind = names.u8(), let name = names.vector(lengthBytes: 2) {
                if kind == 0 { hello.serverName = String(decoding: name.prefix(255), as: UTF8.self) }
            }
        case 16:
            hello.alpn = protocolNames(&inner)
        case 43:
            // supported_versions (RFC 8446 §4.2.1): 1-byte length, 2-byte versions.
            guard let list = inner.vector(lengthBytes: 1) else { return }
            var versions = ByteCursor(Array(list))
            var offered: [UInt16] = []
            while offered.count < 16, let value = versions.u16() { offered.append(value) }
            hello.offeredVersions = offered.filter { $0 & 0x0F0F != 0x0A0A }  // GREASE (RFC 8701) left out
        default: break
        }
    }
    return hello
}

/// ServerHello (RFC 8446 §4.1.3).
func parseServerHello(_ message: [UInt8]) -> TLSServerHello? {
    var cursor = ByteCursor(message)
    guard let version = cursor.u16(), cursor.take(32) != nil, cursor.vector(lengthBytes: 1) != nil,
        let suite = cursor.u16(), cursor.u8() != nil
    else { return nil }
    var hello = TLSServerHello(version: version, cipherSuite: suite, alpn: nil)
    guard let extensions = cursor.vector(lengthBytes: 2) else { return hello }
    forEachExtension(Array(extensions)) { type, data in
        var inner = ByteCursor(Array(data))
        switch type {
        case 16: hello.alpn = protocolNames(&inner).first
        case 43: if let selected = inner.u16() { hello.version = selected }
        default: break
        }
    }
    return hello
}

private func forEachExtension(_ bytes: [UInt8], _ body: (UInt16, ArraySlice<UInt8>) -> Void) {
    var cursor = ByteCursor(bytes)
    var count = 0
    while count < 64, let type = cursor.u16(), let data = cursor.vector(lengthBytes: 2) {
        body(type, data)
        count += 1
    }
}

/// ALPN (RFC 7301 §3.1): 2-byte list length, then 1-byte-length names.
private func protocolNames(_ cursor: inout ByteCursor) -> [String] {
    guard let list = cursor.vector(lengthBytes: 2) else { return [] }
    var names = ByteCursor(Array(list))
    var result: [String] = []
    while result.count < 16, let name = names.vector(lengthBytes: 1) {
        result.append(String(decoding: name.prefix(64), as: UTF8.self))
    }
    return result
}

/// TLS versions as people write them.
public func tlsVersionName(_ version: UInt16) -> String {
    switch version {
    case 0x0300: "SSL 3.0"
    case 0x0301: "TLS 1.0"
    case 0x0302: "TLS 1.1"
    case 0x0303: "TLS 1.2"
    case 0x0304: "TLS 1.3"
    default: "0x" + String(version, radix: 16)
    }
}

/// Alert descriptions (RFC 8446 §6, RFC 5246 §7.2, RFC 7301 §3.2).
public func tlsAlertName(_ code: UInt8) -> String {
    switch code {
    case 0: "close_notify"
    case 10: "unexpected_message"
    case 20: "bad_record_mac"
    case 21: "decryption_failed"
    case 22: "record_overflow"
    case 30: "decompression_failure"
    case 40: "handshake_failure"
    case 41: "no_certificate"
    case 42: "bad_certificate"
    case 43: "unsupported_certificate"
    case 44: "certificate_revoked"
    case 45: "certificate_expired"
    case 46: "certificate_unknown"
    case 47: "illegal_parameter"
    case 48: "unknown_ca"
    case 49: "access_denied"
    case 50: "decode_error"
    case 51: "decrypt_error"
    case 60: "export_restriction"
    case 70: "protocol_version"
    case 71: "insufficient_security"
    case 80: "internal_error"
    case 86: "inappropriate_fallback"
    case 90: "user_canceled"
    case 100: "no_renegotiation"
    case 109: "missing_extension"
    case 110: "unsupported_extension"
    case 111: "certificate_unobtainable"
    case 112: "unrecognized_name"
    case 113: "bad_certificate_status_response"
    case 114: "bad_certificate_hash_value"
    case 115: "unknown_psk_identity"
    case 116: "certificate_required"
    case 120: "no_application_protocol"
    default: "alert_\(code)"
    }
}
