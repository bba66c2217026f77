#!/usr/bin/env python3
"""Checks deploy/ and certs/ against the real server.

1. `kubectl kustomize` renders the base, both overlays and the no-cluster-lookups, namespaced-rbac, no-audit-reports,
   policyreport-crd, admission-policy (alone and beside the webhook) and monitoring components (the self-signed one
   after certs/generate.sh wrote its files, in a scratch copy of deploy/).
2. Every rendered object validates against the Kubernetes schemas (kubernetes-validate,
   strict); cert-manager and prometheus-operator objects, which have no schema there, are checked by hand.
3. RBAC is least privilege: only list and watch (never get) on Secrets and the Atlas resources; on PolicyReports
   what the audit's writer uses, on Leases get, create and update in the server's own namespace only; the
   namespaced-rbac component grants reads and reports through Roles in exactly the --watch-namespaces it sets, and no
   ClusterRole; no-audit-reports removes the report and Lease grants and turns reports off; policyreport-crd adds the
   wgpolicyk8s.io/v1alpha2 PolicyReport resource.
4. What the manifests say agrees with what the server serves, read from the rendered
   YAML: webhook paths, Service and container ports (webhook, health, metrics), probes
   (plain HTTP on the health port), container arguments, Secret and ConfigMap mounts.
   The server is started with the container's own arguments (mount paths mapped to
   scratch copies of the rendered Secret and ConfigMap, listen addresses to free loopback
   ports) and reached as https://atlas-stream-webhook.atlas-stream-webhook.svc:<port>
   through curl --resolve, trusting only the rendered caBundle; the probes as the kubelet
   sends them, and a scrape of the metrics port as a ServiceMonitor would, with the
   caBundle and no client certificate.
Usage: check_deploy.py PATH/TO/atlas-stream-webhook
"""
import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REVIEW = os.path.join(ROOT, "Tests", "Fixtures", "review-kafka.json")
problems = []


def check(condition, message):
    if not condition:
        problems.append(message)
    return condition


def render(path):
    out = subprocess.run(["kubectl", "kustomize", path], capture_output=True, text=True)
    if not check(out.returncode == 0, f"kustomize {path}: {out.stderr.strip()}"):
        return []
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(out.stdout)
    result = subprocess.run([sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", f.name],
                            capture_output=True, text=True)
    check(result.returncode == 0, f"kubernetes-validate {path}: {result.stdout}{result.stderr}")
    os.unlink(f.name)
    print(f"ok  rendered {os.path.relpath(path, ROOT)}: {len(docs)} objects")
    return docs


def one(docs, kind, name=None):
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    check(len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}")
    return found[0] if found else {}


def flag(args, name):
    for arg in args:
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
    return None


def seconds(duration):
    match = re.fullmatch(r"(\d+)s", duration or "")
    return int(match.group(1)) if match else None


def check_common(docs, failure_policy="Fail"):
    """Structure every overlay shares, read from its rendering (the webhooks fail closed,
    except beside the admission policies)."""
    deployment = one(docs, "Deployment")
    service = one(docs, "Service")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    args = container["args"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for name, port_name in (("listen", "https"), ("health-listen", "health"), ("metrics-listen", "metrics")):
        listen = flag(args, name)
        check(listen and int(listen.rsplit(":", 1)[1]) == ports.get(port_name),
              f"--{name} {listen} is not the {port_name} port {ports}")
    svc_ports = {p["name"]: p for p in service["spec"]["ports"]}
    svc_port = svc_ports.get("https", {})
    check(svc_port.get("port") == 443 and svc_port.get("targetPort") in ("https", ports.get("https")), f"Service port {svc_port}")
    metrics_port = svc_ports.get("metrics", {})
    check(metrics_port.get("targetPort") in ("metrics", ports.get("metrics")), f"Service metrics port {metrics_port}")
    check(service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items(),
          "Service selector does not select the pods")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = container[probe]["httpGet"]
        check(get["path"] == path and get.get("scheme", "HTTP") == "HTTP" and get["port"] in ("health", ports.get("health")),
              f"{probe} {get} is not plain HTTP on the health port")
    check(deployment["spec"]["replicas"] >= 2, "fewer than 2 replicas")
    check(pod.get("topologySpreadConstraints"), "no topology spread")
    pdb = one(docs, "PodDisruptionBudget")
    check(pdb["spec"]["selector"]["matchLabels"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items(),
          "PodDisruptionBudget does not select the pods")
    security = container["securityContext"]
    check(pod["securityContext"].get("runAsNonRoot") and security.get("readOnlyRootFilesystem")
          and security["capabilities"]["drop"] == ["ALL"] and not security.get("allowPrivilegeEscalation")
          and pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", "pod security settings")
    check("limits" in container["resources"] and "requests" in container["resources"], "resources")
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    budget = int(pre_stop[-1]) + seconds(flag(args, "shutdown-delay")) + seconds(flag(args, "drain-timeout"))
    check(pod["terminationGracePeriodSeconds"] > budget,
          f"terminationGracePeriodSeconds {pod['terminationGracePeriodSeconds']} <= preStop + shutdown delay + drain {budget}")
    for kind, path in (("MutatingWebhookConfiguration", "/mutate"), ("ValidatingWebhookConfiguration", "/validate")):
        config = one(docs, kind)
        for hook in config["webhooks"]:
            ref = hook["clientConfig"]["service"]
            check(ref["name"] == service["metadata"]["name"] and ref["namespace"] == service["metadata"]["namespace"]
                  and ref["port"] == svc_port.get("port") and ref["path"] == path, f"{kind} service reference {ref}")
            check(hook["sideEffects"] == "None" and hook["failurePolicy"] == failure_policy and hook["timeoutSeconds"] == 5
                  and hook["matchPolicy"] == "Equivalent" and hook["admissionReviewVersions"] == ["v1", "v1beta1"],
                  f"{kind} settings")
            rule = hook["rules"][0]
            check(sorted(rule["resources"]) == ["atlasstreamconnections", "atlasstreaminstances"]
                  and sorted(rule["operations"]) == ["CREATE", "UPDATE"] and rule["apiGroups"] == ["atlas.mongodb.com"],
                  f"{kind} rules {rule}")
    return deployment, service


# What the cluster cache reads: list and watch, never get (it never reads one object by name).
READ = [("", "secrets"), ("atlas.mongodb.com", "atlasstreamconnections"),
        ("atlas.mongodb.com", "atlasstreaminstances"), ("atlas.mongodb.com", "atlasprojects")]
REPORTS = ("wgpolicyk8s.io", "policyreports")
REPORT_VERBS = {"get", "list", "watch", "create", "update", "patch", "delete"}
LEASES = ("coordination.k8s.io", "leases")
LEASE_VERBS = {"get", "create", "update"}
READER, REPORTER, ELECTION = "atlas-stream-webhook-reader", "atlas-stream-webhook-reports", "atlas-stream-webhook-leader-election"


def granted(role):
    """(apiGroup, resource) -> verbs, over every rule of a Role or ClusterRole."""
    out = {}
    for rule in role.get("rules", []):
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                out.setdefault((group, resource), set()).update(rule.get("verbs", []))
    return out


def check_least_privilege(docs, where):
    """No role of the rendering grants get (or anything past list and watch) on Secrets and
    the Atlas resources, more than the report writer's verbs on PolicyReports, Leases
    beyond get, create and update in a namespaced Role, or anything else."""
    for role in (d for d in docs if d["kind"] in ("Role", "ClusterRole")):
        name = f"{where}: {role['kind']} {role['metadata'].get('namespace', '')}/{role['metadata']['name']}"
        verbs = granted(role)
        secrets = verbs.get(("", "secrets"), set()) | verbs.get(("", "*"), set()) | verbs.get(("*", "*"), set())
        check("get" not in secrets and "*" not in secrets, f"{name} grants {sorted(secrets)} on secrets (get is never used)")
        for key, allowed in verbs.items():
            if key in READ:
                check(allowed <= {"list", "watch"}, f"{name} grants more than list and watch on {key}: {sorted(allowed)}")
            elif key == REPORTS:
                check(allowed <= REPORT_VERBS, f"{name} grants more than the report writer uses: {sorted(allowed)}")
            elif key == LEASES:
                check(role["kind"] == "Role" and allowed <= LEASE_VERBS,
                      f"{name} grants {sorted(allowed)} on leases (get, create, update in its own namespace only)")
            else:
                check(False, f"{name} grants on {key}, which the server never uses")


def check_role(role, where):
    verbs = granted(role)
    for key in READ:
        check(verbs.get(key) == {"list", "watch"}, f"{where} does not grant exactly list, watch on {key}: {verbs.get(key)}")
    check(set(verbs) == set(READ), f"{where} grants on more than the cache reads: {sorted(set(verbs) - set(READ))}")


def check_reports_role(role, where):
    check(granted(role) == {REPORTS: REPORT_VERBS}, f"{where} does not grant exactly the report writer's verbs: {granted(role)}")


def check_audit_access(docs, deployment):
    """The report writer's grant and the Lease's, in the server's own namespace, bound to
    its ServiceAccount; the pod's name and namespace in its environment."""
    account = one(docs, "ServiceAccount")
    lease_role = one(docs, "Role", ELECTION)
    check(granted(lease_role) == {LEASES: LEASE_VERBS}, f"the leader-election Role grants {granted(lease_role)}")
    check(lease_role.get("metadata", {}).get("namespace") == deployment["metadata"]["namespace"],
          "the leader-election Role is not in the server's namespace")
    check(binds_account(one(docs, "RoleBinding", ELECTION), lease_role, account),
          "the leader-election RoleBinding does not bind its Role to the server's ServiceAccount")
    env = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
           for e in deployment["spec"]["template"]["spec"]["containers"][0].get("env", [])}
    check(env.get("POD_NAME") == "metadata.name" and env.get("POD_NAMESPACE") == "metadata.namespace",
          f"the container does not get POD_NAME and POD_NAMESPACE from the downward API: {env}")


def binds_account(binding, role, account):
    return (binding["roleRef"]["kind"] == role["kind"] and binding["roleRef"]["name"] == role["metadata"]["name"]
            and {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": account["metadata"]["namespace"]}
            in binding["subjects"])


def check_cluster_access(docs, deployment):
    """Read access to what references point at, the token mounted,
    DELETE of connections reviewed."""
    role = one(docs, "ClusterRole", READER)
    check_role(role, "ClusterRole")
    check_least_privilege(docs, "cluster access")
    binding = one(docs, "ClusterRoleBinding", READER)
    account = one(docs, "ServiceAccount")
    check(binds_account(binding, role, account), "ClusterRoleBinding does not bind the role to the server's ServiceAccount")
    reports = one(docs, "ClusterRole", REPORTER)
    check_reports_role(reports, "the reports ClusterRole")
    check(binds_account(one(docs, "ClusterRoleBinding", REPORTER), reports, account),
          "the reports ClusterRoleBinding does not bind its role to the server's ServiceAccount")
    check_audit_access(docs, deployment)
    pod = deployment["spec"]["template"]["spec"]
    check(pod["serviceAccountName"] == account["metadata"]["name"] and pod.get("automountServiceAccountToken") is True,
          "the pod does not mount its ServiceAccount token")
    rules = one(docs, "ValidatingWebhookConfiguration")["webhooks"][0]["rules"]
    check(any(r["operations"] == ["DELETE"] and r["resources"] == ["atlasstreamconnections"] for r in rules),
          "the validating webhook does not review DELETE of atlasstreamconnections")


def check_no_cluster_lookups(docs):
    deployment = one(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    check(not [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")],
          "no-cluster-lookups keeps RBAC")
    check("--cluster-lookups=false" in pod["containers"][0]["args"] and pod.get("automountServiceAccountToken") is False,
          "no-cluster-lookups does not turn lookups and the token off")
    rules = one(docs, "ValidatingWebhookConfiguration")["webhooks"][0]["rules"]
    check(all("DELETE" not in r["operations"] for r in rules), "no-cluster-lookups still reviews DELETE")


def check_namespaced_rbac(docs):
    """components/namespaced-rbac: no cluster-wide grant; a Role and RoleBinding in each
    namespace of --watch-namespaces, and in no other."""
    before = len(problems)
    check(not [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")],
          "namespaced-rbac keeps a ClusterRole or ClusterRoleBinding")
    check_least_privilege(docs, "namespaced-rbac")
    args = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    watched = set((flag(args, "watch-namespaces") or "").split(",")) - {""}
    check(watched, "namespaced-rbac sets no --watch-namespaces")
    account = one(docs, "ServiceAccount")
    deployment = one(docs, "Deployment")
    check_audit_access(docs, deployment)
    for name, check_grant in ((READER, check_role), (REPORTER, check_reports_role)):
        roles = {d["metadata"].get("namespace"): d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == name}
        bindings = {d["metadata"].get("namespace"): d for d in docs
                    if d["kind"] == "RoleBinding" and d["metadata"]["name"] == name}
        check(set(roles) == watched and set(bindings) == watched,
              f"{name}: Roles in {sorted(map(str, roles))} and RoleBindings in {sorted(map(str, bindings))}, "
              f"watching {sorted(watched)}")
        for namespace, role in roles.items():
            check_grant(role, f"Role {namespace}/{name}")
            binding = bindings.get(namespace)
            check(binding is not None and binds_account(binding, role, account),
                  f"the RoleBinding {namespace}/{name} does not bind its Role to the server's ServiceAccount")
    if len(problems) == before:
        print(f"ok  namespaced-rbac: Roles in {', '.join(sorted(watched))}")


def check_no_audit_reports(docs):
    """components/no-audit-reports: reports off, no grant to write them, no Lease; reads kept."""
    before = len(problems)
    args = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    check("--audit-reports=false" in args, "no-audit-reports does not turn reports off")
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    check(not names & {("ClusterRole", REPORTER), ("ClusterRoleBinding", REPORTER), ("Role", ELECTION), ("RoleBinding", ELECTION)},
          "no-audit-reports keeps a report or Lease grant")
    check(("ClusterRole", READER) in names, "no-audit-reports removed the cache's read access")
    check_least_privilege(docs, "no-audit-reports")
    if len(problems) == before:
        print("ok  no-audit-reports: reports off, their grants gone")


def check_policyreport_crd(docs):
    crd = one(docs, "CustomResourceDefinition", "policyreports.wgpolicyk8s.io")
    spec = crd.get("spec", {})
    served = [v["name"] for v in spec.get("versions", []) if v.get("served")]
    check(spec.get("group") == "wgpolicyk8s.io" and spec.get("scope") == "Namespaced" and "v1alpha2" in served
          and spec.get("names", {}).get("kind") == "PolicyReport",
          "policyreport-crd does not serve wgpolicyk8s.io/v1alpha2 PolicyReport, namespaced")
    results = (next((v for v in spec.get("versions", []) if v["name"] == "v1alpha2"), {})
               .get("schema", {}).get("openAPIV3Schema", {}).get("properties", {}).get("results", {}))
    item = results.get("items", {}).get("properties", {})
    check({"policy", "rule", "result", "message", "resources", "timestamp", "properties"} <= set(item),
          f"the PolicyReport schema lacks result fields the server writes: {sorted(item)}")


def check_cert_manager(docs, deployment):
    certificates = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Certificate"}
    issuers = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Issuer"}
    secret = next(v["secret"]["secretName"] for v in deployment["spec"]["template"]["spec"]["volumes"] if "secret" in v)
    serving = [c for c in certificates.values() if c["spec"]["secretName"] == secret]
    if not check(len(serving) == 1, "no Certificate writes the Secret the Deployment mounts"):
        return
    serving = serving[0]
    check("atlas-stream-webhook.atlas-stream-webhook.svc" in serving["spec"]["dnsNames"], "serving dnsNames")
    check(serving["spec"]["privateKey"]["algorithm"] == "ECDSA", "serving key is not ECDSA")
    check(serving["spec"]["issuerRef"]["name"] in issuers, "serving issuer missing")
    for c in certificates.values():
        check(c["spec"]["issuerRef"]["name"] in issuers, f"Certificate {c['metadata']['name']} names a missing issuer")
    expected = f"{serving['metadata']['namespace']}/{serving['metadata']['name']}"
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        annotation = one(docs, kind)["metadata"].get("annotations", {}).get("cert-manager.io/inject-ca-from")
        check(annotation == expected, f"{kind} inject-ca-from {annotation} != {expected}")
    print("ok  cert-manager overlay")


# The fields this repository's monitoring objects may use, as the prometheus-operator's CRDs
# (monitoring.coreos.com/v1) name them: a misspelt field would be dropped silently by the
# API server (CRDs prune unknown fields), so it is refused here.
SERVICE_MONITOR_SPEC = {"jobLabel", "selector", "namespaceSelector", "endpoints", "targetLabels", "podTargetLabels",
                        "sampleLimit", "attachMetadata"}
SERVICE_MONITOR_ENDPOINT = {"port", "targetPort", "scheme", "path", "interval", "scrapeTimeout", "tlsConfig", "honorLabels",
                            "relabelings", "metricRelabelings", "params", "followRedirects", "enableHttp2"}
SERVICE_MONITOR_TLS = {"ca", "cert", "keySecret", "serverName", "insecureSkipVerify", "minVersion", "maxVersion"}
RULE_GROUP = {"name", "rules", "interval", "limit", "labels", "partial_response_strategy", "query_offset"}
RULE = {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}
DURATION = re.compile(r"(\d+(ms|s|m|h|d|w|y))+")
# `kubectl apply` keeps the whole object in an annotation, and annotations are limited to 256 KiB.
DASHBOARD_LIMIT = 200 * 1024


def unknown(fields, allowed, where):
    extra = set(fields) - allowed
    check(not extra, f"{where}: fields the prometheus-operator does not know: {sorted(extra)}")


def check_monitoring(docs, deployment, service):
    """deploy/monitoring in an overlay: the ServiceMonitor selects the webhook's Service and
    scrapes its metrics port over HTTPS, verified with the CA of the Secret the pods serve,
    under a name the serving certificate carries; its job is the one every alert selects;
    the dashboard ConfigMap is what Grafana's sidecar loads."""
    before = len(problems)
    namespace = service["metadata"]["namespace"]
    monitor = one(docs, "ServiceMonitor")
    spec = monitor.get("spec", {})
    check(monitor.get("apiVersion") == "monitoring.coreos.com/v1", f"ServiceMonitor apiVersion {monitor.get('apiVersion')}")
    check(monitor["metadata"].get("namespace") == namespace, "the ServiceMonitor is not in the Service's namespace")
    unknown(spec, SERVICE_MONITOR_SPEC, "ServiceMonitor spec")
    labels = service["metadata"].get("labels", {})
    check(spec.get("selector", {}).get("matchLabels", {}).items() <= labels.items() and spec["selector"]["matchLabels"],
          f"the ServiceMonitor's selector {spec.get('selector')} does not select the Service {labels}")
    selected = spec.get("namespaceSelector", {})
    check(not selected or selected.get("matchNames") == [namespace], f"namespaceSelector {selected}")
    job = labels.get(spec.get("jobLabel"))
    check(job == "atlas-stream-webhook", f"jobLabel {spec.get('jobLabel')} gives job {job}, not the atlas-stream-webhook every alert selects")
    endpoints = spec.get("endpoints", [])
    check(len(endpoints) == 1, f"ServiceMonitor endpoints {endpoints}")
    secret = next(v["secret"]["secretName"] for v in deployment["spec"]["template"]["spec"]["volumes"] if "secret" in v)
    serving = [d for d in docs if d["kind"] == "Certificate" and d["spec"]["secretName"] == secret]
    for endpoint in endpoints:
        unknown(endpoint, SERVICE_MONITOR_ENDPOINT, "ServiceMonitor endpoint")
        check(endpoint.get("port") == "metrics" and endpoint.get("scheme") == "https" and endpoint.get("path") == "/metrics",
              f"the ServiceMonitor does not scrape https /metrics on the port named metrics: {endpoint}")
        check(DURATION.fullmatch(endpoint.get("interval", "")), f"scrape interval {endpoint.get('interval')}")
        tls = endpoint.get("tlsConfig", {})
        unknown(tls, SERVICE_MONITOR_TLS, "ServiceMonitor tlsConfig")
        check(tls.get("ca", {}).get("secret") == {"name": secret, "key": "ca.crt"},
              f"the scrape does not trust ca.crt of the Secret the pods serve ({secret}): {tls.get('ca')}")
        check(tls.get("insecureSkipVerify") in (None, False), "the scrape skips certificate verification")
        host = f"{service['metadata']['name']}.{namespace}.svc"
        check(tls.get("serverName") == host, f"serverName {tls.get('serverName')} is not {host}")
        if serving:
            check(tls.get("serverName") in serving[0]["spec"]["dnsNames"], "the serving certificate does not carry the scrape's serverName")
        ports = {p.get("name"): p for p in service["spec"]["ports"]}
        if check("metrics" in ports, "the Service has no port named metrics for the ServiceMonitor to scrape"):
            container = deployment["spec"]["template"]["spec"]["containers"][0]
            target = ports["metrics"]["targetPort"]
            numbers = {p["name"]: p["containerPort"] for p in container["ports"]}
            listen = flag(container["args"], "metrics-listen")
            check(target in numbers or target in numbers.values(), f"Service port metrics targets {target}, no container port")
            check(listen and int(listen.rsplit(":", 1)[1]) == numbers.get(target, target),
                  f"--metrics-listen {listen} is not the Service's metrics port {target} ({numbers.get(target, target)})")

    rule = one(docs, "PrometheusRule")
    check(rule.get("apiVersion") == "monitoring.coreos.com/v1", f"PrometheusRule apiVersion {rule.get('apiVersion')}")
    check(rule["metadata"].get("namespace") == namespace, "the PrometheusRule is not in the Service's namespace")
    groups = rule.get("spec", {}).get("groups", [])
    check(groups and set(rule["spec"]) == {"groups"}, f"PrometheusRule spec {sorted(rule.get('spec', {}))}")
    alerts = 0
    for group in groups:
        unknown(group, RULE_GROUP, f"rule group {group.get('name')}")
        check(isinstance(group.get("name"), str) and group.get("rules"), f"rule group {group.get('name')} has no name or rules")
        for r in group.get("rules", []):
            name = r.get("alert") or r.get("record")
            unknown(r, RULE, f"rule {name}")
            check(isinstance(r.get("expr"), str) and ("alert" in r) != ("record" in r), f"rule {name}: expr, and alert or record")
            check("for" not in r or DURATION.fullmatch(r["for"]), f"rule {name}: for {r.get('for')}")
            check(all(isinstance(v, str) for v in {**r.get("labels", {}), **r.get("annotations", {})}.values()),
                  f"rule {name}: a label or annotation that is not a string")
            if "alert" in r:
                alerts += 1
                check(f'job="{job}"' in r["expr"], f"alert {name} does not select job=\"{job}\"")

    dashboards = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
    if check(len(dashboards) == 1, f"{len(dashboards)} ConfigMaps labelled grafana_dashboard=1"):
        dashboard = dashboards[0]
        check(dashboard["metadata"]["name"] == "atlas-stream-webhook-dashboard" and dashboard["metadata"].get("namespace") == namespace,
              f"dashboard ConfigMap {dashboard['metadata']} (a hash suffix would leave old dashboards behind)")
        files = dashboard.get("data", {})
        check(len(files) == 1 and all(k.endswith(".json") for k in files), f"dashboard ConfigMap keys {sorted(files)}")
        for key, text in files.items():
            check(len(text.encode()) < DASHBOARD_LIMIT, f"{key} is {len(text.encode())} bytes: too big for kubectl apply")
            try:
                check(json.loads(text).get("panels"), f"{key} has no panels")
            except ValueError as error:
                check(False, f"{key} is not JSON: {error}")
    if len(problems) == before:
        print(f"ok  monitoring component: ServiceMonitor on {job}, {alerts} alerts, the dashboard ConfigMap")


def check_admission_policy(scratch):
    """components/admission-policy: alone, the policies and bindings only; beside the webhook,
    the webhooks' failurePolicy turned to Ignore (the policies hold the per-object rules)."""
    alone = os.path.join(scratch, "deploy", "overlays", "policy-alone")
    os.makedirs(alone)
    with open(os.path.join(alone, "kustomization.yaml"), "w") as f:
        f.write("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
                "components: [../../components/admission-policy]\n")
    docs = render(alone)
    kinds = sorted({d["kind"] for d in docs})
    check(kinds == ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"], f"admission-policy alone renders {kinds}")
    policies = {d["metadata"]["name"] for d in docs if d["kind"] == "ValidatingAdmissionPolicy"}
    bindings = [d for d in docs if d["kind"] == "ValidatingAdmissionPolicyBinding"]
    check({b["spec"]["policyName"] for b in bindings} == policies, "a policy without its binding")
    check(all(b["spec"]["validationActions"] == (["Warn"] if b["spec"]["policyName"].endswith("-warn") else ["Deny"])
              for b in bindings), "binding actions")
    check(all("namespace" not in d["metadata"] for d in docs), "cluster-scoped policy objects given a namespace")
    beside = os.path.join(scratch, "deploy", "overlays", "policy-beside")
    os.makedirs(beside)
    with open(os.path.join(beside, "kustomization.yaml"), "w") as f:
        f.write("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [../cert-manager]\n"
                "components: [../../components/admission-policy]\n")
    docs = render(beside)
    check_common(docs, failure_policy="Ignore")
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        check(all(h["failurePolicy"] == "Ignore" for h in one(docs, kind)["webhooks"]), f"{kind} failurePolicy is not Ignore beside the policy")
    print(f"ok  admission-policy component: {len(policies)} policies alone, beside the webhook with failurePolicy Ignore")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run_with_container_args(binary, docs, deployment, service, scratch):
    """Starts the server with the Deployment's own arguments and mounts."""
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {}
    for mount in container["volumeMounts"]:
        source = volumes[mount["name"]]
        directory = os.path.join(scratch, mount["name"])
        os.makedirs(directory, exist_ok=True)
        if "secret" in source:
            data = one(docs, "Secret", source["secret"]["secretName"])["data"]
            for key, value in data.items():
                with open(os.path.join(directory, key), "wb") as f:
                    f.write(base64.b64decode(value))
        else:
            data = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == source["configMap"]["name"]]
            check(len(data) == 1, f"ConfigMap {source['configMap']['name']} mounted but not rendered")
            for key, value in (data[0]["data"] if data else {}).items():
                with open(os.path.join(directory, key), "w") as f:
                    f.write(value)
        mounts[mount["mountPath"]] = directory
    ports = {name: free_port() for name in ("listen", "health-listen", "metrics-listen")}
    args = []
    for arg in container["args"]:
        for mount_path, directory in mounts.items():
            arg = arg.replace(mount_path, directory)
        name = arg.split("=", 1)[0][2:]
        if name in ports:
            arg = f"--{name}=127.0.0.1:{ports[name]}"
        args.append(arg)
    server = subprocess.Popen([binary] + args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return server, ports, mounts


def check_self_signed(binary, docs, deployment, service, scratch, generated):
    verify = subprocess.run(["openssl", "verify", "-CAfile", f"{generated}/ca.crt", f"{generated}/tls.crt"],
                            capture_output=True, text=True)
    check(verify.returncode == 0, f"openssl verify: {verify.stdout}{verify.stderr}")
    sans = subprocess.run(["openssl", "x509", "-in", f"{generated}/tls.crt", "-noout", "-ext", "subjectAltName"],
                          capture_output=True, text=True).stdout
    name, namespace = service["metadata"]["name"], service["metadata"]["namespace"]
    for san in (name, f"{name}.{namespace}", f"{name}.{namespace}.svc", f"{name}.{namespace}.svc.cluster.local"):
        check(f"DNS:{san}," in sans.strip() + ",", f"SAN {san} missing: {sans}")
    key_type = subprocess.run(["openssl", "x509", "-in", f"{generated}/tls.crt", "-noout", "-text"],
                              capture_output=True, text=True).stdout
    check("prime256v1" in key_type, "serving key is not P-256")
    bundles = {one(docs, k)["webhooks"][0]["clientConfig"].get("caBundle")
               for k in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")}
    check(len(bundles) == 1 and None not in bundles, f"caBundles differ or are missing: {bundles}")
    ca_file = os.path.join(scratch, "caBundle.crt")
    with open(ca_file, "wb") as f:
        f.write(base64.b64decode(bundles.pop()))

    server, ports, _ = run_with_container_args(binary, docs, deployment, service, scratch)
    try:
        host = f"{name}.{namespace}.svc"
        port, metrics = ports["listen"], ports["metrics-listen"]
        base = ["curl", "-sS", "--resolve", f"{host}:{port}:127.0.0.1", "--resolve", f"{host}:{metrics}:127.0.0.1",
                "--cacert", ca_file]
        status = "000"
        deadline = time.time() + 10
        while status != "200" and time.time() < deadline:
            status = subprocess.run(base + ["-o", "/dev/null", "-w", "%{http_code}", f"https://{host}:{port}/healthz"],
                                    capture_output=True, text=True).stdout
            time.sleep(0.1)
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        for probe in ("livenessProbe", "readinessProbe"):
            path = container[probe]["httpGet"]["path"]
            got = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                                  f"http://127.0.0.1:{ports['health-listen']}{path}"], capture_output=True, text=True).stdout
            check(got == "200", f"{probe} {path} answered {got} on the health port")
        scrape = subprocess.run(base + ["-w", "%{http_code}", f"https://{host}:{metrics}/metrics"], capture_output=True, text=True)
        check(scrape.stdout.endswith("200") and "atlas_stream_webhook_open_connections" in scrape.stdout,
              f"metrics scrape: {scrape.stdout[-200:]}{scrape.stderr}")
        for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
            path = one(docs, kind)["webhooks"][0]["clientConfig"]["service"]["path"]
            out = subprocess.run(base + ["-H", "Content-Type: application/json", "--data-binary", f"@{REVIEW}",
                                         f"https://{host}:{port}{path}"], capture_output=True, text=True)
            try:
                answer = json.loads(out.stdout)
                check(answer["kind"] == "AdmissionReview" and "uid" in answer["response"], f"{path}: {out.stdout}")
            except (ValueError, KeyError):
                check(False, f"{path} did not answer an AdmissionReview: {out.stdout}{out.stderr}")
        print(f"ok  self-signed overlay served as https://{host}:{port}, probes on the health port, metrics on https://{host}:{metrics}")
    finally:
        server.kill()
        server.wait()
        if problems:
            print(server.stderr.read())


# deploy/ uses kustomize v5 syntax (labels, patches); kubectl bundles kustomize v5 from 1.27 on.
MINIMUM_KUSTOMIZE = (5, 0)


def kustomize_version():
    """The kustomize version kubectl bundles, as (major, minor), or None when kubectl
    cannot say (a kubectl too old to report it, or none at all)."""
    try:
        out = subprocess.run(["kubectl", "version", "--client", "-o", "json"], capture_output=True, text=True)
    except FileNotFoundError:
        return None
    try:
        text = json.loads(out.stdout).get("kustomizeVersion", "")
    except ValueError:
        return None
    match = re.match(r"v?(\d+)\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else None


def main():
    binary = sys.argv[1]
    version = kustomize_version()
    if version is None or version < MINIMUM_KUSTOMIZE:
        found = "no kustomize version" if version is None else f"kustomize v{version[0]}.{version[1]}"
        print(f"kubectl reports {found}: deploy/ needs kubectl 1.27 or later (kustomize v5); "
              "Debian 12's kubernetes-client (kubectl 1.20) is too old")
        print("deploy checks: 1 problems")
        return 1
    scratch = tempfile.mkdtemp(prefix="asw-deploy-")
    try:
        base_docs = render(os.path.join(ROOT, "deploy", "base"))
        check_common(base_docs)
        check_least_privilege(base_docs, "base")
        cm_docs = render(os.path.join(ROOT, "deploy", "overlays", "cert-manager"))
        deployment, _ = check_common(cm_docs)
        check_cert_manager(cm_docs, deployment)
        check_cluster_access(cm_docs, deployment)

        shutil.copytree(os.path.join(ROOT, "deploy"), os.path.join(scratch, "deploy"))
        overlay = os.path.join(scratch, "deploy", "overlays", "self-signed")
        generated = os.path.join(scratch, "generated")
        script = os.path.join(ROOT, "certs", "generate.sh")
        first = subprocess.run(["sh", script, "--out", generated, "--overlay", overlay], capture_output=True, text=True)
        check(first.returncode == 0, f"certs/generate.sh: {first.stderr}")
        ca_before = open(f"{generated}/ca.crt").read()
        leaf_before = open(f"{generated}/tls.crt").read()
        again = subprocess.run(["sh", script, "--out", generated, "--overlay", overlay], capture_output=True, text=True)
        check(again.returncode == 0 and "kept CA" in again.stdout, f"renewal: {again.stdout}{again.stderr}")
        check(open(f"{generated}/ca.crt").read() == ca_before, "renewal replaced the CA")
        check(open(f"{generated}/tls.crt").read() != leaf_before, "renewal did not replace the serving certificate")
        without = os.path.join(scratch, "deploy", "overlays", "without-lookups")
        os.makedirs(without)
        with open(os.path.join(without, "kustomization.yaml"), "w") as f:
            f.write("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [../cert-manager]\n"
                    "components: [../../components/no-cluster-lookups]\n")
        check_no_cluster_lookups(render(without))
        namespaced = os.path.join(scratch, "deploy", "overlays", "namespaced")
        os.makedirs(namespaced)
        with open(os.path.join(namespaced, "kustomization.yaml"), "w") as f:
            f.write("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [../cert-manager]\n"
                    "components: [../../components/namespaced-rbac]\n")
        ns_docs = render(namespaced)
        check_common(ns_docs)
        check_namespaced_rbac(ns_docs)
        for component, checker in (("no-audit-reports", check_no_audit_reports), ("policyreport-crd", check_policyreport_crd)):
            overlay_dir = os.path.join(scratch, "deploy", "overlays", "with-" + component)
            os.makedirs(overlay_dir)
            with open(os.path.join(overlay_dir, "kustomization.yaml"), "w") as f:
                f.write("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [../cert-manager]\n"
                        f"components: [../../components/{component}]\n")
            component_docs = render(overlay_dir)
            check_common(component_docs)
            checker(component_docs)
        monitored = os.path.join(scratch, "deploy", "overlays", "monitored")
        os.makedirs(monitored)
        with open(os.path.join(monitored, "kustomization.yaml"), "w") as f:
            f.write("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [../cert-manager]\n"
                    "components: [../../monitoring]\n")
        mon_docs = render(monitored)
        deployment, service = check_common(mon_docs)
        check_cluster_access(mon_docs, deployment)
        check_monitoring(mon_docs, deployment, service)
        check_admission_policy(scratch)
        ss_docs = render(overlay)
        deployment, service = check_common(ss_docs)
        # The ServiceMonitor trusts ca.crt of the serving Secret, with either overlay.
        check("ca.crt" in one(ss_docs, "Secret", "atlas-stream-webhook-tls").get("data", {}),
              "the self-signed serving Secret has no ca.crt for the ServiceMonitor")
        check_self_signed(binary, ss_docs, deployment, service, scratch, generated)

        containerfile = open(os.path.join(ROOT, "deploy", "Containerfile")).read()
        check(containerfile.count("FROM ") == 2 and "--static-swift-stdlib" in containerfile
              and "USER 65532" in containerfile and "libssl3" in containerfile and "libyaml-0-2" in containerfile
              and "ENTRYPOINT" in containerfile, "Containerfile is not the two-stage non-root build")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for problem in problems:
        print("FAIL " + problem)
    print(f"deploy checks: {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
