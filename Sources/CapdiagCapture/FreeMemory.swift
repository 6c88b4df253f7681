import CPcap

/// Memory freed to malloc but still counted in the process's resident size.
public enum FreeMemory {
    /// Hands malloc's wholly free pages back to the system (glibc `malloc_trim(0)`, which since
    /// 2.8 releases free pages inside the heap, not only at its top): called once, after the
    /// flow table is released and before the conclusions, so peak RSS follows what is live.
    public static func returnToSystem() {
        _ = malloc_trim(0)
    }
}
