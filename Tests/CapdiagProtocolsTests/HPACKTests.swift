import CapdiagTestSupport
import Testing

@testable import CapdiagProtocols

/// Hex (whitespace ignored) to bytes, as the RFC prints its examples.
func hexBytes(_ text: String) -> [UInt8] {
    let digits = Array(text.filter { !$0.isWhitespace })
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
}

/// Decodes one block, returning the fields as (name, value) strings and the error.
func decodeBlock(_ decoder: inout HPACKDecoder, _ block: [UInt8]) -> ([[String]], HPACKError?) {
    var fields: [[String]] = []
    let error = decoder.decode(block) { fields.append([$0.nameString, $0.valueString]) }
    return (fields, error)
}

@Suite struct HPACKRFC7541Examples {
    let request1 = [[":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"]]
    let request2 = [[":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"], ["cache-control", "no-cache"]]
    let request3 = [[":method", "GET"], [":scheme", "https"], [":path", "/index.html"], [":authority", "www.example.com"], ["custom-key", "custom-value"]]
    let response1 = [[":status", "302"], ["cache-control", "private"], ["date", "Mon, 21 Oct 2013 20:13:21 GMT"], ["location", "https://www.example.com"]]
    let response2 = [[":status", "307"], ["cache-control", "private"], ["date", "Mon, 21 Oct 2013 20:13:21 GMT"], ["location", "https://www.example.com"]]
    let response3 = [
        [":status", "200"], ["cache-control", "private"], ["date", "Mon, 21 Oct 2013 20:13:22 GMT"], ["location", "https://www.example.com"],
        ["content-encoding", "gzip"], ["set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"],
    ]

    @Test func staticTableHas61Entries() {
        #expect(hpackStaticTable.count == 61)
        #expect(hpackStaticTable[0].name == ":authority" && hpackStaticTable[60].name == "www-authenticate")
        #expect(hpackHuffmanCodes.count == 257 && hpackHuffmanCodes[256].length == 30)
    }

    /// C.2: one representation of each kind, each in a fresh decoder.
    @Test func c2HeaderFieldRepresentations() {
        var decoder = HPACKDecoder()
        var (fields, error) = decodeBlock(&decoder, hexBytes("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"))
        #expect(error == nil && fields == [["custom-key", "custom-header"]])
        #expect(decoder.tableSize == 55 && decoder.dynamicEntryCount == 1)

        decoder = HPACKDecoder()
        (fields, error) = decodeBlock(&decoder, hexBytes("040c 2f73 616d 706c 652f 7061 7468"))
        #expect(error == nil && fields == [[":path", "/sample/path"]] && decoder.tableSize == 0)

        decoder = HPACKDecoder()
        var neverIndexed: [Bool] = []
        error = decoder.decode(hexBytes("1008 7061 7373 776f 7264 0673 6563 7265 74")) { neverIndexed.append($0.neverIndexed) }
        #expect(error == nil && neverIndexed == [true] && decoder.tableSize == 0)

        decoder = HPACKDecoder()
        (fields, error) = decodeBlock(&decoder, [0x82])
        #expect(error == nil && fields == [[":method", "GET"]] && decoder.tableSize == 0)
    }

    func requests(_ blocks: [String]) {
        var decoder = HPACKDecoder()
        var (fields, error) = decodeBlock(&decoder, hexBytes(blocks[0]))
        #expect(error == nil && fields == request1 && decoder.tableSize == 57)
        #expect(decoder.dynamicEntry(1) == HPACKField(":authority", "www.example.com"))
        (fields, error) = decodeBlock(&decoder, hexBytes(blocks[1]))
        #expect(error == nil && fields == request2 && decoder.tableSize == 110)
        #expect(decoder.dynamicEntry(1) == HPACKField("cache-control", "no-cache"))
        (fields, error) = decodeBlock(&decoder, hexBytes(blocks[2]))
        #expect(error == nil && fields == request3 && decoder.tableSize == 164 && decoder.dynamicEntryCount == 3)
        #expect(decoder.dynamicEntry(1) == HPACKField("custom-key", "custom-value"))
        #expect(decoder.dynamicEntry(3) == HPACKField(":authority", "www.example.com"))
    }

    /// C.3: three requests on one connection, no Huffman.
    @Test func c3RequestsWithoutHuffman() {
        requests([
            "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d", "8286 84be 5808 6e6f 2d63 6163 6865",
            "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
        ])
    }

    /// C.4: the same requests, Huffman-coded.
    @Test func c4RequestsWithHuffman() {
        requests([
            "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff", "8286 84be 5886 a8eb 1064 9cbf",
            "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
        ])
    }

    func responses(_ blocks: [String]) {
        // The examples' encoder uses a 256-byte table, so entries are evicted.
        var decoder = HPACKDecoder(tableSizeLimit: 256)
        #expect(decoder.maximumTableSize == 256)
        var (fields, error) = decodeBlock(&decoder, hexBytes(blocks[0]))
        #expect(error == nil && fields == response1 && decoder.tableSize == 222 && decoder.dynamicEntryCount == 4)
        (fields, error) = decodeBlock(&decoder, hexBytes(blocks[1]))
        #expect(error == nil && fields == response2 && decoder.tableSize == 222 && decoder.dynamicEntryCount == 4)
        #expect(decoder.dynamicEntry(1) == HPACKField(":status", "307"))
        #expect(decoder.dynamicEntry(4) == HPACKField("cache-control", "private"))
        (fields, error) = decodeBlock(&decoder, hexBytes(blocks[2]))
        #expect(error == nil && fields == response3 && decoder.tableSize == 215 && decoder.dynamicEntryCount == 3)
        #expect(decoder.dynamicEntry(1)?.nameString == "set-cookie")
        #expect(decoder.dynamicEntry(3) == HPACKField("date", "Mon, 21 Oct 2013 20:13:22 GMT"))
    }

    /// C.5: three responses, no Huffman, with evictions.
    @Test func c5ResponsesWithoutHuffman() {
        responses([
            """
            4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d
            546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d
            """,
            "4803 3330 37c1 c0bf",
            """
            88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f
            6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b
            2076 6572 7369 6f6e 3d31
            """,
        ])
    }

    /// C.6: the same responses, Huffman-coded.
    @Test func c6ResponsesWithHuffman() {
        responses([
            """
            4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7
            8f0b 97c8 e9ae 82ae 43d3
            """,
            "4883 640e ffc1 c0bf",
            """
            88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335
            dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07
            """,
        ])
    }

    /// C.1: integers with 5-bit prefixes (10, 1337) and an 8-bit prefix (42).
    @Test func c1Integers() throws {
        var reader = HPACKDecoder.Reader(bytes: [0x0a])
        #expect(try reader.integer(prefixBits: 5) == 10)
        reader = HPACKDecoder.Reader(bytes: [0x1f, 0x9a, 0x0a])
        #expect(try reader.integer(prefixBits: 5) == 1337 && reader.index == 3)
        reader = HPACKDecoder.Reader(bytes: [0x2a])
        #expect(try reader.integer(prefixBits: 8) == 42)
    }

    @Test(arguments: ["", "a", "www.example.com", "custom-value", "Mon, 21 Oct 2013 20:13:21 GMT", "\u{0}\u{1}\u{7f}ÿé"])
    func huffmanRoundTrip(_ text: String) {
        let bytes = Array(text.utf8) + (text.isEmpty ? [] : [0xff, 0x00, 0x80])
        #expect(HPACKHuffman.decode(HPACKHuffman.encode(bytes)[...]) == bytes)
    }
}

@Suite struct HPACKHostileInput {
    @Test func hugeIntegersAreAnErrorNotATrap() {
        var decoder = HPACKDecoder()
        // Indexed field with index 2^63-ish: ten continuation bytes.
        let (_, error) = decodeBlock(&decoder, [0xff] + [UInt8](repeating: 0xff, count: 10) + [0x01])
        #expect(error == .integerOverflow(offset: 0))
        #expect(decoder.isUnusable)
        // Every later block is refused: the table is out of step.
        #expect(decodeBlock(&decoder, [0x82]).1 == .unusable)
        // A string length of 2^31 (above the limit) and one that fits in 5 bytes but exceeds Int32.
        var second = HPACKDecoder()
        #expect(decodeBlock(&second, [0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0x0f]).1 == .integerOverflow(offset: 1))
    }

    @Test func truncatedStringsAndIntegers() {
        let block = hexBytes("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572")
        // Every proper prefix fails (as truncated), never traps; the whole block decodes.
        for length in 1..<block.count {
            var decoder = HPACKDecoder()
            let (_, error) = decodeBlock(&decoder, Array(block[..<length]))
            guard case .truncated = error else {
                Issue.record("prefix \(length): \(String(describing: error))")
                continue
            }
        }
        var decoder = HPACKDecoder()
        #expect(decodeBlock(&decoder, [0x1f]).1 == .truncated(offset: 1, needed: 1))
        decoder = HPACKDecoder()
        #expect(decodeBlock(&decoder, [0x04, 0x0c, 0x2f]).1 == .truncated(offset: 2, needed: 11))
    }

    @Test func indexesOutOfRange() {
        var decoder = HPACKDecoder()
        #expect(decodeBlock(&decoder, [0x80]).1 == .indexZero(offset: 0))
        decoder = HPACKDecoder()
        #expect(decodeBlock(&decoder, [0xbe]).1 == .indexOutOfRange(index: 62, tableEntries: 61, offset: 0))
        decoder = HPACKDecoder()
        // A literal whose indexed name is out of range.
        #expect(decodeBlock(&decoder, [0x7f, 0x00, 0x01, 0x61]).1 == .indexOutOfRange(index: 63, tableEntries: 61, offset: 0))
        // Fields before the error are delivered; the entry added before it is not trusted afterwards.
        decoder = HPACKDecoder()
        let (fields, error) = decodeBlock(&decoder, [0x82, 0xff, 0x00])
        #expect(fields == [[":method", "GET"]] && error == .indexOutOfRange(index: 127, tableEntries: 61, offset: 1))
    }

    @Test func tableSizeUpdates() {
        // Up to the advertised size is fine, and evicts.
        var decoder = HPACKDecoder()
        _ = decodeBlock(&decoder, hexBytes("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"))
        #expect(decoder.dynamicEntryCount == 1)
        #expect(decodeBlock(&decoder, [0x20]).1 == nil)
        #expect(decoder.dynamicEntryCount == 0 && decoder.maximumTableSize == 0)
        #expect(decodeBlock(&decoder, [0x3f, 0xe1, 0x1f]).1 == nil)
        #expect(decoder.maximumTableSize == 4096)
        // Above SETTINGS_HEADER_TABLE_SIZE (4096 by default): an error.
        decoder = HPACKDecoder()
        #expect(decodeBlock(&decoder, [0x3f, 0xe2, 0x1f]).1 == .tableSizeAboveLimit(size: 4097, limit: 4096, offset: 0))
        // A peer that advertises more may be used up to it, never above the hard cap.
        decoder = HPACKDecoder()
        decoder.advertisedTableSize(1 << 30)
        #expect(decoder.tableSizeLimit == HPACKDecoder.hardTableSizeCap)
        #expect(decodeBlock(&decoder, [0x3f, 0xe1, 0xff, 0x03]).1 == nil)
        #expect(decoder.maximumTableSize == 65_536)
        #expect(decodeBlock(&decoder, [0x3f, 0xe2, 0xff, 0x03]).1 == .tableSizeAboveLimit(size: 65_537, limit: 65_536, offset: 0))
        // After a field, an update is an error (RFC 7541 §4.2).
        decoder = HPACKDecoder()
        #expect(decodeBlock(&decoder, [0x82, 0x20]).1 == .tableSizeUpdateNotAtStart(offset: 1))
    }

    @Test func entryLargerThanTheTableEmptiesIt() {
        var decoder = HPACKDecoder(tableSizeLimit: 64)
        _ = decodeBlock(&decoder, [0x40, 0x01, 0x61, 0x01, 0x62])
        #expect(decoder.dynamicEntryCount == 1 && decoder.tableSize == 34)
        // 40 + 32 bytes > 64: the table empties and nothing is added, no error (RFC 7541 §4.4).
        let (fields, error) = decodeBlock(&decoder, [0x40, 0x04] + Array("abcd".utf8) + [0x24] + [UInt8](repeating: 0x7a, count: 36))
        #expect(error == nil && fields.count == 1 && decoder.dynamicEntryCount == 0 && decoder.tableSize == 0)
    }

    @Test func badHuffman() {
        var decoder = HPACKDecoder()
        // EOS (30 ones) inside a string.
        #expect(decodeBlock(&decoder, [0x00, 0x84, 0xff, 0xff, 0xff, 0xff, 0x81, 0x61]).1 == .invalidHuffman(offset: 2))
        // Padding that is not all ones: 'a' is 00011 (5 bits), then 000.
        decoder = HPACKDecoder()
        #expect(decodeBlock(&decoder, [0x00, 0x81, 0x18, 0x81, 0x1f]).1 == .invalidHuffman(offset: 2))
        // Padding longer than 7 bits: 'a' then a whole byte of ones.
        decoder = HPACKDecoder()
        #expect(decodeBlock(&decoder, [0x00, 0x81, 0x1f, 0x82, 0x1f, 0xff]).1 == .invalidHuffman(offset: 4))
    }

    /// Random bytes never trap, and whatever decodes keeps the table within its limit.
    @Test func randomBlocksNeverTrap() {
        var random = SplitMix(state: 7)
        for _ in 0..<3000 {
            var decoder = HPACKDecoder(tableSizeLimit: 512)
            for _ in 0..<3 {
                let length = Int(random.next() % 64)
                let block = (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                _ = decoder.decode(block) { _ in }
                #expect(decoder.tableSize <= decoder.maximumTableSize && decoder.maximumTableSize <= 512)
            }
        }
    }
}
