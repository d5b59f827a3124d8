import LuaSandbox
import Sidobe

/// `phone.normalize(text, default_country_code)` and `sidobe.valid_phone(p)`: numbers as people
/// type them (`0812-3123-123`, `(0812) 3123 123`, `62812…`, `00 62 812…`) made into the E.164
/// form Sidobe requires, checked now rather than when the send happens (maybe days later).
enum PhoneModule {
    static func install(in state: LuaState) throws(LuaError) {
        try state.register("normalize", in: "phone") { call in
            let text = try call.arguments.string(at: 0)
            let countryCode = try call.arguments.optionalString(at: 1)
            switch normalize(text, defaultCountryCode: countryCode) {
            case .success(let phone): return [.string(phone)]
            case .failure(let problem): return [.null, .object(["code": .string("INVALID_PHONE"), "message": .string(problem.message)])]
            }
        }
        try state.register("valid_phone", in: "sidobe") { call in
            let phone = try call.arguments.string(at: 0)
            if let problem = RequestValidation.phoneProblem(phone) { return [.bool(false), .string("phone \(problem)")] }
            return [.bool(true)]
        }
    }

    struct Problem: Error { var message: String }

    /// E.164 from what a person typed: separators (space, `-`, `.`, `(`, `)`, `/`) dropped; `+` or
    /// `00` starts an international number; a leading `0` is the national trunk prefix, replaced
    /// by the country code; a number that already starts with the country code and is long
    /// enough keeps it; anything else gets the country code in front.
    static func normalize(_ text: String, defaultCountryCode: String?) -> Result<String, Problem> {
        let separators: Set<Character> = [" ", "-", ".", "(", ")", "/", "\u{00A0}"]
        var kept = String(text.filter { !separators.contains($0) })
        var international = false
        if kept.hasPrefix("+") {
            international = true
            kept.removeFirst()
        } else if kept.hasPrefix("00") {
            international = true
            kept.removeFirst(2)
        }
        guard !kept.isEmpty, kept.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            return .failure(Problem(message: "\"\(text)\" is not a phone number: only digits, spaces, - . ( ) / and a leading + are allowed"))
        }
        var digits = kept
        if !international {
            let code = (defaultCountryCode ?? "").filter { $0 != "+" }
            guard !code.isEmpty, code.allSatisfy({ $0.isASCII && $0.isNumber }), code.first != "0" else {
                return .failure(Problem(message: "\"\(text)\" has no country code: write it with + (e.g. +628123123123) or pass a default country code, e.g. phone.normalize(text, \"62\")"))
            }
            if digits.hasPrefix("0") {
                digits = code + digits.drop { $0 == "0" }
            } else if !(digits.hasPrefix(code) && digits.count >= code.count + 8) {
                digits = code + digits
            }
        }
        let phone = "+" + digits
        if let problem = RequestValidation.phoneProblem(phone) {
            return .failure(Problem(message: "\"\(text)\" becomes \(phone), which \(problem)"))
        }
        return .success(phone)
    }
}
