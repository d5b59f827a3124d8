import Foundation

/// Watches the process's resident memory against `--memory-budget`, so an operator hears of a
/// store outgrowing the machine while there is still time (months without a restart): a warning
/// each time it climbs past 80 %, 95 % and 100 % of the budget, an info line when it is back
/// under 80 %. One line per crossing, not one a second.
struct MemoryBudget {
    enum Level: Int, Comparable {
        case below, high, critical, over

        static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }

        /// The fraction of the budget at which this level starts.
        var threshold: Double {
            switch self {
            case .below: 0
            case .high: 0.80
            case .critical: 0.95
            case .over: 1.0
            }
        }
    }

    /// What changed with a reading: the level it climbed to, or that it came back down.
    enum Crossing: Equatable {
        case climbed(to: Level)
        case recovered
    }

    let budget: Int
    private var level = Level.below

    init(budget: Int) { self.budget = budget }

    /// The crossing `resident` bytes make, if any. The level kept is the highest reached until
    /// memory is back under 80 %: dipping from 95 % to 85 % and climbing again says nothing new.
    mutating func check(resident: Int) -> Crossing? {
        let fraction = Double(resident) / Double(max(1, budget))
        let now: Level = [Level.over, .critical, .high].first { fraction >= $0.threshold } ?? .below
        if now > level {
            level = now
            return .climbed(to: now)
        }
        if now == .below && level != .below {
            level = .below
            return .recovered
        }
        return nil
    }

}

/// The process's memory as the kernel counts it.
public enum ProcessMemory {
    /// The process's resident memory in bytes (`/proc/self/statm`); nil where it cannot be read.
    public static func residentBytes() -> Int? {
        guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let fields = statm.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
