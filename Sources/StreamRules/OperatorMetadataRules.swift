import JSON

/// The annotations and label AKO reads from both kinds' metadata. AKO
/// ignores a value it does not know, silently: `Keep` instead of `keep` and the Atlas
/// object is deleted with the resource. Judged on CREATE and, on UPDATE, for each key
/// whose value changed, so an old bad value does not block unrelated updates.
public struct OperatorMetadataRules {
    let configuration: RuleConfiguration

    static let resourcePolicy: JSONKey = "mongodb.com/atlas-resource-policy"
    static let reconciliationPolicy: JSONKey = "mongodb.com/atlas-reconciliation-policy"
    static let versionPolicy: JSONKey = "mongodb.com/atlas-resource-version-policy"
    static let resourceVersion: JSONKey = "mongodb.com/atlas-resource-version"

    /// The values AKO acts on, per annotation.
    static let resourcePolicyValues = ["keep", "delete"]
    static let reconciliationPolicyValues = ["skip"]
    static let versionPolicyValues = ["allow"]

    static let metadataPath = FieldPath("metadata")
    static let annotationsPath = metadataPath.child("annotations")
    static let labelsPath = metadataPath.child("labels")
    static let resourcePolicyPath = annotationsPath.key(resourcePolicy.string)
    static let reconciliationPolicyPath = annotationsPath.key(reconciliationPolicy.string)
    static let versionPolicyPath = annotationsPath.key(versionPolicy.string)
    static let resourceVersionPath = labelsPath.key(resourceVersion.string)

    /// The annotation and label keys these rules read: what a stored copy of an object
    /// keeps of its metadata for them to judge it again.
    public static let annotationKeys = [resourcePolicy.string, reconciliationPolicy.string, versionPolicy.string]
    public static let labelKeys = [resourceVersion.string]

    static let versionFormat = #"must be a semantic version such as 2.15.1 (an optional "v" prefix, -prerelease and +build)"#

    func validate(object: JSONValue, old: JSONValue?, checks: inout FieldChecks) {
        guard let metadata = checks.object(object[.metadata], Self.metadataPath) else { return }
        let oldMetadata = old?[.metadata]

        let (annotationsValue, labelsValue) = metadata[.annotations, .labels]
        let annotations = checks.object(annotationsValue, Self.annotationsPath)
        // Each annotation judged in turn (no table walked: this runs on every review).
        let oldAnnotations = old == nil ? nil : oldMetadata?[.annotations]
        judge(.resourcePolicySupported, annotations, old: oldAnnotations, on: old != nil, Self.resourcePolicy,
              Self.resourcePolicyPath, Self.resourcePolicyValues, &checks)
        judge(.reconciliationPolicySupported, annotations, old: oldAnnotations, on: old != nil, Self.reconciliationPolicy,
              Self.reconciliationPolicyPath, Self.reconciliationPolicyValues, &checks)
        judge(.resourceVersionPolicySupported, annotations, old: oldAnnotations, on: old != nil, Self.versionPolicy,
              Self.versionPolicyPath, Self.versionPolicyValues, &checks)

        let labels = checks.object(labelsValue, Self.labelsPath)
        let path = Self.resourceVersionPath
        let label = labels?[Self.resourceVersion]
        guard old == nil || changed(label, from: oldMetadata?[.labels]?[Self.resourceVersion]),
              let text = checks.string(label, path) else { return }
        guard let version = OperatorVersion(text) else {
            return checks.invalid(.resourceVersionFormat, path, text, Self.versionFormat)
        }
        if let operatorVersion = configuration.operatorVersion, operatorVersion < version,
           annotations?[Self.versionPolicy]?.string != "allow" {
            checks.invalid(.resourceVersionNotNewer, path, text, "newer than the operator version \(goQuote(operatorVersion.text)); AKO will not reconcile it")
        }
    }

    /// Annotation `key`: a string among `supported` (rule `rule`), judged on CREATE and,
    /// on UPDATE (`isUpdate`), only when its value changed.
    private func judge(_ rule: RuleID, _ annotations: JSONValue?, old oldAnnotations: JSONValue?, on isUpdate: Bool, _ key: JSONKey,
                       _ path: FieldPath, _ supported: [String], _ checks: inout FieldChecks) {
        let annotation = annotations?[key]
        guard !isUpdate || changed(annotation, from: oldAnnotations?[key]),
              let value = checks.string(annotation, path) else { return }
        if !supported.contains(value) { checks.notSupported(rule, path, value, supported) }
    }

    /// On UPDATE, whether a value differs from the old one (on CREATE, `old == nil`,
    /// everything is judged and the old side is not even looked up).
    private func changed(_ value: JSONValue?, from old: JSONValue?) -> Bool {
        switch (value, old) {
        case (nil, nil): return false
        case let (value?, old?): return !(value == old)
        default: return true
        }
    }
}
