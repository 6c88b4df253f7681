#if canImport(Glibc)
import Glibc
#endif

/// Writes whole files the way readers expect them: a temporary file beside the target, then
/// renamed over it, so a reader (node_exporter, a browser, a ticket upload) never sees half a
/// file, and a failed write leaves the old one in place.
enum AtomicFile {
    /// - Throws: `SinkError` naming the path and the system's reason.
    static func write(_ text: String, to path: String) throws {
        let temporary = path + ".tmp.\(getpid())"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw SinkError("cannot write \(path): \(String(cString: strerror(errno)))") }
        var failure: Int32 = 0
        var bytes = Array(text.utf8)
        bytes.withUnsafeMutableBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                offset += written
            }
        }
        if close(descriptor) != 0 && failure == 0 { failure = errno }
        if failure == 0 && rename(temporary, path) != 0 { failure = errno }
        if failure != 0 {
            unlink(temporary)
            throw SinkError("cannot write \(path): \(String(cString: strerror(failure)))")
        }
    }

    /// Creates a directory and its missing parents (mode 0755).
    static func createDirectories(_ path: String) throws {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += component
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                throw SinkError("cannot create \(path): \(String(cString: strerror(errno)))")
            }
            prefix += "/"
        }
    }
}
