#if canImport(Glibc)
    /// glibc's `malloc_trim` (`<malloc.h>`, which the Glibc module does not export).
    @_silgen_name("malloc_trim")
    private func glibcMallocTrim(_ pad: Int) -> Int32
#endif

/// Memory freed to malloc but still counted in the process's resident size.
enum FreeMemory {
    /// Hands malloc's wholly free pages back to the system (glibc `malloc_trim(0)`, which since
    /// 2.8 releases free pages inside the heap, not only at its top); elsewhere nothing.
    static func returnToSystem() {
        #if canImport(Glibc)
            _ = glibcMallocTrim(0)
        #endif
    }
}
