import StreamRules

/// The kinds of the operator's API group (`atlas.mongodb.com`) that `check` meets in
/// manifests: the two it checks, the other kinds AKO serves (read, not checked), and
/// anything else, which it neither checks nor passes.
enum OperatorKinds {
    /// The kinds AKO serves (releases up to 2.16) besides the two checked here.
    static let served: Set<String> = [
        "AtlasProject", "AtlasDeployment", "AtlasDatabaseUser", "AtlasBackupSchedule", "AtlasBackupPolicy",
        "AtlasBackupCompliancePolicy", "AtlasTeam", "AtlasDataFederation", "AtlasFederatedAuth",
        "AtlasSearchIndexConfig", "AtlasPrivateEndpoint", "AtlasCustomRole", "AtlasIPAccessList",
        "AtlasNetworkContainer", "AtlasNetworkPeering", "AtlasThirdPartyIntegration", "AtlasOrgSettings",
    ]

    /// Why a document of `kind` in the group is an error, or nil when it is a kind AKO
    /// serves and this server leaves alone.
    static func problem(_ kind: String) -> String? {
        guard !served.contains(kind) else { return nil }
        let checked = StreamKind.allCases.map(\.rawValue).joined(separator: " and ")
        if kind == "AtlasStreamWorkspace" {
            return "kind AtlasStreamWorkspace is not served by AKO (no release up to 2.16.1 has it) and was not checked; "
                + "AKO serves stream processing workspaces as AtlasStreamInstance"
        }
        return "unknown kind \(kind) in \(StreamKind.group) was not checked; this server checks \(checked)"
    }
}
