import Foundation

/// `sidobot init DIR`: a rules folder to start from, which `sidobot check` and `sidobot test`
/// pass as it is: one rule and its test, the API's LuaLS types for the editor, and luacheck's
/// configuration with the sandbox's standard.
public enum RuleScaffold {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    static let rule = """
        -- hello: greets a customer when another tool posts a hook, and follows up a day later.
        --
        -- Hook: POST /hooks/hello {"phone": "+628123123123", "name": "Ana"}

        rule { description = "greets a customer, then follows up a day later" }

        on("hook.hello", function(ev)
          local body = ev.body
          if type(body) ~= "table" or type(body.phone) ~= "string" then
            log.warn("hook.hello needs a JSON body with a phone", { body = json.encode(ev.body) })
            return
          end
          local msg, err = sidobe.send { phone = body.phone, message = "Hello " .. (body.name or "there") .. "!" }
          if not msg then
            log.error("greeting not sent", { phone = body.phone, code = err.code })
            return
          end
          timer.after("1d", "followup", { phone = body.phone })
        end)

        on("timer.followup", function(ev)
          sidobe.send { phone = ev.payload.phone, message = "How was your first day with us?" }
        end)

        """

    static let test = """
        test("greets, then follows up a day later", function(t)
          t.hook("hello", { phone = "+628123123123", name = "Ana" })
          t.eq(#t.sends(), 1)
          t.eq(t.sends()[1].message, "Hello Ana!")
          t.advance("1d")
          t.eq(#t.sends(), 2)
          t.eq(t.sends()[2].message, "How was your first day with us?")
        end)

        test("a hook without a phone sends nothing", function(t)
          t.hook("hello", { name = "Ana" })
          t.eq(#t.sends(), 0)
        end)

        """

    static let luarc = """
        {
          "runtime.version": "Lua 5.4",
          "workspace.library": [".sidobot"],
          "workspace.checkThirdParty": false,
          "diagnostics.globals": ["t"]
        }

        """

    /// Writes the scaffold into `folder` (created if missing; it must be empty). Returns the
    /// files written, relative to it.
    public static func create(in folder: String) async throws(Failure) -> [String] {
        let manager = FileManager.default
        var isFolder: ObjCBool = false
        if manager.fileExists(atPath: folder, isDirectory: &isFolder) {
            guard isFolder.boolValue else { throw Failure(description: "'\(folder)' exists and is not a folder") }
            let present = (try? manager.contentsOfDirectory(atPath: folder)) ?? []
            guard present.isEmpty else {
                throw Failure(description: "'\(folder)' is not empty (\(present.sorted().prefix(3).joined(separator: ", "))\(present.count > 3 ? ", …" : "")): sidobot init writes only into a new or empty folder")
            }
        }
        let globals = await RuleLint.sandboxGlobals()
        let luacheckrc = RuleLint.luacheckConfiguration(globals: globals) + """
            -- Test files also have the test API; the editor's types are declarations, not a rule.
            files["*_test.lua"] = { read_globals = { "test" } }
            exclude_files = { ".sidobot/" }

            """
        let files: [(String, String)] = [
            ("hello.lua", rule), ("hello_test.lua", test), (".luarc.json", luarc), (".luacheckrc", luacheckrc),
            (".sidobot/sidobot.lua", LuaTypes.meta),
        ]
        do {
            try manager.createDirectory(atPath: folder + "/.sidobot", withIntermediateDirectories: true)
            for (name, text) in files { try text.write(toFile: folder + "/" + name, atomically: true, encoding: .utf8) }
        } catch {
            throw Failure(description: "cannot write into '\(folder)': \(error.localizedDescription)")
        }
        return files.map(\.0)
    }
}
