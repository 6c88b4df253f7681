import CapdiagTestSupport
import Foundation
import Glibc
import Testing

/// What a gateway host gets from `scripts/package.sh` (run by `scripts/test.sh`, which points
/// `CAPDIAG_PACKAGE_DIR` at its output): the .deb unpacked into an empty root holding only the
/// C libraries the binary names — no Swift toolchain — runs capdiag on a capture; its man page
/// renders with the real synopsis and every option; its completions complete.
@Suite(
    .enabled(
        if: ProcessInfo.processInfo.environment["CAPDIAG_PACKAGE_DIR"] != nil,
        "run scripts/package.sh and set CAPDIAG_PACKAGE_DIR (scripts/test.sh does both)"),
    .serialized)
struct Packaging {
    static let directory = URL(fileURLWithPath: ProcessInfo.processInfo.environment["CAPDIAG_PACKAGE_DIR"] ?? "/nonexistent")

    static func deb() throws -> URL {
        let name = try #require(try FileManager.default.contentsOfDirectory(atPath: directory.path).first { $0.hasSuffix(".deb") })
        return directory.appending(path: name)
    }

    static func shell(_ command: String) throws -> (status: Int32, stdout: String, stderr: String) {
        try Locations.run(URL(fileURLWithPath: "/bin/sh"), ["-c", command])
    }

    /// An empty directory with the package unpacked in it.
    static func unpacked() throws -> URL {
        let root = FileManager.default.temporaryDirectory.appending(path: "capdiag-root-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let unpack = try shell("dpkg-deb -x '\(try deb().path)' '\(root.path)'")
        #expect(unpack.status == 0, "\(unpack.stderr)")
        return root
    }

    @Test func theDebDeclaresItsDependenciesAndShipsManPageCompletionsAndUnit() throws {
        let info = try Self.shell("dpkg-deb -f '\(try Self.deb().path)' Package Depends")
        #expect(info.stdout.contains("Package: capdiag") && info.stdout.contains("libpcap0.8"), "\(info.stdout)")
        let contents = try Self.shell("dpkg-deb -c '\(try Self.deb().path)'").stdout
        for path in [
            "./usr/bin/capdiag", "./usr/share/man/man1/capdiag.1.gz", "./usr/share/bash-completion/completions/capdiag",
            "./usr/share/zsh/vendor-completions/_capdiag", "./usr/share/fish/vendor_completions.d/capdiag.fish",
            "./lib/systemd/system/capdiag@.service", "./usr/lib/sysusers.d/capdiag.conf",
        ] {
            #expect(contents.contains(path), "\(path) missing from the package")
        }
    }

    /// The binary names no Swift library, and runs in a root that holds nothing else but the C
    /// libraries it names (chroot: no toolchain, no /opt/swift).
    @Test(.enabled(if: getuid() == 0, "chroot needs root"))
    func theBinaryRunsInARootWithoutSwift() throws {
        let root = try Self.unpacked()
        defer { try? FileManager.default.removeItem(at: root) }
        let binary = root.appending(path: "usr/bin/capdiag").path
        let needed = try Self.shell("readelf -d '\(binary)' | grep NEEDED").stdout
        #expect(!needed.contains("swift") && !needed.contains("Foundation") && !needed.contains("dispatch"), "\(needed)")
        // Copy exactly the libraries the dynamic loader resolves, nothing from the toolchain.
        let libraries = try Self.shell("ldd '\(binary)' | awk '$2 == \"=>\" && $3 ~ /^\\// {print $3} $1 ~ /^\\// {print $1}'").stdout
            .split(separator: "\n").map(String.init)
        #expect(!libraries.contains { $0.contains("swift") }, "\(libraries)")
        for library in libraries {
            let copy = try Self.shell("mkdir -p '\(root.path)'$(dirname '\(library)') && cp -L '\(library)' '\(root.path)\(library)'")
            #expect(copy.status == 0, "\(copy.stderr)")
        }
        try FileManager.default.copyItem(atPath: Locations.capture("lab/keepalive-race.any.pcap"), toPath: root.appending(path: "capture.pcap").path)
        // A root as a container has it: /proc mounted (the Swift runtime reads its arguments
        // from /proc/self/cmdline).
        let run = try Self.shell(
            "mkdir -p '\(root.path)/proc' && mount -t proc proc '\(root.path)/proc' && chroot '\(root.path)' /usr/bin/capdiag -q -r /capture.pcap; status=$?; umount '\(root.path)/proc'; exit $status")
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("keepalive_race") && run.stdout.contains("Client impact at 10.77.1.1:8012"), "\(run.stdout.prefix(400))")
        #expect(try Self.shell("test -e '\(root.path)/opt'").status != 0, "nothing but the package and the C libraries")
    }

    /// capdiag(1): the three real forms in SYNOPSIS (no generic "subcommand"), every option
    /// --help lists, and groff has nothing to warn about.
    @Test func theManPageHasTheRealSynopsisAndEveryOption() throws {
        let root = try Self.unpacked()
        defer { try? FileManager.default.removeItem(at: root) }
        let page = root.appending(path: "usr/share/man/man1/capdiag.1.gz").path
        let rendered = try Self.shell("MANWIDTH=120 man -l '\(page)' 2>&1")
        #expect(rendered.status == 0)
        let synopsis = rendered.stdout.components(separatedBy: "DESCRIPTION").first ?? ""
        #expect(synopsis.contains("capdiag -r file ... [options] [expression]"), "\(synopsis)")
        #expect(synopsis.contains("capdiag -i interface [options] [expression]") && synopsis.contains("capdiag -D"))
        #expect(!rendered.stdout.contains("subcommand"))
        let lint = try Self.shell("zcat '\(page)' | groff -mandoc -Tutf8 -ww -z 2>&1")
        #expect(lint.stdout.isEmpty, "groff: \(lint.stdout)")
        let help = try Locations.run(Locations.capdiagExecutable, ["--help"]).stdout
        // Every --long-name in --help (the options, and those named in other options' help).
        let options = Set(help.split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "-") }).filter { $0.hasPrefix("--") && $0.count > 3 }
            .map(String.init))
        #expect(options.count > 40)
        for option in options where option != "--help" {
            #expect(rendered.stdout.contains(option), "\(option) is missing from the man page")
        }
    }

    /// The installed bash completion completes files after -r, directories after --export,
    /// interfaces after -i, and every enumerated value.
    @Test func bashCompletionCompletesWhatEachOptionTakes() throws {
        let root = try Self.unpacked()
        defer { try? FileManager.default.removeItem(at: root) }
        let script = root.appending(path: "usr/share/bash-completion/completions/capdiag").path
        let work = root.appending(path: "work")
        try FileManager.default.createDirectory(at: work.appending(path: "flows"), withIntermediateDirectories: true)
        try Data().write(to: work.appending(path: "upstream.pcap"))
        func complete(_ words: [String]) throws -> [String] {
            let array = (["capdiag"] + words).map { "'\($0)'" }.joined(separator: " ")
            let line = (["capdiag"] + words).joined(separator: " ")
            let command = """
                cd '\(work.path)' && source '\(script)' && COMP_WORDS=(\(array)) && COMP_CWORD=\(words.count) && \
                COMP_LINE='\(line)' && COMP_POINT=${#COMP_LINE} && \
                _capdiag capdiag "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}" && printf '%s\\n' "${COMPREPLY[@]}"
                """
            let run = try Locations.run(URL(fileURLWithPath: "/bin/bash"), ["-c", command])
            return run.stdout.split(separator: "\n").map(String.init).sorted()
        }
        #expect(try complete(["-T", ""]) == ["ecs", "json", "jsonl", "text", "zeek"])
        #expect(try complete(["--fail-on", "h"]) == ["high"])
        #expect(try complete(["--export-payload", ""]) == ["all", "headers", "none"])
        #expect(try complete(["-r", "up"]) == ["upstream.pcap"])
        #expect(try complete(["--export", ""]) == ["flows"])
        #expect(try complete(["-i", ""]).contains("lo"))
    }
}
