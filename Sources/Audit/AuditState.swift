import ClusterCache
import StreamRules

/// The audit's results over the cluster, kept current change by change: each object's
/// verdict, an index from each referenced object to the objects that reference it (so a
/// change costs the objects it touches, not a rescan), the objects of each namespace,
/// the counts the metrics show, and the namespaces whose report is out of date. Pure: the
/// `Auditor` feeds it verdicts; it does no I/O.
public struct AuditState: Sendable {
    /// An object's verdict, what it references, and since when (wall-clock seconds) the
    /// verdict has been what it is.
    public struct Entry: Sendable {
        public var verdict: ObjectVerdict
        public var references: [ReferencedObject]
        public var since: Int
    }

    public private(set) var entries: [AuditedObject: Entry] = [:]
    private var dependents: [ReferencedObject: Set<AuditedObject>] = [:]
    private var byNamespace: [String: Set<AuditedObject>] = [:]
    /// Findings by rule and result (fail, warn), over every object.
    public private(set) var findingCounts: [RuleID: (fail: Int, warn: Int)] = [:]
    /// Objects without a finding.
    public private(set) var passing = 0
    /// Objects not judged (the cache does not keep them).
    public private(set) var skipped = 0
    /// Namespaces whose report no longer says what `entries` say.
    public private(set) var changedNamespaces: Set<String> = []

    public init() {}

    /// Records `object`'s verdict (nil: it is gone, or not judged) with what it references
    /// at `now`. O(its findings and references) plus hash lookups; a verdict equal to the
    /// one held changes nothing but the index.
    public mutating func record(_ object: AuditedObject, _ judged: (verdict: ObjectVerdict, references: [ReferencedObject])?,
                                now: Int) {
        let old = entries[object]
        if let old {
            for reference in old.references { unindex(object, reference) }
        }
        guard let judged else {
            if let old {
                count(old.verdict, -1)
                entries[object] = nil
                byNamespace[object.namespace]?.remove(object)
                if byNamespace[object.namespace]?.isEmpty == true { byNamespace[object.namespace] = nil }
                changedNamespaces.insert(object.namespace)
            }
            return
        }
        for reference in judged.references { dependents[reference, default: []].insert(object) }
        if let old, old.verdict == judged.verdict {
            entries[object] = Entry(verdict: old.verdict, references: judged.references, since: old.since)
            return
        }
        if let old { count(old.verdict, -1) }
        count(judged.verdict, 1)
        entries[object] = Entry(verdict: judged.verdict, references: judged.references, since: now)
        byNamespace[object.namespace, default: []].insert(object)
        changedNamespaces.insert(object.namespace)
    }

    /// The objects whose verdict `change` may have changed: the changed object itself
    /// (a connection or instance), and every object that references it.
    public func affected(by change: CacheChange) -> [AuditedObject] {
        var out: [AuditedObject] = []
        let referenced: ReferencedObject
        switch change.resource {
        case .secrets, .credentialSecrets:
            referenced = .secret(change.reference)
        case .projects:
            referenced = .project(change.reference)
        case .connections:
            out.append(AuditedObject(kind: .connection, namespace: change.reference.namespace, name: change.reference.name))
            referenced = .connection(change.reference)
        case .instances:
            return [AuditedObject(kind: .instance, namespace: change.reference.namespace, name: change.reference.name)]
        }
        if let holders = dependents[referenced] { out += holders }
        return out
    }

    /// Every object judged, for a full pass to find those that are gone.
    public var judgedObjects: Dictionary<AuditedObject, Entry>.Keys { entries.keys }

    /// The objects of `namespace`, sorted (empty when it holds none).
    public func objects(in namespace: String) -> [AuditedObject] {
        (byNamespace[namespace] ?? []).sorted()
    }

    /// Every namespace that holds a judged object.
    public var namespaces: Dictionary<String, Set<AuditedObject>>.Keys { byNamespace.keys }

    /// Marks every namespace's report out of date (a new leader checks them all).
    public mutating func markAllNamespacesChanged(plus others: some Sequence<String>) {
        changedNamespaces.formUnion(byNamespace.keys)
        changedNamespaces.formUnion(others)
    }

    /// The namespaces out of date, handed to the report writer, and a fresh start.
    public mutating func takeChangedNamespaces() -> Set<String> {
        defer { changedNamespaces = [] }
        return changedNamespaces
    }

    /// Puts back namespaces whose report could not be written.
    public mutating func markChanged(_ namespaces: some Sequence<String>) {
        changedNamespaces.formUnion(namespaces)
    }

    private mutating func unindex(_ object: AuditedObject, _ reference: ReferencedObject) {
        dependents[reference]?.remove(object)
        if dependents[reference]?.isEmpty == true { dependents[reference] = nil }
    }

    private mutating func count(_ verdict: ObjectVerdict, _ sign: Int) {
        if verdict.notJudged != nil {
            skipped += sign
        } else if verdict.findings.isEmpty {
            passing += sign
        }
        for finding in verdict.findings {
            var counts = findingCounts[finding.rule] ?? (0, 0)
            switch finding.result {
            case .fail: counts.fail += sign
            case .warn: counts.warn += sign
            case .pass, .skip: break
            }
            findingCounts[finding.rule] = counts.fail == 0 && counts.warn == 0 ? nil : counts
        }
    }
}
