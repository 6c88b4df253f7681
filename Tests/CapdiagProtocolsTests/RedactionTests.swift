import CapdiagProtocols
import Testing

/// Credentials are masked wherever captured text is shown; `.serialized` because the switch
/// is process-wide.
@Suite(.serialized) struct RedactionRules {
    @Test func queryCredentialsAndURLPasswordsAreMasked() {
        #expect(Redaction.target("/a?token=abc&page=2&API_KEY=k1") == "/a?token=REDACTED&page=2&API_KEY=REDACTED")
        #expect(Redaction.target("http://user:pw@host/x?q=1") == "http://user:REDACTED@host/x?q=1")
        #expect(Redaction.target("/plain/path") == "/plain/path")
        #expect(Redaction.target("/a?token=") == "/a?token=", "an empty value has nothing to hide")
    }

    @Test func headerValuesInQuotedTextAreMasked() {
        #expect(Redaction.text("header line 2: 'Cookie: a=b; c=d'") == "header line 2: 'Cookie: REDACTED'")
        #expect(Redaction.text("x authorization:Bearer abc\r\nnext") == "x authorization: REDACTED\r\nnext")
    }

    @Test func rawBytesKeepTheirLength() {
        var bytes = Array("GET /x?sig=abc&a=1 HTTP/1.1\r\nHost: h\r\nAuthorization: Basic dXNlcg==\r\nSet-Cookie: s=1\r\n\r\nbody".utf8)
        let length = bytes.count
        Redaction.maskHeaders(in: &bytes)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(bytes.count == length)
        #expect(text == "GET /x?sig=***&a=1 HTTP/1.1\r\nHost: h\r\nAuthorization: **************\r\nSet-Cookie: ***\r\n\r\nbody")
    }

    @Test func noRedactShowsEverything() {
        #expect(Redaction.target("/a?token=abc", enabled: false) == "/a?token=abc")
        #expect(Redaction.text("Cookie: a", enabled: false) == "Cookie: a")
    }

    /// A password in a proxy request's userinfo is masked in exported bytes too, in place.
    @Test func exportedRequestLinesLoseTheirUserinfoPassword() {
        var bytes = Array("GET http://alice:S3cret-pw@upstream.test:8080/a?token=t1 HTTP/1.1\r\nHost: upstream.test\r\n\r\n".utf8)
        let count = bytes.count
        Redaction.maskHeaders(in: &bytes)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(bytes.count == count)
        #expect(!text.contains("S3cret-pw") && !text.contains("t1 "))
        #expect(text.hasPrefix("GET http://alice:*********@upstream.test:8080/a?token=** HTTP/1.1"))
    }
}
