import JSON
import StreamRules

/// What one review came to, for logs and metrics (no object content, no secrets; texts
/// cut at 256 bytes).
public struct AdmissionSummary: Sendable {
    public var uid: String
    public var kind: String
    public var namespace: String
    public var operation: String
    public var allowed: Bool
    public var patchOperations: Int
    public var dryRun: Bool
    /// Every finding (errors, the refusal, warnings), for logs and metrics.
    public var findings: [RuleFinding]

    /// The object's own `metadata.name`, else `request.name`; made when read (for a log
    /// line, which most reviews do not write), as is `user`.
    public var name: String {
        if let own = objectName?.string, !own.isEmpty { return echoed(own) }
        return echoed(requestName)
    }

    /// `request.userInfo.username`.
    public var user: String { echoed(userInfo?[.username]?.string ?? "") }

    let objectName: JSONValue?
    let requestName: String
    let userInfo: JSONValue?
}

/// The answer to one review body.
public enum AdmissionOutcome: Sendable {
    /// HTTP 200 with this AdmissionReview body.
    case answered(body: [UInt8], summary: AdmissionSummary)
    /// HTTP 400: the body is not a usable AdmissionReview.
    case badRequest(AdmissionDecodingError)
    /// The review's budget ran out before it was decided: no answer the caller can still
    /// use (answered with an error status).
    case outOfTime
}

/// AdmissionReview in, AdmissionReview out: decode, dispatch by `request.kind` to the
/// rules, encode the decision. Shared by the server and `review`.
public struct AdmissionReviewer: Sendable {
    public let rules: StreamRules
    /// JSON nesting deeper than this is refused (400).
    public let maxNestingDepth: Int

    /// The cluster as the cache sees it, read once per review; nil without cluster
    /// lookups. Never waits: the cache hands out a copy of its snapshot.
    public let cluster: @Sendable () -> ClusterView?

    public static let defaultMaxNestingDepth = JSONReader.defaultMaxDepth

    public init(rules: StreamRules = StreamRules(), maxNestingDepth: Int = AdmissionReviewer.defaultMaxNestingDepth,
                cluster: @escaping @Sendable () -> ClusterView? = { nil }) {
        self.rules = rules
        self.maxNestingDepth = maxNestingDepth
        self.cluster = cluster
    }

    /// `decoded` sees the request once it is decoded (a server notes its uid and kind
    /// for stall reports); `budget` bounds the time the review may take, checked between
    /// its steps and in the rules' loops.
    public func review(_ body: [UInt8], at endpoint: AdmissionEndpoint, budget: ReviewBudget = .unlimited,
                       decoded: (AdmissionRequest) -> Void = { _ in }) -> AdmissionOutcome {
        let request: AdmissionRequest
        do {
            request = try AdmissionRequest.decode(body, maxDepth: maxNestingDepth)
        } catch {
            return .badRequest(error)
        }
        decoded(request)
        if budget.isExhausted { return .outOfTime }
        let decision = decide(request, at: endpoint, budget: budget)
        if decision.outOfTime { return .outOfTime }
        // Every text in the summary is cut at 256 bytes: it goes into every log line.
        let summary = AdmissionSummary(uid: echoed(request.uid), kind: echoed(request.kind),
                                       namespace: echoed(request.namespace), operation: echoed(request.operation),
                                       allowed: decision.allowed,
                                       patchOperations: decision.patch.count, dryRun: request.dryRun,
                                       findings: decision.findings,
                                       objectName: request.object?[.metadata]?[.name], requestName: request.name,
                                       userInfo: request.userInfo)
        let kind = StreamKind(group: request.group, kind: request.kind)
        return .answered(body: AdmissionResponseEncoder.encode(request: request, kind: kind, decision: decision),
                         summary: summary)
    }

    /// Foreign kinds, subresources and CONNECT pass untouched; DELETE is judged at
    /// `/validate` only, against the cluster.
    func decide(_ request: AdmissionRequest, at endpoint: AdmissionEndpoint, budget: ReviewBudget = .unlimited) -> Decision {
        guard let kind = StreamKind(group: request.group, kind: request.kind), request.subResource == nil,
              let operation = AdmissionOperation(request.operation), operation != .connect else {
            return .allow
        }
        // Only /validate judges against the cluster; /mutate only defaults (it never denies).
        let input = RuleInput(kind: kind, operation: operation, object: request.object, oldObject: request.oldObject,
                              requestNamespace: request.namespace, requestName: request.name, budget: budget,
                              cluster: endpoint == .validate ? cluster() : nil)
        switch (endpoint, operation) {
        case (.validate, .delete): return rules.validateDelete(input)
        case (.mutate, .delete): return .allow
        case (.mutate, _): return rules.mutate(input)
        case (.validate, _): return rules.validate(input)
        }
    }
}
