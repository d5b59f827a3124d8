/// Resource limits of a ``LuaState`` (defaults: docs/LUASANDBOX.md).
///
/// The memory ceiling applies to the whole state at all times. The
/// instruction budget, the CPU limit and the wall-clock deadline apply to each
/// run (``LuaState/run(_:arguments:)``, ``LuaState/call(_:arguments:)``) across
/// its suspensions: the budget and the CPU limit count what the run did, the
/// deadline counts time suspended in async host functions too.
///
/// Work done inside C functions is charged to the instruction budget: by the
/// bytes they allocate (one instruction for every 16 bytes: `string.rep`,
/// `table.concat`, `string.format`, `..` of large strings), by the steps of the
/// pattern matcher, by the elements table functions move, and by the
/// comparisons of `table.sort`.
///
/// ``slice`` is not a limit but a courtesy: a run that holds its thread longer
/// pauses, so that a host running many rules on one executor can let the
/// others go first (see ``LuaState/start(_:packed:tag:)``).
public struct LuaLimits: Sendable, Equatable {
    /// Bytes the state may hold (allocator ceiling). Default 64 MiB.
    public var memoryBytes: Int
    /// VM instructions per run, pattern-matching and C-loop steps included.
    /// Counted in slices of ``hookInterval``. Default 10,000,000.
    public var instructionsPerRun: Int
    /// Wall-clock time per run, including time suspended in async host
    /// functions. Default 30 s.
    public var timePerRun: Duration
    /// CPU time per run: what the run's thread spent running it, in Lua and in
    /// the C functions it called (the thread's CPU clock, read at count hooks),
    /// not time suspended in async host functions or waiting to be resumed
    /// after a slice. Default 1 s; `.zero` for none.
    public var cpuPerRun: Duration
    /// How long one stretch of a run may hold its thread before it pauses for
    /// others (checked at count hooks, so a pause comes within
    /// ``hookInterval`` instructions of it). Default 10 ms; `.zero` never
    /// pauses. A run cannot pause inside a metamethod, an iterator or another
    /// call made from C; it goes on there, limits applying.
    public var slice: Duration
    /// Deepest nesting of tables converted in either direction. Default 100
    /// (at most 512).
    public var maxValueDepth: Int
    /// Most values (all nodes of the tree) in one conversion. Default 1,000,000.
    public var maxValueElements: Int
    /// Most encoded bytes in one Lua → Swift conversion. Default 64 MiB.
    public var maxValueBytes: Int
    /// The count hook fires every this many instructions; the budget is
    /// charged and the deadline checked then. Default 1,000.
    public var hookInterval: Int

    /// Creates limits; every parameter defaults to the documented value (docs/LUASANDBOX.md).
    public init(
        memoryBytes: Int = 64 * 1024 * 1024,
        instructionsPerRun: Int = 10_000_000,
        timePerRun: Duration = .seconds(30),
        cpuPerRun: Duration = .seconds(1),
        slice: Duration = .milliseconds(10),
        maxValueDepth: Int = 100,
        maxValueElements: Int = 1_000_000,
        maxValueBytes: Int = 64 * 1024 * 1024,
        hookInterval: Int = 1000
    ) {
        self.memoryBytes = memoryBytes
        self.instructionsPerRun = instructionsPerRun
        self.timePerRun = timePerRun
        self.cpuPerRun = cpuPerRun
        self.slice = slice
        self.maxValueDepth = maxValueDepth
        self.maxValueElements = maxValueElements
        self.maxValueBytes = maxValueBytes
        self.hookInterval = hookInterval
    }

    /// The documented defaults (docs/LUASANDBOX.md): 64 MiB, 10,000,000 instructions, 1 s of CPU
    /// and 30 s per run, 10 ms slices.
    public static let `default` = LuaLimits()

    var timeNanoseconds: UInt64 { Self.nanoseconds(timePerRun) }
    /// 0: no CPU limit.
    var cpuNanoseconds: UInt64 { cpuPerRun <= .zero ? 0 : Self.nanoseconds(cpuPerRun) }
    /// 0: not sliced.
    var sliceNanoseconds: UInt64 { slice <= .zero ? 0 : Self.nanoseconds(slice) }

    private static func nanoseconds(_ duration: Duration) -> UInt64 {
        let c = duration.components
        if c.seconds < 0 { return 1 }
        let (s, o) = UInt64(c.seconds).multipliedReportingOverflow(by: 1_000_000_000)
        if o { return UInt64.max / 2 }
        return max(1, s &+ UInt64(max(0, c.attoseconds / 1_000_000_000)))
    }
}
