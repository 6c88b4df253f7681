import CPcap
import Glibc
import Logging

/// A compressed capture (`.pcap.gz`, `.pcap.zst`, `.pcap.xz`, `.pcap.bz2`), recognised by its
/// first bytes whatever its name, and read through the decompressor's standard output: the
/// packets stream through a pipe, so nothing is unpacked to disk and memory stays flat.
struct Decompressor {
    /// The program, its arguments, and the Debian package that has it.
    let program: String
    let arguments: [String]
    let package: String

    /// The decompressor for a file starting with `magic`, if it is compressed.
    static func detect(_ magic: [UInt8]) -> Decompressor? {
        if magic.starts(with: [0x1F, 0x8B]) { return Decompressor(program: "gzip", arguments: ["-dc"], package: "gzip") }
        if magic.starts(with: [0x28, 0xB5, 0x2F, 0xFD]) { return Decompressor(program: "zstd", arguments: ["-dcq"], package: "zstd") }
        if magic.starts(with: [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]) { return Decompressor(program: "xz", arguments: ["-dc"], package: "xz-utils") }
        if magic.starts(with: [0x42, 0x5A, 0x68]) { return Decompressor(program: "bzip2", arguments: ["-dc"], package: "bzip2") }
        return nil
    }

    /// The first bytes of `path` (fewer for a short file, none for one that cannot be read:
    /// libpcap then says why when it opens it).
    static func magic(of path: String) -> [UInt8] {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { return [] }
        defer { close(descriptor) }
        var bytes = [UInt8](repeating: 0, count: 6)
        let count = bytes.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, 6) }
        return Array(bytes.prefix(max(count, 0)))
    }

    /// The program's full path, searched in PATH and the usual directories.
    var executable: String? {
        let path = (getenv("PATH").map { String(cString: $0) } ?? "") + ":/usr/bin:/bin:/usr/local/bin"
        for directory in path.split(separator: ":") where !directory.isEmpty {
            let candidate = "\(directory)/\(program)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// Starts the decompressor on `path` (no shell: the path is one argument) and returns its
    /// output as a stdio stream, and its process id.
    func start(_ path: String) throws(CaptureError) -> (stream: UnsafeMutablePointer<FILE>, pid: pid_t) {
        guard let executable else {
            throw CaptureError(
                function: "open", subject: path,
                message: "the file is \(program)-compressed and \(program) is not installed (Debian package \(package))")
        }
        var pipeEnds: [Int32] = [0, 0]
        guard pipe(&pipeEnds) == 0 else {
            throw CaptureError(function: "pipe", subject: path, message: String(cString: strerror(errno)))
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], STDOUT_FILENO)
        posix_spawn_file_actions_addclose(&actions, pipeEnds[0])
        posix_spawn_file_actions_addclose(&actions, pipeEnds[1])
        // Its complaints (a truncated file) become capdiag's own message, not raw stderr.
        posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0)
        let argv = ([executable] + arguments + ["--", path]).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        close(pipeEnds[1])
        guard spawned == 0 else {
            close(pipeEnds[0])
            throw CaptureError(function: "posix_spawn", subject: executable, message: String(cString: strerror(spawned)))
        }
        guard let stream = fdopen(pipeEnds[0], "r") else {
            close(pipeEnds[0])
            kill(pid, SIGTERM)
            waitpid(pid, nil, 0)
            throw CaptureError(function: "fdopen", subject: path, message: String(cString: strerror(errno)))
        }
        captureLog.debug("\(path): \(program)-compressed; reading it through \(executable) (pid \(pid))")
        return (stream, pid)
    }
}

extension PcapHandle {
    /// Opens a capture file, plain or compressed, with nanosecond timestamps.
    static func openFile(path: String) throws(CaptureError) -> PcapHandle {
        guard path != "-", let decompressor = Decompressor.detect(Decompressor.magic(of: path)) else {
            return try openOffline(path: path)
        }
        let (stream, pid) = try decompressor.start(path)
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        guard let raw = pcap_fopen_offline_with_tstamp_precision(stream, UInt32(PCAP_TSTAMP_PRECISION_NANO), &errorBuffer) else {
            fclose(stream)
            let failed = Self.reap(pid)
            let reason = failed.map { "\(decompressor.program) failed (\($0))" } ?? string(fromCBuffer: errorBuffer)
            throw CaptureError(function: "pcap_fopen_offline", subject: path, message: "\(reason): the decompressed data is not a pcap or pcapng file")
        }
        let handle = PcapHandle(raw: raw, name: path)
        handle.decompressor = (decompressor.program, pid)
        return handle
    }

    /// Waits for a decompressor; returns why it failed, if it did.
    static func reap(_ pid: pid_t) -> String? {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exited = status & 0x7F == 0
        if exited && (status >> 8) & 0xFF == 0 { return nil }
        return exited ? "exit status \((status >> 8) & 0xFF)" : "signal \(status & 0x7F)"
    }

    /// After the last packet: whether the decompressor ended well. A truncated or damaged
    /// compressed file shows here, since the packets before the damage were read normally.
    func decompressorFailure() -> String? {
        guard let (program, pid) = decompressor else { return nil }
        decompressor = nil
        return Self.reap(pid).map { "\(program) failed (\($0)): the compressed file is truncated or damaged" }
    }
}
