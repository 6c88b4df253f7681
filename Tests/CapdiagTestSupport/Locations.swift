import Foundation

/// Where the test captures are.
public enum Locations {
    /// The repository root, from this file's path (Tests/CapdiagTestSupport/Locations.swift).
    public static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `Captures/` in the repository.
    public static let captures = repositoryRoot.appending(path: "Captures")

    public static func capture(_ name: String) -> String { captures.appending(path: name).path }

    /// The shared public corpus: `$CAPDIAG_PUBLIC_CAPTURES`, or `../shared/captures/public`
    /// beside the repository. Nil when neither exists.
    public static let publicCorpus: URL? = {
        var candidates: [URL] = []
        if let path = ProcessInfo.processInfo.environment["CAPDIAG_PUBLIC_CAPTURES"], !path.isEmpty {
            candidates.append(URL(fileURLWithPath: path))
        }
        candidates.append(repositoryRoot.deletingLastPathComponent().appending(path: "shared/captures/public"))
        return candidates.first { FileManager.default.fileExists(atPath: $0.appending(path: "MANIFEST.tsv").path) }
    }()

    /// Files of the public corpus in one folder (`http-tcp`, `tls`, `robustness`), sorted.
    public static func publicFiles(_ folder: String) -> [String] {
        guard let root = publicCorpus?.appending(path: folder),
            let names = try? FileManager.default.contentsOfDirectory(atPath: root.path)
        else { return [] }
        return names.filter { $0.hasSuffix(".pcap") || $0.hasSuffix(".pcapng") }.sorted()
            .map { root.appending(path: $0).path }
    }

    /// The `capdiag` executable built beside the test bundle.
    public static var capdiagExecutable: URL {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appending(path: "capdiag")
        if FileManager.default.isExecutableFile(atPath: beside.path) { return beside }
        return repositoryRoot.appending(path: ".build/debug/capdiag")
    }

    /// Runs a program and returns its exit status, stdout and stderr.
    public static func run(_ executable: URL, _ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let out = Pipe()
        // stderr goes to a file so that neither pipe can fill up and block the child.
        let errURL = FileManager.default.temporaryDirectory.appending(path: "capdiag-test-\(UUID().uuidString).err")
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let errHandle = try FileHandle(forWritingTo: errURL)
        defer { try? FileManager.default.removeItem(at: errURL) }
        process.standardOutput = out
        process.standardError = errHandle
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try errHandle.close()
        let errData = (try? Data(contentsOf: errURL)) ?? Data()
        return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
    }
}

/// Reading capdiag's JSON endpoints (`{address, port}`, schema capdiag/3) back as the
/// "address:port" text the lab labels and sentences use.
public enum JSONEndpoint {
    public static func text(_ value: Any?) -> String? {
        guard let object = value as? [String: Any], let address = object["address"] as? String, let port = object["port"] as? Int else { return nil }
        return address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)"
    }
}
