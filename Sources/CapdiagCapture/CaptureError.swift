/// An operational error from libpcap: which C function failed, on what, and libpcap's own
/// text (from `errbuf` or `pcap_geterr`).
public struct CaptureError: Error, Sendable, CustomStringConvertible {
    public var function: String
    public var subject: String
    public var message: String

    public init(function: String, subject: String, message: String) {
        self.function = function
        self.subject = subject
        self.message = message
    }

    /// `subject: message`, without repeating the subject when libpcap's text already starts with it.
    public var description: String { message.hasPrefix(subject) ? message : "\(subject): \(message)" }
}
