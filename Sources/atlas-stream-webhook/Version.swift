/// The release this source is, kept equal to the newest release in CHANGELOG.md (a test
/// checks), and the git revision it was built from (`BuildInfo`, written at build time).
enum Version {
    static let release = "0.3.0"
    static var revision: String { BuildInfo.revision }

    /// `atlas-stream-webhook 0.3.0 (revision 1a2b3c4d5e6f)`.
    static var text: String { "\(AtlasStreamWebhook.name) \(release) (revision \(revision))" }
}
