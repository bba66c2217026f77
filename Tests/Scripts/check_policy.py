#!/usr/bin/env python3
"""The generated ValidatingAdmissionPolicies against the webhook's rules, case by case.

  check_policy.py cases OUT
      Writes the case corpus as JSON Lines: the rule tests' cases (Tests/Fixtures/policy-cases.jsonl),
      the AKO documentation fixtures (Tests/Fixtures/manifests/valid, review-*.json) and worst-case
      shapes at and past the webhook's limits. Each object is first made what the API server hands
      an admission policy: members the CRD schema does not know are pruned, null members dropped;
      an object the schema would still refuse for a null list entry is left out (counted).

  check_policy.py compare VERDICTS
      VERDICTS (written by AdmissionPolicyTests) holds, per configuration, the `policy --output json`
      output and the webhook rules' findings per case and rule. Every validation's expression,
      messageExpression, variable and matchCondition is compiled with Google's CEL C++ runtime
      (cel-expr-python) in an environment of what Kubernetes 1.30 offers (standard library, strings
      extension, optional types; a call to any other function fails the check), then evaluated with
      object, oldObject, request and variables bound as the API server binds them. For every case
      and covered rule: the policy denies (or warns) exactly when the webhook does, and its message
      (`<field>: <body>`, naming the entry or key at fault) is one of the webhook's for that rule.
"""
import glob
import json
import os
import re
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "Tests", "Fixtures")
CRDS = {
    "AtlasStreamInstance": "atlas.mongodb.com_atlasstreaminstances.yaml",
    "AtlasStreamConnection": "atlas.mongodb.com_atlasstreamconnections.yaml",
}

# What Kubernetes 1.30 declares for every policy expression that cel-expr-python also
# implements: operators, the standard library and macros, `matches`, the strings
# extension (version 2) and optional types. Kubernetes' own libraries (lists, regex
# find, url, quantity, ip, cidr, sets, format) and cel.bind are not used.
ALLOWED_CALLS = {
    # macros
    "has", "all", "exists", "exists_one", "map", "filter",
    # standard library
    "size", "matches", "contains", "startsWith", "endsWith", "int", "uint", "double", "string", "bytes", "bool",
    "type", "dyn", "duration", "timestamp",
    # strings extension v2
    "charAt", "indexOf", "lastIndexOf", "lowerAscii", "upperAscii", "replace", "split", "substring", "trim", "join",
    # optional types
    "orValue", "hasValue", "value", "or", "of", "none", "optMap", "optFlatMap",
}


def prune(value, schema):
    """The object as the API server stores it: unknown members pruned, null members dropped."""
    if isinstance(value, dict):
        properties = (schema or {}).get("properties")
        additional = (schema or {}).get("additionalProperties")
        out = {}
        for key, member in value.items():
            if member is None:
                continue
            if schema is None or (schema.get("x-kubernetes-preserve-unknown-fields")):
                out[key] = member
            elif properties is not None and key in properties:
                out[key] = prune(member, properties[key])
            elif additional is not None:
                out[key] = prune(member, additional if isinstance(additional, dict) else None)
        return out
    if isinstance(value, list):
        items = (schema or {}).get("items")
        return [prune(element, items) if element is not None else None for element in value]
    return value


def schemas():
    out = {}
    for kind, name in CRDS.items():
        crd = yaml.safe_load(open(os.path.join(ROOT, "deploy", "crds", name)))
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        out[kind] = schema
    return out


def has_null_entry(value):
    if isinstance(value, dict):
        return any(has_null_entry(v) for v in value.values())
    if isinstance(value, list):
        return any(v is None or has_null_entry(v) for v in value)
    return False


def normalize(case, crd):
    schema = crd[case["kind"]]
    out = dict(case)
    for key in ("object", "oldObject"):
        obj = case.get(key)
        if isinstance(obj, dict):
            metadata = obj.get("metadata")
            pruned = prune({k: v for k, v in obj.items() if k != "metadata"}, schema)
            if metadata is not None:
                pruned["metadata"] = {k: v for k, v in metadata.items() if v is not None}
            out[key] = pruned
    return out


def worst_cases(namespace="team-a"):
    """Shapes at and past the webhook's limits: the most entries it judges one by one, and one more."""
    def connection(kafka):
        return {"kind": "AtlasStreamConnection", "operation": "CREATE", "namespace": namespace, "oldObject": None,
                "object": {"metadata": {"name": "worst", "namespace": namespace},
                           "spec": {"name": "k", "type": "Kafka", "kafkaConfig": kafka}}}

    def kafka(servers, config=None):
        block = {"bootstrapServers": servers,
                 "authentication": {"mechanism": "SCRAM-256", "credentials": {"name": "creds"}},
                 "security": {"protocol": "SSL", "certificate": {"name": "cert"}}}
        if config is not None:
            block["config"] = config
        return block

    def instance(registry):
        return {"kind": "AtlasStreamInstance", "operation": "CREATE", "namespace": namespace, "oldObject": None,
                "object": {"metadata": {"name": "worst", "namespace": namespace},
                           "spec": {"name": "i", "clusterConfig": {"provider": "AWS", "region": "VIRGINIA_USA", "tier": "SP10"},
                                    "projectRef": {"name": "p"}, "connectionRegistry": registry}}}

    out = [
        connection(kafka(",".join(f"b{i}.kafka.svc:{9000 + i}" for i in range(256)))),
        connection(kafka(",".join(f"b{i}:1" for i in range(257)))),
        connection(kafka("a" * 16380 + ":1")),
        connection(kafka("a" * 16385 + ":1")),
        connection(kafka(",".join(f"b{i}:1" for i in range(255)) + ",bad host:1")),
        connection(kafka("é" * 300 + ":1")),
        connection(kafka("x:1", {f"k{i}": "v" for i in range(256)})),
        connection(kafka("x:1", {f"k{i}": "v" for i in range(257)})),
        connection(kafka("x:1", {**{f"k{i}": "v" for i in range(255)}, "SASL.Password": "p"})),
        instance([{"name": f"c{i}"} for i in range(1000)]),
        instance([{"name": f"c{i}"} for i in range(1001)]),
        instance([{"name": f"c{i}"} for i in range(999)] + [{"name": "Bad_Name", "namespace": "x" * 64}]),
    ]
    # IPv6 forms against the C library's reader, through the webhook.
    for host in ["::", "::1", "1::", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1::8", "1:2:3:4:5:6:1.2.3.4",
                 "::ffff:10.0.0.1", "::1.2.3.4", "1:2:3:4:5::1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4", "1:2:3:4:5:6:7:8:9",
                 "1::2::3", ":1", "1:", "12345::", "::ffff:01.2.3.4", "::ffff:256.1.1.1", "fe80::1%eth0", "g::1", "", "1.2.3.4"]:
        out.append(connection(kafka(f"[{host}]:9092")))
    return out


def documentation_cases():
    out = []
    for path in sorted(glob.glob(os.path.join(FIXTURES, "manifests", "valid", "**", "*.y*ml"), recursive=True)):
        for document in yaml.safe_load_all(open(path)):
            if isinstance(document, dict) and document.get("kind") in CRDS:
                namespace = document.get("metadata", {}).get("namespace", "default")
                out.append({"kind": document["kind"], "operation": "CREATE", "namespace": namespace,
                            "object": document, "oldObject": None})
    for path in sorted(glob.glob(os.path.join(FIXTURES, "review-*.json"))):
        request = json.load(open(path)).get("request", {})
        kind = request.get("kind", {}).get("kind")
        if kind in CRDS and request.get("operation") in ("CREATE", "UPDATE") and isinstance(request.get("object"), dict):
            out.append({"kind": kind, "operation": request["operation"], "namespace": request.get("namespace", ""),
                        "object": request["object"], "oldObject": request.get("oldObject")})
    return out


def write_cases(out_path):
    crd = schemas()
    cases = [json.loads(line) for line in open(os.path.join(FIXTURES, "policy-cases.jsonl")) if line.strip()]
    sources = [("rule tests", cases), ("documentation fixtures", documentation_cases()), ("worst-case shapes", worst_cases())]
    kept, refused = [], 0
    for source, items in sources:
        for case in items:
            case = normalize(case, crd)
            if has_null_entry(case.get("object")) or has_null_entry(case.get("oldObject")):
                refused += 1
                continue
            case["source"] = source
            kept.append(case)
    with open(out_path, "w") as f:
        for case in kept:
            f.write(json.dumps(case) + "\n")
    print(f"cases: {len(kept)} written, {refused} left out (a null list entry: the CRD schema refuses it)")


# MARK: - Evaluation

def calls(expression):
    """Names called in an expression (`f(` and `.f(`), outside string literals."""
    without_strings = re.sub(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", "''", expression)
    return set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(", without_strings))


class Evaluator:
    def __init__(self, policy):
        from cel_expr_python import cel
        from cel_expr_python.ext import ext_optional, ext_strings
        self.cel = cel
        self.env = cel.NewEnv(variables={name: cel.Type.DYN for name in ("object", "oldObject", "request", "__variables")},
                              extensions=[ext_strings.ExtStrings(), ext_optional.ExtOptional()])
        self.policy = policy
        self.problems = []
        spec = policy["spec"]
        self.variables = [(v["name"], self.compile(v["expression"], f"variable {v['name']}")) for v in spec.get("variables", [])]
        self.conditions = [self.compile(c["expression"], f"matchCondition {c['name']}") for c in spec.get("matchConditions", [])]
        self.validations = []
        rules = policy["metadata"]["annotations"]["atlas-stream-webhook.atlas.mongodb.com/rules"].split(",")
        for rule, v in zip(rules, spec["validations"]):
            self.validations.append((rule, v, self.compile(v["expression"], f"{rule} expression"),
                                     self.compile(v["messageExpression"], f"{rule} messageExpression")))

    def compile(self, expression, where):
        unknown = calls(expression) - ALLOWED_CALLS
        if unknown:
            self.problems.append(f"{self.policy['metadata']['name']} {where}: calls {sorted(unknown)}, not in Kubernetes 1.30's CEL")
        # Variables are a map here; `variables.x` reads as a member of it.
        text = expression.replace("variables.", "__variables.")
        try:
            return self.env.compile(text)
        except Exception as error:  # noqa: BLE001 - the runtime's compile errors are plain exceptions
            self.problems.append(f"{self.policy['metadata']['name']} {where}: does not compile: {error}")
            return None

    def value(self, program, data):
        if program is None:
            return ("error", "not compiled")
        result = program.eval(data=data)
        if result.type() == self.cel.Type.ERROR:
            return ("error", str(result.value()))
        return ("ok", result.plain_value())

    def evaluate(self, case):
        """The failed validations as [(rule, message)], or an error text."""
        operation = case["operation"]
        old = case.get("oldObject") if operation == "UPDATE" else None
        obj = case["object"]
        request = {"operation": operation, "namespace": case["namespace"], "name": obj.get("metadata", {}).get("name", ""),
                   "kind": {"group": "atlas.mongodb.com", "version": "v1", "kind": case["kind"]}}
        variables = {}
        data = {"object": obj, "oldObject": old, "request": request, "__variables": variables}
        for condition in self.conditions:
            status, result = self.value(condition, data)
            if status == "error":
                return f"matchCondition failed: {result}"
            if result is not True:
                return []
        # Variables in order, each seeing those before it (the API server's are lazy; none
        # of these fails on an object of the CRD's types, so eager evaluation gives the same).
        for name, program in self.variables:
            status, result = self.value(program, data)
            if status == "error":
                return f"variable {name} failed: {result}"
            variables[name] = result
        failed = []
        for rule, validation, expression, message in self.validations:
            status, result = self.value(expression, data)
            if status == "error":
                return f"{rule} expression failed: {result}"
            if result is not True:
                status, text = self.value(message, data)
                if status == "error":
                    return f"{rule} messageExpression failed: {text}"
                failed.append((rule, text))
        return failed


def strip_rule(message, rule):
    suffix = f" (rule {rule})"
    return message[:-len(suffix)] if message.endswith(suffix) else None


def compare(verdicts_path):
    verdicts = json.load(open(verdicts_path))
    compared, disagreements, problems, skipped = 0, [], [], 0
    covered, uncovered = set(), set()
    for configuration in verdicts["configurations"]:
        policies = [item for item in configuration["policy"]["items"] if item["kind"] == "ValidatingAdmissionPolicy"]
        bindings = {item["spec"]["policyName"]: item["spec"]["validationActions"]
                    for item in configuration["policy"]["items"] if item["kind"] == "ValidatingAdmissionPolicyBinding"}
        evaluators = []
        for policy in policies:
            evaluator = Evaluator(policy)
            problems += evaluator.problems
            kind = {"atlasstreaminstances": "AtlasStreamInstance", "atlasstreamconnections": "AtlasStreamConnection"}[
                policy["spec"]["matchConstraints"]["resourceRules"][0]["resources"][0]]
            evaluators.append((kind, bindings.get(policy["metadata"]["name"], []), evaluator))
            covered.update(rule for rule, *_ in evaluator.validations)
        uncovered.update(configuration.get("notCovered", []))
        for case, verdict in zip(verdicts["cases"], configuration["verdicts"]):
            # What each policy said, by rule: Deny bindings against errors, Warn against warnings.
            said = {}
            rules_in_policy = {}
            for kind, actions, evaluator in evaluators:
                if kind != case["kind"]:
                    continue
                result = evaluator.evaluate(case)
                if isinstance(result, str):
                    problems.append(f"{configuration['name']} {case['source']} case {verdict['index']}: {result}")
                    continue
                for rule, *_ in evaluator.validations:
                    rules_in_policy[rule] = actions
                for rule, message in result:
                    said.setdefault(rule, []).append(message)
            for rule, actions in rules_in_policy.items():
                if rule in verdict.get("incomplete", []):
                    skipped += 1
                    continue
                expected = verdict["findings"].get(rule, [])
                got = said.get(rule, [])
                compared += 1
                where = f"{configuration['name']} {case['source']} case {verdict['index']} {rule}"
                if bool(expected) != bool(got):
                    disagreements.append(f"{where}: webhook {expected or 'allows'}, policy {got or 'allows'}")
                    continue
                # A message is `<field>: <body>`: equal texts name the same field.
                for message in got:
                    text = strip_rule(message, rule)
                    if text is None or text not in expected:
                        disagreements.append(f"{where}: policy says {message!r}, webhook {expected}")
    for problem in problems:
        print("FAIL " + problem)
    for disagreement in disagreements[:200]:
        print("DIFF " + disagreement)
    print(f"rules: {len(covered)} covered, {len(uncovered)} not covered ({', '.join(sorted(uncovered))})")
    print(f"compared {compared} case-rule verdicts over {len(verdicts['cases'])} cases and "
          f"{len(verdicts['configurations'])} configurations; {skipped} left out (the webhook's answer cut at 100 errors)")
    print(f"policy agreement: {len(disagreements)} disagreements, {len(problems)} problems")
    return 1 if disagreements or problems else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "cases":
        write_cases(sys.argv[2])
        sys.exit(0)
    if len(sys.argv) == 3 and sys.argv[1] == "compare":
        sys.exit(compare(sys.argv[2]))
    print(__doc__)
    sys.exit(2)
