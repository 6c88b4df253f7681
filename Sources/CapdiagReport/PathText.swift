/// Path arithmetic on plain strings (what `NSString`'s path methods did, without Foundation:
/// the static binary stays small with FoundationEssentials alone).
public enum PathText {
    /// `a/b/c.pcap` → `c.pcap`.
    public static func lastComponent(_ path: String) -> String {
        let trimmed = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        return trimmed.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? trimmed
    }

    /// `a/b/c.pcap` → `a/b`; `c.pcap` → ``; `/c` → `/`.
    public static func deletingLastComponent(_ path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return "" }
        return slash == trimmed.startIndex ? "/" : String(trimmed[..<slash])
    }

    /// `a/b` + `c` → `a/b/c`.
    public static func appending(_ directory: String, _ name: String) -> String {
        directory.isEmpty ? name : directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }
}
