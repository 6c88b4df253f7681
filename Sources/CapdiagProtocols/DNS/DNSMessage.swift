/// A DNS message, as far as diagnosis needs it (RFC 1035 §4.1): header, first question,
/// and the A, AAAA and CNAME answers.
public struct DNSMessage: Sendable, Equatable {
    public var id: UInt16
    public var isResponse: Bool
    public var opcode: UInt8
    public var rcode: UInt8
    public var truncated: Bool
    public var name: String
    public var queryType: UInt16
    /// Answer data as text: addresses and CNAME targets, in message order.
    public var answers: [String]

    /// Parses a message. Returns nil when it is malformed (bounds, label or pointer rules).
    public init?(_ bytes: [UInt8]) {
        guard bytes.count >= 12 else { return nil }
        func u16(_ at: Int) -> UInt16 { UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1]) }
        id = u16(0)
        let flags = u16(2)
        isResponse = flags & 0x8000 != 0
        opcode = UInt8((flags >> 11) & 0x0F)
        truncated = flags & 0x0200 != 0
        rcode = UInt8(flags & 0x000F)
        let questions = Int(u16(4))
        let answerCount = Int(u16(6))
        var offset = 12
        guard questions >= 1, let (qname, afterName) = readName(bytes, at: offset), afterName + 4 <= bytes.count else {
            return nil
        }
        name = qname
        queryType = u16(afterName)
        offset = afterName + 4
        for _ in 1..<max(questions, 1) {
            guard let (_, next) = readName(bytes, at: offset), next + 4 <= bytes.count else { return nil }
            offset = next + 4
        }
        answers = []
        for _ in 0..<min(answerCount, 64) {
            guard let (_, afterOwner) = readName(bytes, at: offset), afterOwner + 10 <= bytes.count else { break }
            let type = u16(afterOwner)
            let length = Int(u16(afterOwner + 8))
            let data = afterOwner + 10
            guard data + length <= bytes.count else { break }
            switch (type, length) {
            case (1, 4): answers.append(bytes[data..<(data + 4)].map(String.init).joined(separator: "."))
            case (28, 16):
                answers.append(
                    stride(from: data, to: data + 16, by: 2).map { String(u16($0), radix: 16) }.joined(separator: ":"))
            case (5, _): if let (target, _) = readName(bytes, at: data) { answers.append(target) }
            default: break
            }
            offset = data + length
        }
    }

    /// The response code's name (RFC 1035 §4.1.1, RFC 6895).
    public var rcodeName: String {
        switch rcode {
        case 0: "NOERROR"
        case 1: "FORMERR"
        case 2: "SERVFAIL"
        case 3: "NXDOMAIN"
        case 4: "NOTIMP"
        case 5: "REFUSED"
        default: "RCODE\(rcode)"
        }
    }
}

/// Reads a possibly compressed domain name (RFC 1035 §4.1.4).
/// - Returns: the name and the offset after it in the message (after the first pointer, if
///   one was followed), or nil on a malformed name. At most 16 pointers are followed.
func readName(_ bytes: [UInt8], at start: Int) -> (String, Int)? {
    var labels: [String] = []
    var offset = start
    var end: Int?
    var jumps = 0
    var length = 0
    while true {
        guard offset < bytes.count else { return nil }
        let byte = bytes[offset]
        switch byte & 0xC0 {
        case 0xC0:
            guard offset + 1 < bytes.count, jumps < 16 else { return nil }
            if end == nil { end = offset + 2 }
            offset = Int(byte & 0x3F) << 8 | Int(bytes[offset + 1])
            jumps += 1
        case 0x00:
            if byte == 0 { return (labels.isEmpty ? "." : labels.joined(separator: "."), end ?? offset + 1) }
            let count = Int(byte)
            guard offset + 1 + count <= bytes.count else { return nil }
            length += count + 1
            guard length <= 255 else { return nil }
            labels.append(String(decoding: bytes[(offset + 1)..<(offset + 1 + count)], as: UTF8.self))
            offset += 1 + count
        default:
            return nil
        }
    }
}
