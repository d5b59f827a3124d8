import Foundation
import LuaSandbox
import PropertyBased
import Sidobe
import SidobotEngine
import Testing

/// ISSUE 8, property tests: decoders and parsers never crash on arbitrary input, and round-trip what they
/// produce. Bounded counts keep the pass quick; a failure prints the seed to pin with `.fixedSeed(...)`.
/// The committed seed corpus (`seedCorpus`) is checked on every run too.
let bytes = Gen.int(in: 0...255).map { UInt8($0) }.array(of: 0...120)
/// Bytes biased towards JSON punctuation, so the decoders get past their first character.
let jsonish = Gen.int(in: 0...29).map { Array(#"{}[]":,0123456789.eE+-\ntrufalsn "#.utf8)[$0] }.array(of: 0...80)

/// A random LuaValue of bounded depth (JSON-like: what the bridge and the codec carry).
func luaValue(_ seed: [Int]) -> LuaValue {
    var index = 0
    func next() -> Int { defer { index += 1 }; return seed.isEmpty ? 0 : seed[index % seed.count] }
    func make(_ depth: Int) -> LuaValue {
        switch next() % (depth > 3 ? 5 : 7) {
        case 0: return .null
        case 1: return .bool(next() % 2 == 0)
        case 2: return .integer(Int64(next()) * 7_919 - 500_000)
        case 3: return .double(Double(next()) / 8 - 100)
        case 4: return .string(String(decoding: (0..<(next() % 6)).map { _ in UInt8(32 + next() % 95) }, as: UTF8.self) + "é\u{1F600}\"\\\n")
        case 5: return .array((0..<(next() % 4)).map { _ in make(depth + 1) })
        default:
            var object: [String: LuaValue] = [:]
            // A nil field is an absent field (Lua tables, and the codec): objects hold no null.
            for _ in 0..<(next() % 4) {
                let field = make(depth + 1)
                object["k\(next())"] = field == .null ? .bool(false) : field
            }
            return .object(object)
        }
    }
    return make(0)
}

let seedCorpus: [String] = [
    "", "{", "}", "[", "\"", "\"\\u", "\"\\ud800\"", "1e999999", "-", "-0", "0.", ".5", "[1,]", "{\"a\":}", "nul", "tru",
    String(repeating: "[", count: 10_000), String(repeating: "{\"a\":", count: 5_000), "\"\u{0}\"", "\u{FEFF}{}",
    #"{"id":"x","event":"SEND_MESSAGE_STATUS","created_at":"2025-08-11T23:41:43+07:00","data":{"whatsapp_message_id":"m","status":"SUCCESS","send_at":"x","message_type":"TEXT"}}"#,
    #"{"id":1,"event":null}"#, #"{"id":"x","event":"OTHER","created_at":"x","data":[]}"#,
]

@Suite("properties: decoders never crash and round-trip")
struct DecoderPropertyTests {
    @Test func jsonCodecNeverCrashesOnTheCorpusOrArbitraryBytes() async {
        for text in seedCorpus { _ = try? JSONCodec.decode(text) }
        await propertyCheck(count: 400, input: bytes) { input in
            _ = try? JSONCodec.decode(String(decoding: input, as: UTF8.self))
        }
        await propertyCheck(count: 400, input: jsonish) { input in
            _ = try? JSONCodec.decode(String(decoding: input, as: UTF8.self))
        }
    }

    @Test func jsonCodecRoundTripsEveryValue() async {
        await propertyCheck(count: 300, input: Gen.int(in: 0...1_000_000).array(of: 1...40)) { seed in
            let value = luaValue(seed)
            guard let text = try? JSONCodec.encode(value) else {
                Issue.record("cannot encode \(value)")
                return
            }
            #expect((try? JSONCodec.decode(text)) == value, "\(text)")
        }
    }

    @Test func luaValueBridgeRoundTripsThroughLua() async throws {
        await propertyCheck(count: 150, input: Gen.int(in: 0...1_000_000).array(of: 1...40)) { seed in
            // Lua has one empty table: `[]` comes back as `{}` (documented), so empty arrays are left out here.
            let value = luaValue(seed)
            guard !Self.hasEmptyArray(value) else { return }
            do {
                let state = try LuaState(limits: LuaLimits())
                try state.setGlobal("v", value)
                let back = try state.global("v")
                #expect(back == value)
            } catch {
                Issue.record("echo failed for \(value): \(error)")
            }
        }
    }

    static func hasEmptyArray(_ value: LuaValue) -> Bool {
        switch value {
        case .array(let items): items.isEmpty || items.contains(where: hasEmptyArray) || items.last == .null
        case .object(let fields): fields.values.contains(where: hasEmptyArray) || fields.values.contains(.null)
        default: false
        }
    }

    @Test func webhookDecodingNeverCrashesAndRoundTrips() async throws {
        for text in seedCorpus { _ = WebhookEvent.parse(Array(text.utf8)) }
        await propertyCheck(count: 400, input: jsonish) { input in
            _ = WebhookEvent.parse(input)
        }
        let statuses = ["SUCCESS", "FAILED", "PENDING", "WEIRD"]
        await propertyCheck(count: 200, input: Gen.int(in: 0...1_000_000).array(of: 4...4)) { n in
            let event = WebhookEvent(id: "wh-\(n[0])", createdAt: "2025-08-11T23:41:43+07:00", payload: .messageStatus(
                MessageStatusUpdate(whatsappMessageID: "m-\(n[1])", status: MessageStatus(rawValue: statuses[n[2] % 4]),
                                    sendAt: "2025-08-11T23:41:43+07:00", messageType: .text)))
            do {
                let data = try JSONEncoder().encode(event)
                let back = try WebhookEvent.decode(Array(data))
                #expect(back == event)
            } catch {
                Issue.record("\(error)")
            }
        }
    }

    /// The ingress reads webhooks with its own one-pass parser; Foundation's JSONDecoder (through
    /// `WebhookEvent`'s `Decodable` conformance) is the reference it must agree with, on valid
    /// bodies and on bodies broken in every small way.
    @Test func theWebhookParserAgreesWithJSONDecoderOnMutatedBodies() async throws {
        let seed = Array(#"{"id":"816332ca-b91a","event":"SEND_MESSAGE_STATUS","created_at":"2025-08-11T23:41:43.889693+07:00","data":{"whatsapp_message_id":"4da0cb47","status":"SUCCESS","send_at":"2025-08-11T23:41:43+07:00","message_type":"TEXT"},"extra":[1,-2.5e3,true,null,{"k":"v"}]}"#.utf8)
        let alphabet = Array(#"{}[]":,0123456789.eE+-\ ntrufals/uéab"#.utf8)
        let insertions = [#""x":[1,{"y":null}],"#, #""id\u0031":"z","#, #""note":"caf\u00e9 \ud83d\ude00","#, " \n\t", #"\""#, #""n":01,"#]
        await propertyCheck(count: 1500, input: Gen.int(in: 0...Int.max).array(of: 1...4)) { choices in
            var body = seed
            for choice in choices {
                let position = (choice >> 8) % (body.count + 1)
                switch choice % 5 {
                case 0 where position < body.count: body[position] = alphabet[(choice >> 20) % alphabet.count]
                case 1 where position < body.count: body.remove(at: position)
                case 2: body.insert(contentsOf: Array(insertions[(choice >> 20) % insertions.count].utf8), at: position)
                case 3 where position < body.count: body.insert(alphabet[(choice >> 20) % alphabet.count], at: position)
                default: break
                }
            }
            let reference = try? JSONDecoder().decode(WebhookEvent.self, from: Data(body))
            var ours = try? WebhookEvent.decode(body)
            // An event type ours does not interpret keeps its `data` as received (JSONDecoder's
            // reference does not): the same JSON as the body's `data`, then set aside to compare.
            if let raw = ours?.rawData {
                let data = (try? JSONCodec.decode(bytes: body))?.objectValue?["data"]
                #expect((try? JSONCodec.decode(bytes: raw)) == data, "\(String(decoding: body, as: UTF8.self))")
                ours?.rawData = nil
            }
            // Whatever ours accepts, JSONDecoder reads the same. Where JSONDecoder is lenient (it
            // lets `2.e3` or bytes that are not UTF-8 pass in a field it does not decode), ours
            // follows RFC 8259: the oracle is JSONCodec's grammar on a body that is UTF-8.
            if let ours { #expect(reference == ours, "\(String(decoding: body, as: UTF8.self))") }
            if let reference, String(validating: body, as: UTF8.self) != nil, (try? JSONCodec.decode(bytes: body)) != nil {
                #expect(ours == reference, "\(String(decoding: body, as: UTF8.self))")
            }
        }
    }

    @Test func journalReaderSplitsArbitraryBytesIntoLinesAndATornTail() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sidobot-prop-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/journal.jsonl"
        let withNewlines = Gen.int(in: 0...11).map { Array(#"{"seq":1}"#.utf8 + [10, 10, 0xFF])[$0] }.array(of: 0...200)
        await propertyCheck(count: 300, input: withNewlines) { input in
            do {
                try Data(input).write(to: URL(fileURLWithPath: path))
                let contents = try JournalReader.read(path: path)
                // Lines are the non-empty newline-terminated pieces; the tail is what follows the last newline.
                let pieces = input.split(separator: 10, omittingEmptySubsequences: false)
                let complete = pieces.dropLast().filter { !$0.isEmpty }.map { Array($0) }
                #expect(contents.lines.map { Array($0.bytes) } == complete)
                let tail = Array(pieces.last ?? [])
                #expect((contents.tornTail ?? []) == tail)
                // Each line either decodes or reports an error: never a crash.
                for line in contents.lines { _ = try? JSONCodec.decode(String(decoding: line.bytes, as: UTF8.self)) }
                try? FileManager.default.removeItem(atPath: path + ".torn")
            } catch {
                Issue.record("\(error)")
            }
        }
    }
}

@Suite("properties: durations and cron")
struct TimePropertyTests {
    @Test func durationTextParsesWhatItFormatsAndNeverCrashes() async {
        await propertyCheck(count: 500, input: Gen.int(in: 0...10_000_000)) { seconds in
            let text = DurationText.format(.seconds(seconds))
            #expect((try? DurationText.parse(text)) == .seconds(seconds), "\(seconds) -> \(text)")
        }
        let durationish = Gen.int(in: 0...17).map { Array("0123456789smhdw .-".utf8)[$0] }.array(of: 0...12)
        await propertyCheck(count: 500, input: durationish) { input in
            _ = try? DurationText.parse(String(decoding: input, as: UTF8.self))
        }
    }

    @Test func cronParserNeverCrashesAndNextFireIsMonotonicAndMatches() async {
        let cronish = Gen.int(in: 0...19).map { Array("0123456789*/,- LJANmon".utf8)[$0] }.array(of: 0...30)
        await propertyCheck(count: 500, input: cronish) { input in
            _ = try? CronExpression(String(decoding: input, as: UTF8.self))
        }
        let fields = [["*", "0", "*/15", "5,35", "10-20"], ["*", "3", "9-17", "*/6"], ["*", "1", "15", "28-31"], ["*", "2", "*/3"], ["*", "1-5", "0", "6"]]
        let zones = ["UTC", "Asia/Jakarta", "Europe/Berlin", "America/New_York"]
        await propertyCheck(count: 200, input: Gen.int(in: 0...1_000_000).array(of: 7...7)) { n in
            let text = (0..<5).map { fields[$0][n[$0] % fields[$0].count] }.joined(separator: " ")
            guard let cron = try? CronExpression(text), let zone = TimeZone(identifier: zones[n[5] % zones.count]) else {
                Issue.record("cannot parse \(text)")
                return
            }
            var at = UnixTime(seconds: 1_767_225_600 + Int64(n[6]) * 997)
            for _ in 0..<5 {
                guard let next = cron.nextFire(after: at, in: zone) else { break }
                #expect(next > at, "\(text) in \(zone.identifier): \(next) after \(at)")
                #expect(cron.previousFire(atOrBefore: next, in: zone) == next, "\(text): \(next) does not match")
                at = next
            }
        }
    }
}
