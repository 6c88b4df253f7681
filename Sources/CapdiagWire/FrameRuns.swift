/// Which input file each frame came from, and its number in that file, when several files are
/// read together (`-r ring0.pcap ring1.pcap …`, merged by time as `mergecap` does).
///
/// capdiag numbers frames across all inputs; tshark's `frame.number` counts within one file.
/// Instead of a source per packet, the reader notes a run each time it switches files: ring
/// files read one after another give one run per file, and interleaved captures of two
/// interfaces at most `maximumRuns` (about 2.4 MB), after which later frames are not located.
public final class FrameRuns {
    public static let maximumRuns = 100_000

    /// Global frame (1-based) where each run starts, its input and its first local frame.
    private var globalStarts: [Int] = []
    private var inputs: [Int32] = []
    private var localStarts: [Int] = []
    private var lastInput = -1
    private var lastLocal = 0
    private var lastGlobal = 0
    /// The paths of the inputs, by index.
    public let paths: [String]
    /// False once the run limit was reached: frames after `locatedThrough` have no source.
    public private(set) var complete = true
    public private(set) var locatedThrough = 0

    public init(paths: [String]) { self.paths = paths }

    /// Notes frame `global` as frame `local` of input `input`. Called per packet: a compare
    /// when the run goes on.
    @inline(__always)
    public func note(global: Int, input: Int, local: Int) {
        defer {
            lastInput = input
            lastLocal = local
            lastGlobal = global
        }
        if input == lastInput && local == lastLocal + 1 && global == lastGlobal + 1 {
            if complete { locatedThrough = global }
            return
        }
        guard complete, globalStarts.count < Self.maximumRuns else {
            complete = false
            return
        }
        globalStarts.append(global)
        inputs.append(Int32(truncatingIfNeeded: input))
        localStarts.append(local)
        locatedThrough = global
    }

    /// Where frame `global` came from, if it was located.
    public func locate(_ global: Int) -> (input: Int, local: Int)? {
        guard global >= 1, global <= locatedThrough, let run = run(containing: global) else { return nil }
        return (Int(inputs[run]), localStarts[run] + (global - globalStarts[run]))
    }

    /// Per input, the first and last local frame among global frames `first...last`, in input
    /// order: a flow's frames in each file it spans (a ring's connection crossing a file
    /// boundary gives two). Nil when part of the range was not located.
    public func ranges(first: Int, last: Int) -> [(input: Int, first: Int, last: Int)]? {
        guard first >= 1, first <= last, last <= locatedThrough, let firstRun = run(containing: first) else { return nil }
        var byInput: [Int: (first: Int, last: Int)] = [:]
        var run = firstRun
        // Bounded by the run count: at most `maximumRuns` steps for a range spanning them all.
        while run < globalStarts.count, globalStarts[run] <= last {
            let runEnd = run + 1 < globalStarts.count ? globalStarts[run + 1] - 1 : locatedThrough
            let from = max(first, globalStarts[run]), to = min(last, runEnd)
            if from <= to {
                let input = Int(inputs[run])
                let localFrom = localStarts[run] + (from - globalStarts[run]), localTo = localStarts[run] + (to - globalStarts[run])
                let known = byInput[input]
                byInput[input] = (min(known?.first ?? localFrom, localFrom), max(known?.last ?? localTo, localTo))
            }
            run += 1
        }
        return byInput.sorted { $0.key < $1.key }.map { ($0.key, $0.value.first, $0.value.last) }
    }

    /// The last run starting at or before `global` (binary search).
    private func run(containing global: Int) -> Int? {
        var low = 0, high = globalStarts.count
        while low < high {
            let middle = (low + high) / 2
            if globalStarts[middle] <= global { low = middle + 1 } else { high = middle }
        }
        return low > 0 ? low - 1 : nil
    }
}
