import CapdiagWire
import Testing

@testable import CapdiagProtocols

@Suite struct DNS {
    // A response for example.com A with one answer whose owner is a compression pointer.
    let response: [UInt8] = [
        0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0,
        7, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 3, 0x63, 0x6f, 0x6d, 0, 0, 1, 0, 1,
        0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 93, 184, 216, 34,
    ]

    @Test func parsesAResponseWithACompressedAnswer() throws {
        let message = try #require(DNSMessage(response))
        #expect(message.id == 0x1234 && message.isResponse && message.rcodeName == "NOERROR")
        #expect(message.name == "example.com" && message.queryType == 1)
        #expect(message.answers == ["93.184.216.34"])
    }

    @Test(arguments: 0..<45) func everyTruncationIsRejectedOrPartial(length: Int) {
        // Cut inside the header or question: no message. Cut inside the answer: no answer.
        let message = DNSMessage(Array(response.prefix(length)))
        if length < 29 { #expect(message == nil) } else { #expect(message?.answers.isEmpty == true) }
    }

    @Test func pointerLoopsAreRejected() {
        let looping: [UInt8] = [0, 1, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1]
        #expect(DNSMessage(looping) == nil)
    }

    @Test func matchesQueriesAndFlagsProblems() {
        var tracker = DNSTracker()
        var query = response
        query[2] = 0x01
        query[3] = 0x00
        var nxdomain = response
        nxdomain[3] = 0x83
        let t = Timestamp(nanoseconds: 0)
        tracker.message(query, source: "c:1", destination: "s:53", frame: 1, time: t)
        tracker.message(nxdomain, source: "s:53", destination: "c:1", frame: 2, time: t + 1_000_000)
        tracker.message(query, source: "c:2", destination: "s:53", frame: 3, time: t + 2_000_000)
        tracker.message(response, source: "s:53", destination: "c:9", frame: 4, time: t + 3_000_000)
        tracker.finish()
        #expect(tracker.queries == 2 && tracker.responses == 2)
        #expect(tracker.rcodes == ["NXDOMAIN": 1, "NOERROR": 1])
        #expect(tracker.unmatchedResponses == 1 && tracker.unanswered == 1)
        #expect(tracker.problems.map(\.rcode) == ["NXDOMAIN", nil])
        #expect(tracker.problems.first?.latency == 1_000_000)
    }
}
