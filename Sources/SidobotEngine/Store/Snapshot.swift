import Foundation
import LuaSandbox

/// The JSON form of ``StoreData`` and the intake's ``DedupeSet`` in `DATA/snapshot.json`.
///
/// ```json
/// {"format": 1, "sequence": 1234, "saved_at": 1767225600000,
///  "state": {"RULE": {"KEY": {"v": VALUE, "exp": MS}}},
///  "timers": [TIMER...], "next_timer_id": 43, "messages": [MESSAGE...],
///  "dedupe": [["EVENT_ID", SECONDS]...], "inflight": [EVENT...],   // EVENT may carry "done_rules": [RULE...]
///  "schedules": {"RULE/HANDLER": MS}, "dead_letters": [LETTER...], "send_intents": [INTENT...]}
/// ```
/// `send_intents` (sends whose request was out when the snapshot was taken) is absent in older
/// snapshots, which had none to keep.
/// `sequence` is the journal position the snapshot covers: replay skips journal records at or below it.
enum SnapshotCodec {
    static let format: Int64 = 1

    /// Encodes a store copy, streaming into one buffer (no intermediate tree of the whole store).
    static func encode(_ data: StoreData, dedupe: DedupeSet, sequence: UInt64, savedAt: UnixTime) throws(JSONCodec.Error) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(1 << 16)
        func raw(_ text: String) { out.append(contentsOf: text.utf8) }
        raw("{\"format\":\(format),\"sequence\":\(sequence),\"saved_at\":\(savedAt.milliseconds),\"state\":{")
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
        try data.timers.forEachTimer { (timer) throws(JSONCodec.Error) in
            if !first { raw(",") }
            first = false
            try JSONObjectWriter.write(into: &out) { w in timer.writeFields(into: &w) }
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
        for entry in dedupe.entries {
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
        raw("],\"send_intents\":[")
        first = true
        for intent in data.intents.values.sorted(by: { $0.message.sentAt < $1.message.sentAt }) {
            if !first { raw(",") }
            first = false
            try JSONCodec.encode(intent.journalValue, into: &out)
        }
        raw("]}\n")
        return out
    }

    /// Decodes a snapshot into `data` and `dedupe` (which carry the retention settings), streaming:
    /// no tree of the whole file is built, each record goes into the store as it is read. Returns
    /// the sequence number the snapshot covers.
    static func decode(_ bytes: [UInt8], into data: inout StoreData, dedupe: inout DedupeSet) throws(RecordError) -> UInt64 {
        let result: Result<UInt64, RecordError> = bytes.withUnsafeBufferPointer { raw in
            Result { () throws(RecordError) -> UInt64 in
                var parser = JSONCodec.Parser(bytes: raw)
                let sequence = try decode(&parser, into: &data, dedupe: &dedupe)
                parser.skipWhitespace()
                guard parser.index == parser.bytes.count else { throw RecordError("not valid JSON: unexpected text after the snapshot") }
                return sequence
            }
        }
        return try result.get()
    }

    private static func decode(_ p: inout JSONCodec.Parser, into data: inout StoreData, dedupe restored: inout DedupeSet) throws(RecordError) -> UInt64 {
        var snapshotSequence: UInt64 = 0
        var seen: Set<String> = []
        var dedupe: [(id: String, acceptedAt: Double)] = []
        try p.forEachMember(depth: 0) { (p, field) throws(RecordError) in
            seen.insert(field)
            switch field {
            case "format":
                let format = try p.value(depth: 1, as: RecordError.self).int64Value
                guard format == Self.format else {
                    throw RecordError("format \(format.map(String.init) ?? "?") is not supported by this version of sidobot (it reads format \(Self.format))")
                }
            case "sequence":
                guard let sequence = try p.value(depth: 1, as: RecordError.self).int64Value, sequence >= 0 else {
                    throw RecordError("snapshot.sequence must be a whole number")
                }
                snapshotSequence = UInt64(sequence)
            case "state":
                try p.forEachMember(depth: 1) { (p, rule) throws(RecordError) in
                    try p.forEachMember(depth: 2) { (p, key) throws(RecordError) in
                        let e = RecordReader(try p.value(depth: 3, as: RecordError.self), what: "snapshot.state.\(rule).\(key)")
                        data.state.set(rule: rule, key: key, entry: StateEntry(
                            value: e.value("v"), expiresAt: e.optionalInteger("exp").map(UnixTime.init(milliseconds:))))
                    }
                }
            case "timers":
                try p.forEachElement(depth: 1) { (p) throws(RecordError) in
                    let record = try TimerRecord(journalValue: try p.value(depth: 2, as: RecordError.self))
                    data.timers.add(record)
                    if let messageID = StoreData.retryMessageID(record) { data.retryTimers[messageID] = record.id }
                }
            case "next_timer_id":
                guard let next = try p.value(depth: 1, as: RecordError.self).int64Value, next >= 0 else {
                    throw RecordError("snapshot.next_timer_id must be a whole number")
                }
                data.timers.restoreNextID(UInt64(next))
            case "messages":
                try p.forEachElement(depth: 1) { (p) throws(RecordError) in
                    data.ledger.insert(try MessageRecord(journalValue: try p.value(depth: 2, as: RecordError.self)))
                }
            case "dedupe":
                try p.forEachElement(depth: 1) { (p) throws(RecordError) in
                    guard case .array(let pair) = try p.value(depth: 2, as: RecordError.self), pair.count == 2, case .string(let id) = pair[0] else {
                        throw RecordError("snapshot.dedupe holds an entry that is not [id, time]")
                    }
                    switch pair[1] {
                    case .double(let at): dedupe.append((id, at))
                    case .integer(let at): dedupe.append((id, Double(at)))
                    default: throw RecordError("snapshot.dedupe holds an entry that is not [id, time]")
                    }
                }
            case "inflight":
                try p.forEachElement(depth: 1) { (p) throws(RecordError) in
                    let value = try p.value(depth: 2, as: RecordError.self)
                    let decoded = try EngineEvent(journalValue: value)
                    let doneRules = Set((value["done_rules"]?.arrayValue ?? []).compactMap(\.stringValue))
                    data.acceptedEvents += 1
                    data.inflight[decoded.id] = InflightEvent(order: data.acceptedEvents, event: decoded, doneRules: doneRules)
                }
            case "schedules":
                for (key, at) in try p.value(depth: 1, as: RecordError.self).objectValue ?? [:] {
                    guard let ms = at.int64Value else { throw RecordError("snapshot.schedules.\(key) is not a time") }
                    data.schedules[key] = UnixTime(milliseconds: ms)
                }
            case "dead_letters":
                try p.forEachElement(depth: 1) { (p) throws(RecordError) in
                    data.deadLetters.add(try DeadLetter(journalValue: try p.value(depth: 2, as: RecordError.self)))
                }
            case "send_intents":
                try p.forEachElement(depth: 1) { (p) throws(RecordError) in
                    let intent = try SendIntent(journalValue: try p.value(depth: 2, as: RecordError.self))
                    data.intents[intent.index] = intent
                }
            default:
                // A field a later version added: not ours to interpret.
                _ = try p.value(depth: 1, as: RecordError.self)
            }
        }
        for required in ["format", "sequence", "state", "timers", "next_timer_id", "messages", "dedupe", "inflight"] where !seen.contains(required) {
            throw RecordError("snapshot.\(required) is missing")
        }
        restored.restore(dedupe)
        return snapshotSequence
    }
}
