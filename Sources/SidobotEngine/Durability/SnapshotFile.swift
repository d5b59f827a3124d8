import Foundation

/// `DATA/snapshot.json`: the whole store at one journal position, written atomically.
public enum SnapshotFile {
    /// Writes the snapshot: temp file, fsync, rename over the old one, fsync of the folder.
    /// A crash at any point leaves either the old snapshot or the new one, never a mix.
    public static func write(_ data: some ContiguousBytes, to path: String) throws(DurabilityError) {
        try FileIO.writeAtomically(data, to: path)
    }

    /// The snapshot's bytes, or `nil` if there is none. A snapshot that exists but cannot be read is an error.
    public static func read(path: String) throws(DurabilityError) -> Data? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw DurabilityError(path: path, reason: "cannot read: \(error.localizedDescription)")
        }
    }
}
