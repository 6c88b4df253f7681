import CapdiagWire
import Foundation
import Testing

@testable import CapdiagFlow

/// Community ID v1 against the reference implementation (PyPI `communityid` 1.5.0, computed
/// once; the first vector is the specification's own example) and SHA-1 against FIPS 180 values.
@Suite struct CommunityIDs {
    static func endpoint(_ text: String, _ port: UInt16) -> Endpoint {
        var address = IPAddress(high: 0, low: 0)
        if text.contains(":") {
            var groups: [UInt16] = []
            let halves = text.components(separatedBy: "::")
            let head = halves[0].isEmpty ? [] : halves[0].split(separator: ":").map { UInt16($0, radix: 16) ?? 0 }
            let tail = halves.count > 1 && !halves[1].isEmpty ? halves[1].split(separator: ":").map { UInt16($0, radix: 16) ?? 0 } : []
            groups = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
            let words = groups.map(UInt64.init)
            address = IPAddress(
                high: words[0] << 48 | words[1] << 32 | words[2] << 16 | words[3], low: words[4] << 48 | words[5] << 32 | words[6] << 16 | words[7])
        } else {
            let octets = text.split(separator: ".").compactMap { UInt32($0) }
            address = IPAddress(ipv4: octets[0] << 24 | octets[1] << 16 | octets[2] << 8 | octets[3])
        }
        return Endpoint(address: address, port: port)
    }

    @Test(arguments: [
        ("128.232.110.120", 34855, "66.35.250.204", 80, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="),
        ("66.35.250.204", 80, "128.232.110.120", 34855, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="),
        ("10.77.2.1", 47540, "10.77.2.2", 9012, "1:TACk1qsT0jeCZqLhYqyllinAWLM="),
        ("127.0.0.1", 18400, "127.0.0.1", 44512, "1:fX5PlNY1djqk6ll3IziFYQ1xxqc="),
        ("127.0.0.1", 44512, "127.0.0.1", 18400, "1:fX5PlNY1djqk6ll3IziFYQ1xxqc="),
        ("::1", 47540, "::1", 9012, "1:XK4bmCS5awzJOE+wPtLGJBLIhnM="),
        ("2001:db8::1", 443, "2001:db8::2", 51000, "1:2TiKiiiSIuDma9IxOEOpx4wCXWM="),
    ] as [(String, UInt16, String, UInt16, String)])
    func matchesTheReference(_ a: String, _ aPort: UInt16, _ b: String, _ bPort: UInt16, _ expected: String) {
        #expect(CommunityID.tcp(Self.endpoint(a, aPort), Self.endpoint(b, bPort)) == expected)
    }

    @Test func sha1KnownAnswers() {
        func hex(_ bytes: [UInt8]) -> String { bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() }
        #expect(hex(SHA1.digest(Array("abc".utf8))) == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(hex(SHA1.digest(Array(repeating: UInt8(ascii: "a"), count: 1000))) == "291e9a6c66994949b57ba5e650361e98fc36b1ba")
        #expect(hex(SHA1.digest([])) == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
    }
}
