@testable import SidobotEngine
import Testing

@Suite("memory budget: one line per crossing")
struct MemoryBudgetTests {
    @Test func warnsOnceAtEachLevelClimbedAndOnceWhenBackUnder80Percent() {
        var budget = MemoryBudget(budget: 1000)
        #expect(budget.check(resident: 500) == nil)
        #expect(budget.check(resident: 800) == .climbed(to: .high))
        #expect(budget.check(resident: 850) == nil, "still high: said already")
        #expect(budget.check(resident: 960) == .climbed(to: .critical))
        #expect(budget.check(resident: 900) == nil, "dipping from 95 % to 90 % says nothing")
        #expect(budget.check(resident: 950) == nil, "nor climbing back to 95 %")
        #expect(budget.check(resident: 1200) == .climbed(to: .over))
        #expect(budget.check(resident: 1300) == nil)
        #expect(budget.check(resident: 790) == .recovered)
        #expect(budget.check(resident: 700) == nil)
        #expect(budget.check(resident: 2000) == .climbed(to: .over), "a jump past every level is one line")
    }

    @Test func readsTheProcessResidentMemory() throws {
        let resident = try #require(ProcessMemory.residentBytes())
        #expect(resident > 1 << 20 && resident < 64 << 30)
    }
}
