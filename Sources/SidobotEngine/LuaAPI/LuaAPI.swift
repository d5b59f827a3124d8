import Logging
import LuaSandbox
import Sidobe

/// The Lua API v1 (docs/RULES.md), installed module by module into each rule's state.
///
/// Synchronous functions (`state.*`, `timer.*`, `emit`, `log.*`, `json.*`, `now`) run on the
/// engine's executor inside the Lua call; `sidobe.*` functions are asynchronous: the handler's
/// coroutine yields while the request is out. Every call knows its rule (captured when the module
/// is installed) and its run (the tag LuaSandbox passes along).
///
/// To add a function: put it in the module it belongs to (or a new file `XModule.swift` with an
/// `install` of the same shape, listed in ``install(in:rule:loading:)``), give it only the host
/// protocol it needs (``LuaAPIHost`` and the ones beside it), and document it in docs/RULES.md.
struct LuaAPI {
    private let host: RunServices
    private let sends: any SendHost
    private let client: any SidobeAPI
    private let runs: RunTable

    init(host: RunServices, sends: any SendHost, client: any SidobeAPI, runs: RunTable) {
        self.host = host
        self.sends = sends
        self.client = client
        self.runs = runs
    }

    func install(in state: LuaState, rule: String, loading: RuleLoading) throws(LuaError) {
        // A run's changes are journaled when it suspends in a sidobe.* call, before the request.
        let runs = runs
        state.onSuspend = { tag in runs.suspended(tag) }
        try RegistrationModule.install(in: state, rule: rule, loading: loading)
        try TimeModule.install(in: state, host: host)
        try TimerModule.install(in: state, rule: rule, loading: loading, host: host)
        try StateModule.install(in: state, rule: rule, host: host)
        try EventModule.install(in: state, rule: rule, loading: loading, host: host)
        try LogModule.install(in: state, rule: rule, host: host)
        try JSONModule.install(in: state)
        try SidobeModule.install(in: state, rule: rule, sends: sends, client: client)
        try PhoneModule.install(in: state)
    }
}
