/// Resource limits of a ``LuaState`` (defaults: docs/LUASANDBOX.md).
///
/// The memory ceiling applies to the whole state at all times. The
/// instruction budget and the wall-clock deadline apply to each run
/// (``LuaState/run(_:arguments:)``, ``LuaState/call(_:arguments:)``) and keep
/// counting while the run is suspended in async host functions.
public struct LuaLimits: Sendable, Equatable {
    /// Bytes the state may hold (allocator ceiling). Default 64 MiB.
    public var memoryBytes: Int
    /// VM instructions per run, pattern-matching and C-loop steps included.
    /// Counted in slices of ``hookInterval``. Default 10,000,000.
    public var instructionsPerRun: Int
    /// Wall-clock time per run, including time suspended in async host
    /// functions. Default 30 s.
    public var timePerRun: Duration
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
        maxValueDepth: Int = 100,
        maxValueElements: Int = 1_000_000,
        maxValueBytes: Int = 64 * 1024 * 1024,
        hookInterval: Int = 1000
    ) {
        self.memoryBytes = memoryBytes
        self.instructionsPerRun = instructionsPerRun
        self.timePerRun = timePerRun
        self.maxValueDepth = maxValueDepth
        self.maxValueElements = maxValueElements
        self.maxValueBytes = maxValueBytes
        self.hookInterval = hookInterval
    }

    /// The documented defaults (docs/LUASANDBOX.md): 64 MiB, 10,000,000 instructions, 30 s per run.
    public static let `default` = LuaLimits()

    var timeNanoseconds: UInt64 {
        let c = timePerRun.components
        if c.seconds < 0 { return 1 }
        let (s, o) = UInt64(c.seconds).multipliedReportingOverflow(by: 1_000_000_000)
        if o { return UInt64.max / 2 }
        return max(1, s &+ UInt64(max(0, c.attoseconds / 1_000_000_000)))
    }
}
