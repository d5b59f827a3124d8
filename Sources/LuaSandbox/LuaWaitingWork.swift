import CLuaShims

/// A count of the work waiting for the executor that runs Lua, kept by the host, that lets a
/// computing run give way to it early.
///
/// A run paused at the end of its slice (``LuaLimits/slice``) lets what was waiting go first, but
/// whatever arrives while it computes waits for the rest of the slice: a hook's dispatch, a Sidobe
/// answer, an admin request, each up to 10 ms, and a handler that crosses the executor a few times
/// waits that long a few times. With this count attached (``LuaState/waitingWork``), a sliced run
/// that has had its shortest slice (a tenth of ``LuaLimits/slice``, 1 ms by default) pauses at its
/// next count hook once work is waiting, so that work waits about a millisecond. The shortest slice
/// bounds what frequent arrivals cost a computing run: at most one pause a millisecond.
///
/// The host's executor calls ``arrived()`` when it queues a job and ``began()`` when the job starts.
/// Jobs that should not pause a run (the host's own turns that hand out slices, see
/// ``LuaSliceGate``) are counted with ``ignore(_:)`` as well. All methods are thread-safe.
public final class LuaWaitingWork: @unchecked Sendable {
    // Owned, freed in deinit; the C side uses atomics.
    let pointer: OpaquePointer

    public init() {
        guard let pointer = sb_waiting_work_new() else { fatalError("out of memory allocating a waiting-work count") }
        self.pointer = pointer
    }

    deinit { sb_waiting_work_free(pointer) }

    /// A job was queued on the executor.
    @inlinable public func arrived() { add(1) }

    /// A queued job started.
    @inlinable public func began() { add(-1) }

    /// Changes the count of queued jobs that should not pause a run by `delta`.
    public func ignore(_ delta: Int) { sb_waiting_work_ignore(pointer, delta) }

    /// Jobs waiting that would pause a run (briefly negative while an ignored job is on its way).
    public var pending: Int { sb_waiting_work_pending(pointer) }

    @usableFromInline func add(_ delta: Int) { sb_waiting_work_add(pointer, delta) }
}
