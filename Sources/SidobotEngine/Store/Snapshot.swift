import Foundation
import LuaSandbox

/// The JSON form of ``StoreData`` in `DATA/snapshot.json`.
///
/// ```json
/// {"format": 1, "sequence": 1234, "saved_at": 1767225600000,
///  "state": {"RULE": {"KEY": {"v": VALUE, "exp": MS}}},
///  "timers": [TIMER...], "next_timer_id": 43, "messages": [MESSAGE...],
///  "dedupe": [["EVENT_ID", SECONDS]...], "inflight": [EVENT...],   // EVENT may carry "done_rules": [RULE...]
///  "schedules": {"RULE/HANDLER": MS}, "dead_letters": [LETTER...]}
/// ```
/// `sequence` is the journal position the snapshot covers: replay skips journal records at or below it.
enum SnapshotCodec {
    static let format: Int64 = 1

    /// Encodes a store copy, streaming into one buffer (no intermediate tree of the whole store).
    static func encode(_ data: StoreData, savedAt: UnixTime) throws(JSONCodec.Error) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(1 << 16)
        func raw(_ text: String) { out.append(contentsOf: text.utf8) }
        raw("{\"format\":\(format),\"sequence\":\(data.sequence),\"saved_at\":\(savedAt.milliseconds),\"state\":{")
        var firstRule = true
        for rule in data.state.rules.keys.sorted() {
            guard let map = data.state.rules[rule], !map.isEmpty else { continue }
            if !firstRule { raw(",") }
            firstRule = false
            JSONCodec.appendString(rule, to: &out)
            raw(":{")
            var firstKey = true
            for (key, entry) in map {
                if !firstKey { raw(",") }
                firstKey = false
                JSONCodec.appendString(key, to: &out)
                raw(":{\"v\":")
                try JSONCodec.encode(entry.value, into: &out)
                if let expiry = entry.expiresAt { raw(",\"exp\":\(expiry.milliseconds)") }
                raw("}")
            }
            raw("}")
        }
        raw("},\"timers\":[")
        var first = true
        for timer in data.timers.records.values {
            if !first { raw(",") }
            first = false
            try JSONCodec.encode(timer.journalValue, into: &out)
        }
        raw("],\"next_timer_id\":\(data.timers.nextID),\"messages\":[")
        first = true
        for record in data.ledger.records.values.sorted(by: { $0.sentAt < $1.sentAt }) {
            if !first { raw(",") }
            first = false
            try JSONCodec.encode(record.journalValue, into: &out)
        }
        raw("],\"dedupe\":[")
        first = true
        for entry in data.dedupe.entries {
            if !first { raw(",") }
            first = false
            raw("[")
            JSONCodec.appendString(entry.id, to: &out)
            raw(",")
            try JSONCodec.encode(.double(entry.acceptedAt), into: &out)
            raw("]")
        }
        raw("],\"inflight\":[")
        first = true
        for inflight in data.inflightInOrder {
            if !first { raw(",") }
            first = false
            var value = inflight.event.journalValue
            if !inflight.doneRules.isEmpty, case .object(var fields) = value {
                fields["done_rules"] = .array(inflight.doneRules.sorted().map(LuaValue.string))
                value = .object(fields)
            }
            try JSONCodec.encode(value, into: &out)
        }
        raw("],\"schedules\":")
        try JSONCodec.encode(.object(data.schedules.mapValues { .integer($0.milliseconds) }), into: &out)
        raw(",\"dead_letters\":[")
        first = true
        for letter in data.deadLetters.entries {
            if !first { raw(",") }
            first = false
            try JSONCodec.encode(letter.journalValue, into: &out)
        }
        raw("]}\n")
        return out
    }

    /// Decodes a snapshot into `data` (which carries the retention settings).
    static func decode(_ bytes: Data, into data: inout StoreData) throws(RecordError) {
        let value: LuaValue
        do {
            value = try JSONCodec.decode(bytes: bytes)
        } catch {
            throw RecordError("not valid JSON: \(error)")
        }
        let r = RecordReader(value, what: "snapshot")
        let format = try r.integer("format")
        guard format == Self.format else {
            throw RecordError("format \(format) is not supported by this version of sidobot (it reads format \(Self.format))")
        }
        data.sequence = UInt64(try r.integer("sequence"))
        guard case .object(let rules)? = r.fields["state"] else { throw RecordError("snapshot.state is missing") }
        for (rule, keys) in rules {
            for (key, entry) in keys.objectValue ?? [:] {
                let e = RecordReader(entry, what: "snapshot.state.\(rule).\(key)")
                data.state.set(rule: rule, key: key, entry: StateEntry(
                    value: e.value("v"), expiresAt: e.optionalInteger("exp").map(UnixTime.init(milliseconds:))))
            }
        }
        for timer in try r.array("timers") {
            let record = try TimerRecord(journalValue: timer)
            data.timers.add(record)
            if let messageID = StoreData.retryMessageID(record) { data.retryTimers[messageID] = record.id }
        }
        data.timers.restoreNextID(UInt64(try r.integer("next_timer_id")))
        for message in try r.array("messages") { data.ledger.insert(try MessageRecord(journalValue: message)) }
        for entry in try r.array("dedupe") {
            guard case .array(let pair) = entry, pair.count == 2, case .string(let id) = pair[0] else {
                throw RecordError("snapshot.dedupe holds an entry that is not [id, time]")
            }
            let at: Double
            switch pair[1] {
            case .double(let d): at = d
            case .integer(let i): at = Double(i)
            default: throw RecordError("snapshot.dedupe holds an entry that is not [id, time]")
            }
            data.dedupe.insert(id, at: at)
        }
        var sequence: UInt64 = 0
        for event in try r.array("inflight") {
            sequence += 1
            let decoded = try EngineEvent(journalValue: event)
            let doneRules = Set((event["done_rules"]?.arrayValue ?? []).compactMap(\.stringValue))
            data.inflight[decoded.id] = InflightEvent(sequence: sequence, event: decoded, doneRules: doneRules)
        }
        for (key, at) in r.value("schedules").objectValue ?? [:] {
            guard let ms = at.int64Value else { throw RecordError("snapshot.schedules.\(key) is not a time") }
            data.schedules[key] = UnixTime(milliseconds: ms)
        }
        for letter in try r.array("dead_letters") { data.deadLetters.add(try DeadLetter(journalValue: letter)) }
    }
}
