import Foundation

/// A value guarded by a lock, shared between tasks and threads.
///
/// The simulator's state is small and every critical section is short and synchronous,
/// so a lock keeps the public API callable from any context without `await`.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
