import CapdiagWire

/// Community ID v1 (https://github.com/corelight/community-id-spec), the flow hash Zeek,
/// Suricata, Arkime and Elastic compute, so a capdiag flow can be found in their data:
/// `1:` + base64(SHA-1(seed, smaller endpoint's address, larger's, protocol, 0, their ports)).
public enum CommunityID {
    /// The ID of a TCP connection between two endpoints (order does not matter), seed 0.
    public static func tcp(_ one: Endpoint, _ other: Endpoint, seed: UInt16 = 0) -> String {
        // The endpoint with the smaller address (then port) goes first, bytes in network order.
        let (first, second) = order(one, other)
        var bytes: [UInt8] = [UInt8(seed >> 8), UInt8(seed & 0xFF)]
        let v4 = first.address.isIPv4 && second.address.isIPv4
        bytes += addressBytes(first.address, v4: v4)
        bytes += addressBytes(second.address, v4: v4)
        bytes += [6, 0]
        bytes += [UInt8(first.port >> 8), UInt8(first.port & 0xFF), UInt8(second.port >> 8), UInt8(second.port & 0xFF)]
        return "1:" + base64(SHA1.digest(bytes))
    }

    static func order(_ one: Endpoint, _ other: Endpoint) -> (Endpoint, Endpoint) {
        let a = addressBytes(one.address, v4: false)
        let b = addressBytes(other.address, v4: false)
        if a.lexicographicallyPrecedes(b) { return (one, other) }
        if b.lexicographicallyPrecedes(a) { return (other, one) }
        return one.port <= other.port ? (one, other) : (other, one)
    }

    static func addressBytes(_ address: IPAddress, v4: Bool) -> [UInt8] {
        var bytes: [UInt8] = []
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8((address.high >> UInt64(shift)) & 0xFF)) }
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8((address.low >> UInt64(shift)) & 0xFF)) }
        return v4 ? Array(bytes.suffix(4)) : bytes
    }

    static func base64(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let chunk = Array(bytes[index..<min(index + 3, bytes.count)])
            let value = (UInt32(chunk[0]) << 16) | (UInt32(chunk.count > 1 ? chunk[1] : 0) << 8) | UInt32(chunk.count > 2 ? chunk[2] : 0)
            out.append(alphabet[Int((value >> 18) & 63)])
            out.append(alphabet[Int((value >> 12) & 63)])
            out.append(chunk.count > 1 ? alphabet[Int((value >> 6) & 63)] : UInt8(ascii: "="))
            out.append(chunk.count > 2 ? alphabet[Int(value & 63)] : UInt8(ascii: "="))
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// SHA-1 (FIPS 180-4), only for Community ID: an identifier, not a security measure.
enum SHA1 {
    static func digest(_ message: [UInt8]) -> [UInt8] {
        var h: [UInt32] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0]
        var data = message
        let bitLength = UInt64(message.count) &* 8
        data.append(0x80)
        while data.count % 64 != 56 { data.append(0) }
        for shift in stride(from: 56, through: 0, by: -8) { data.append(UInt8((bitLength >> UInt64(shift)) & 0xFF)) }
        var w = [UInt32](repeating: 0, count: 80)
        for block in stride(from: 0, to: data.count, by: 64) {
            for t in 0..<16 {
                let i = block + t * 4
                w[t] = UInt32(data[i]) << 24 | UInt32(data[i + 1]) << 16 | UInt32(data[i + 2]) << 8 | UInt32(data[i + 3])
            }
            for t in 16..<80 { w[t] = rotate(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1) }
            var (a, b, c, d, e) = (h[0], h[1], h[2], h[3], h[4])
            for t in 0..<80 {
                let (f, k): (UInt32, UInt32)
                switch t {
                case 0..<20: (f, k) = ((b & c) | (~b & d), 0x5A82_7999)
                case 20..<40: (f, k) = (b ^ c ^ d, 0x6ED9_EBA1)
                case 40..<60: (f, k) = ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC)
                default: (f, k) = (b ^ c ^ d, 0xCA62_C1D6)
                }
                let temp = rotate(a, 5) &+ f &+ e &+ k &+ w[t]
                (e, d, c, b, a) = (d, c, rotate(b, 30), a, temp)
            }
            h[0] = h[0] &+ a
            h[1] = h[1] &+ b
            h[2] = h[2] &+ c
            h[3] = h[3] &+ d
            h[4] = h[4] &+ e
        }
        return h.flatMap { word in [UInt8(word >> 24), UInt8((word >> 16) & 0xFF), UInt8((word >> 8) & 0xFF), UInt8(word & 0xFF)] }
    }

    static func rotate(_ value: UInt32, _ bits: UInt32) -> UInt32 { (value << bits) | (value >> (32 - bits)) }
}
