/// The real clock's alarm: one task sleeping until the earliest due time, then waking the engine
/// to fire what fell due. Set earlier whenever a timer is added that is due before it. Not used
/// under a ``VirtualClock``: tests move time themselves (``Engine/advance(by:)``).
///
/// Owned by the engine actor.
final class Alarm {
    private let clock: any EngineClock
    private weak var engine: Engine?
    private var task: Task<Void, Never>?
    /// When the sleeping task wakes.
    private var target: UnixTime?
    private var armed = false

    init(clock: any EngineClock) { self.clock = clock }

    /// Starts ringing for `engine` (after the start).
    func arm(for engine: Engine, next: UnixTime?) {
        self.engine = engine
        armed = true
        set(next)
    }

    /// Stops for good (shutdown).
    func disarm() {
        armed = false
        task?.cancel()
        task = nil
    }

    /// Sleeps until `next` (an hour at most, so a clock jump is noticed), then rings.
    func set(_ next: UnixTime?) {
        guard armed else { return }
        task?.cancel()
        let target = next ?? clock.now() + .seconds(3600)
        self.target = target
        let clock = clock
        task = Task { [weak engine] in
            do {
                try await clock.sleep(until: target)
            } catch {
                return
            }
            await engine?.alarmRang()
        }
    }

    /// Wakes earlier if `due` comes before the time the alarm is set for.
    func wakeBy(_ due: UnixTime?) {
        guard armed, let due else { return }
        if let target, due >= target { return }
        set(due)
    }
}
