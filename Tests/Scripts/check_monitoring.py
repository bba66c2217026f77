#!/usr/bin/env python3
"""Checks deploy/monitoring (the prometheus-operator component) with Prometheus's own tools.

check_monitoring.py static
  1. The PrometheusRule's spec, extracted to a plain rules file, passes `promtool check rules`.
  2. Tests/Fixtures/monitoring/alerts-test.yaml passes `promtool test rules` against it and
     has, for every alert, a case where it fires and one where it does not.
  3. Every alert has a severity, a summary, a description and a runbook_url whose anchor is
     a heading of docs/operations.md.
  4. Every metric the alerts and the dashboard select is selected with
     job="atlas-stream-webhook"; the dashboard's queries parse (promtool, as recording
     rules), its panels do not overlap, and the panels the on-call engineer needs exist.

check_monitoring.py live --port PORT --ca FILE --certificate FILE --server-pid PID [--expect-firing ALERT]...
  A real `prometheus` scrapes the running server (https://localhost:PORT/metrics, trusting
  FILE) every second with the alert rules loaded. Checks: the target is up; every metric
  name the alert expressions and the dashboard queries use has a series; every rule
  evaluates without error; each alert expression is empty on the healthy server (but for
  --expect-firing ones); every dashboard query returns data. Then it breaks the server
  three ways and watches the matching alert expression turn non-empty: a certificate file
  that does not load (CertificateReloadFailing), a malformed review (AnswerErrors), the
  process stopped (Down).

Metric names are read from the expressions themselves, so a renamed metric fails here.
Needs promtool and prometheus (Debian: apt-get install prometheus).
"""
import argparse
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MONITORING = os.path.join(ROOT, "deploy", "monitoring")
RULES = os.path.join(MONITORING, "prometheusrule.yaml")
DASHBOARD = os.path.join(MONITORING, "dashboard.json")
UNIT_TESTS = os.path.join(ROOT, "Tests", "Fixtures", "monitoring", "alerts-test.yaml")
OPERATIONS = os.path.join(ROOT, "docs", "operations.md")
JOB = "atlas-stream-webhook"
NAMESPACE = "atlas-stream-webhook"
problems = []


def check(condition, message):
    if not condition:
        problems.append(message)
    return condition


_reported = [0]


def ok(message):
    """An ok line for the step since the previous one, if that step added no problem."""
    if len(problems) == _reported[0]:
        print("ok  " + message)
    _reported[0] = len(problems)


# MARK: - Reading the expressions

KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
            "inf", "nan"}
STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
IDENTIFIER = re.compile(r"(?<![\w:.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(?!\s*\()")


def metric_names(expr):
    """The metric names a PromQL expression selects: what is left once strings, label
    matchers, ranges, grouping label lists and function names are taken out. Grafana's
    label_values(METRIC, LABEL) reads as its METRIC."""
    text = STRING.sub('""', expr)
    text = re.sub(r"\{[^{}]*\}", " ", text)
    text = re.sub(r"\[[^\[\]]*\]", " ", text)
    text = LABEL_LIST.sub(" ", text)
    text = re.sub(r"\blabel_values\s*\(([^,()]*)(?:,[^()]*)?\)", r" \1 ", text)
    return {name for name in IDENTIFIER.findall(text) if name.lower() not in KEYWORDS}


def selectors(expr, name):
    """The label matcher text of each selector of `name` in `expr` ('' for none)."""
    return [m.group(1) or "" for m in re.finditer(r"(?<![\w:])" + re.escape(name) + r"(?![\w:])\s*(\{[^{}]*\})?(?!\s*\()", expr)]


def alert_rules():
    with open(RULES) as f:
        document = yaml.safe_load(f)
    return document, [r for g in document["spec"]["groups"] for r in g["rules"] if "alert" in r]


def dashboard_queries(dashboard):
    """(where, expr) for every panel target and templating query."""
    out = []
    def walk(panels):
        for panel in panels:
            for target in panel.get("targets", []):
                out.append((f"panel {panel['id']} {panel['title']!r} {target.get('refId')}", target["expr"]))
            walk(panel.get("panels", []))
    walk(dashboard["panels"])
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        if variable["type"] == "query":
            out.append((f"variable {variable['name']}", query["query"] if isinstance(query, dict) else query))
    return out


def grafana_to_promql(expr, rate_interval="5m", namespace=".*"):
    """A dashboard query with Grafana's variables filled in, as Grafana would send it."""
    expr = expr.replace("$__rate_interval", rate_interval).replace("$__interval", "1m")
    return expr.replace("$namespace", namespace)


def require_tools():
    missing = [tool for tool in ("promtool", "prometheus") if shutil.which(tool) is None]
    if missing:
        print(f"{' and '.join(missing)} not found: the monitoring tests need Prometheus's tools "
              "(Debian 12: apt-get install prometheus, Prometheus 2.42 with promtool)")
        print("monitoring checks: 1 problems")
        sys.exit(1)


def promtool(*args, cwd=None):
    return subprocess.run(["promtool", *args], capture_output=True, text=True, cwd=cwd)


def write_rules_file(directory):
    """The PrometheusRule's spec as the plain rules file Prometheus reads."""
    document, _ = alert_rules()
    path = os.path.join(directory, "rules.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(document["spec"], f, sort_keys=False)
    return path


# MARK: - static

def github_anchor(heading):
    """The anchor GitHub gives a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def check_static(scratch):
    document, alerts = alert_rules()
    check(document["apiVersion"] == "monitoring.coreos.com/v1" and document["kind"] == "PrometheusRule",
          "prometheusrule.yaml is not a monitoring.coreos.com/v1 PrometheusRule")
    rules_file = write_rules_file(scratch)
    checked = promtool("check", "rules", rules_file)
    check(checked.returncode == 0, f"promtool check rules: {checked.stdout}{checked.stderr}")
    ok(f"promtool check rules: {len(alerts)} alerts")

    shutil.copy(UNIT_TESTS, os.path.join(scratch, "alerts-test.yaml"))
    tested = promtool("test", "rules", "alerts-test.yaml", cwd=scratch)
    check(tested.returncode == 0 and "SUCCESS" in tested.stdout, f"promtool test rules: {tested.stdout}{tested.stderr}")
    with open(UNIT_TESTS) as f:
        unit = yaml.safe_load(f)
    check(unit.get("rule_files") == ["rules.yaml"], "alerts-test.yaml must read rule_files: [rules.yaml] (the extracted spec)")
    firing, quiet = set(), set()
    for case in unit["tests"]:
        for test in case.get("alert_rule_test", []):
            (firing if test.get("exp_alerts") else quiet).add(test["alertname"])
    names = [a["alert"] for a in alerts]
    check(len(names) == len(set(names)), f"alert names repeat: {names}")
    for name in names:
        check(name in firing, f"{name}: no unit test where it fires")
        check(name in quiet, f"{name}: no unit test where it does not fire")
    check((firing | quiet) <= set(names), f"unit tests for alerts that do not exist: {sorted((firing | quiet) - set(names))}")
    ok(f"promtool test rules: {len(firing)} alerts fire, {len(quiet)} stay quiet in their cases")

    with open(OPERATIONS) as f:
        anchors = {github_anchor(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*$", f.read(), re.MULTILINE)}
    check("alerts" in anchors, "docs/operations.md has no Alerts section")
    for rule in alerts:
        name = rule["alert"]
        annotations = rule.get("annotations", {})
        check(rule.get("labels", {}).get("severity") in ("critical", "warning"), f"{name}: severity is not critical or warning")
        for key in ("summary", "description", "runbook_url"):
            check(annotations.get(key), f"{name}: no {key}")
        url = annotations.get("runbook_url", "")
        match = re.fullmatch(r"https://\S+/docs/operations\.md#([\w-]+)", url)
        check(match and match.group(1) == github_anchor(name), f"{name}: runbook_url {url} is not docs/operations.md#{github_anchor(name)}")
        check(match and match.group(1) in anchors, f"{name}: docs/operations.md has no section #{match.group(1) if match else '?'}")
        check_job_selectors(f"alert {name}", rule["expr"])
    ok(f"alerts: severities, annotations, runbooks in docs/operations.md, every metric selected with job=\"{JOB}\"")

    with open(DASHBOARD) as f:
        dashboard = json.load(f)
    check_dashboard(dashboard, scratch)


def check_job_selectors(where, expr):
    """Every metric is selected with job="atlas-stream-webhook": controller-runtime's names
    are shared with every other controller-runtime webhook in the cluster."""
    names = metric_names(expr)
    check(names, f"{where}: no metric in {expr!r}")
    for name in names:
        for matchers in selectors(expr, name):
            check(f'job="{JOB}"' in matchers, f"{where}: {name}{matchers} does not select job=\"{JOB}\"")


def check_dashboard(dashboard, scratch):
    check(dashboard.get("uid") and dashboard.get("title") and dashboard.get("schemaVersion"), "dashboard uid, title or schemaVersion")
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    check(variables.get("datasource", {}).get("type") == "datasource"
          and variables["datasource"].get("query") == "prometheus", "dashboard has no Prometheus datasource variable")
    panels, ids = [], []
    def walk(items):
        for panel in items:
            panels.append(panel)
            ids.append(panel["id"])
            walk(panel.get("panels", []))
    walk(dashboard["panels"])
    check(len(ids) == len(set(ids)), f"dashboard panel ids repeat: {ids}")
    boxes = []
    for panel in panels:
        g = panel["gridPos"]
        check(g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24 and g["h"] > 0, f"panel {panel['id']} gridPos {g}")
        for other, o in boxes:
            if g["x"] < o["x"] + o["w"] and o["x"] < g["x"] + g["w"] and g["y"] < o["y"] + o["h"] and o["y"] < g["y"] + g["h"]:
                check(False, f"panels {other} and {panel['id']} overlap")
        boxes.append((panel["id"], g))
        if panel["type"] != "row":
            check(panel.get("datasource", {}).get("uid") == "${datasource}", f"panel {panel['id']} does not use $datasource")
            check(panel.get("targets"), f"panel {panel['id']} has no query")
    queries = dashboard_queries(dashboard)
    for where, expr in queries:
        check_job_selectors(f"dashboard {where}", expr)
    # What an on-call engineer looks for, each found by what its query reads.
    needed = {
        "requests by webhook": r"by \([^)]*webhook[^)]*\) \(rate\(controller_runtime_webhook_requests_total\{",
        "latency by webhook": r"histogram_quantile\(0\.99, sum by \([^)]*webhook[^)]*\) \(rate\(controller_runtime_webhook_latency_seconds_bucket",
        "denials by rule": r'by \(rule\) .*atlas_stream_webhook_rule_findings_total\{[^}]*action="deny"',
        "would-be denials by rule": r'by \(rule\) .*atlas_stream_webhook_rule_findings_total\{[^}]*action="would_deny"',
        "cache objects": r"atlas_stream_webhook_cache_objects\{",
        "watch restarts": r"by \(resource, reason\) .*atlas_stream_webhook_watch_restarts_total\{",
        "certificate expiry": r"atlas_stream_webhook_certificate_expiry_timestamp_seconds\{[^}]*\}\) - time\(\)",
    }
    for what, pattern in needed.items():
        check(any(re.search(pattern, expr) for _, expr in queries), f"dashboard has no panel for {what}")
    # The queries parse: promtool checks them as recording rules.
    recording = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": grafana_to_promql(expr)} for i, (_, expr) in enumerate(queries)
        if not expr.startswith("label_values(")]}]}
    path = os.path.join(scratch, "dashboard-queries.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(recording, f, sort_keys=False)
    parsed = promtool("check", "rules", path)
    check(parsed.returncode == 0, f"dashboard queries do not parse: {parsed.stdout}{parsed.stderr}")
    ok(f"dashboard: {len(panels)} panels, {len(queries)} queries parse and select job=\"{JOB}\"")


# MARK: - live

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def die_with_parent():
    """Prometheus is ended with this script even if the script is killed."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Prometheus:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"

    def get(self, path, **params):
        url = f"{self.base}{path}?{urllib.parse.urlencode(params)}" if params else f"{self.base}{path}"
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)

    def query(self, expr):
        """The result vector of an instant query; raises on a query error."""
        answer = self.get("/api/v1/query", query=expr)
        if answer["status"] != "success":
            raise ValueError(f"{expr}: {answer}")
        return answer["data"]["result"]


def eventually(seconds, condition):
    deadline = time.time() + seconds
    while True:
        try:
            value = condition()
        except (OSError, ValueError):
            value = None
        if value or time.time() > deadline:
            return value
        time.sleep(0.5)


def post(port, ca, path, body):
    """POSTs `body` to the server; the HTTP status."""
    context = ssl.create_default_context(cafile=ca)
    request = urllib.request.Request(f"https://localhost:{port}{path}", data=body,
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def check_live(arguments, scratch):
    _, alerts = alert_rules()
    with open(DASHBOARD) as f:
        dashboard = json.load(f)
    queries = dashboard_queries(dashboard)
    names = set()
    for rule in alerts:
        names |= metric_names(rule["expr"])
    for _, expr in queries:
        names |= metric_names(expr)

    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [write_rules_file(scratch)],
        "scrape_configs": [{
            "job_name": JOB, "scheme": "https", "metrics_path": "/metrics",
            "tls_config": {"ca_file": arguments.ca, "server_name": "localhost"},
            # The labels the prometheus-operator adds from the Service and the pod.
            "static_configs": [{"targets": [f"127.0.0.1:{arguments.port}"], "labels": {"namespace": NAMESPACE, "pod": "webhook-0"}}],
        }],
    }
    config_path = os.path.join(scratch, "prometheus.yml")
    with open(config_path, "w") as f:
        yaml.safe_dump(config, f)
    log_path = os.path.join(scratch, "prometheus.log")
    with open(log_path, "w") as log:
        process = subprocess.Popen(["prometheus", f"--config.file={config_path}", f"--storage.tsdb.path={scratch}/data",
                                    f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                                   stdout=log, stderr=log, preexec_fn=die_with_parent)
    prometheus = Prometheus(port)
    try:
        run_live(arguments, prometheus, alerts, queries, names)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if problems:
            with open(log_path) as f:
                print("prometheus log:\n" + f.read()[-4000:])


def run_live(arguments, prometheus, alerts, queries, names):
    ready = eventually(30, lambda: urllib.request.urlopen(prometheus.base + "/-/ready", timeout=2).status == 200)
    if not check(ready, "prometheus did not become ready"):
        return
    up = eventually(30, lambda: [s for s in prometheus.query(f'up{{job="{JOB}"}} == 1')])
    if not check(up, f"the target never came up: {prometheus.get('/api/v1/targets')}"):
        return
    ok(f"target https://localhost:{arguments.port}/metrics up")

    def missing():
        absent = sorted(n for n in names if not prometheus.query(f'count({{__name__="{n}"}})'))
        return absent
    absent = missing()
    if absent:
        time.sleep(3)
        absent = missing()
    check(not absent, f"no series for metrics the alerts or the dashboard use: {absent}")
    ok(f"series for all {len(names)} metric names the alerts and the dashboard use")

    def evaluated():
        groups = prometheus.get("/api/v1/rules")["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        return rules if rules and all(r["health"] != "unknown" for r in rules) else None
    rules = eventually(20, evaluated) or []
    loaded = {r["name"] for r in rules}
    check(loaded == {a["alert"] for a in alerts}, f"prometheus loaded {sorted(loaded)}")
    for rule in rules:
        check(rule["health"] == "ok", f"{rule['name']} does not evaluate: {rule['health']} {rule.get('lastError')}")
    ok(f"{len(rules)} alert rules loaded and evaluated by prometheus")

    expressions = {a["alert"]: a["expr"] for a in alerts}
    expected = set(arguments.expect_firing)
    check(expected <= set(expressions), f"--expect-firing names unknown alerts: {sorted(expected - set(expressions))}")
    # A few seconds of data, so rates over the scrapes exist.
    time.sleep(3)
    for name, expr in expressions.items():
        result = prometheus.query(expr)
        if name in expected:
            check(result, f"{name} does not fire on this server, as it should: {expr}")
        else:
            check(not result, f"{name} fires on a healthy server: {result}")
    ok(f"alert expressions on the healthy server: only {sorted(expected) or 'none'} firing")

    for where, expr in queries:
        if expr.startswith("label_values("):
            selector = label_values_selector(expr)
            check(prometheus.query(selector), f"dashboard {where}: nothing for {selector}")
            continue
        result = prometheus.query(grafana_to_promql(expr, rate_interval="1m", namespace=NAMESPACE))
        check(result, f"dashboard {where} shows nothing: {expr}")
    ok("every dashboard query returns data")

    # A certificate file that does not load: refused, counted, the old one serves on.
    with open(arguments.certificate + ".new", "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")
    os.replace(arguments.certificate + ".new", arguments.certificate)
    check(eventually(20, lambda: prometheus.query(expressions["AtlasStreamWebhookCertificateReloadFailing"])),
          "AtlasStreamWebhookCertificateReloadFailing does not fire after a certificate that does not load")
    ok("a certificate that does not load: AtlasStreamWebhookCertificateReloadFailing fires")

    # A review the server cannot use is answered 400: a failed answer, not a denial. The
    # code="400" series appears with its first count, which rate() cannot see (no earlier
    # sample): the alert is about failures that go on, so more follow once it is scraped.
    malformed = b'{"kind":"AdmissionReview"'
    status = post(arguments.port, arguments.ca, "/validate", malformed)
    check(status == 400, f"a malformed review was answered {status}")
    check(eventually(10, lambda: prometheus.query(f'controller_runtime_webhook_requests_total{{job="{JOB}", code="400"}}')),
          "no code=\"400\" series after a malformed review")
    for _ in range(3):
        post(arguments.port, arguments.ca, "/validate", malformed)
    firing = eventually(20, lambda: prometheus.query(expressions["AtlasStreamWebhookAnswerErrors"]))
    check(firing and firing[0]["metric"].get("webhook") == "/validate",
          f"AtlasStreamWebhookAnswerErrors does not fire for /validate after a 400: {firing}")
    ok("a failed answer: AtlasStreamWebhookAnswerErrors fires for /validate")

    os.kill(arguments.server_pid, signal.SIGTERM)
    check(eventually(20, lambda: prometheus.query(expressions["AtlasStreamWebhookDown"])),
          "AtlasStreamWebhookDown does not fire once the only replica is gone")
    ok("the server stopped: AtlasStreamWebhookDown fires")


def label_values_selector(expr):
    """label_values(SELECTOR, LABEL) -> SELECTOR."""
    match = re.match(r"label_values\((.*),\s*\w+\)\s*$", expr)
    return match.group(1) if match else expr


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    sub.add_parser("static")
    live = sub.add_parser("live")
    live.add_argument("--port", type=int, required=True)
    live.add_argument("--ca", required=True)
    live.add_argument("--certificate", required=True, help="the server's certificate file, replaced by one that does not load")
    live.add_argument("--server-pid", type=int, required=True, help="stopped with SIGTERM at the end")
    live.add_argument("--expect-firing", action="append", default=[])
    arguments = parser.parse_args()
    require_tools()
    scratch = tempfile.mkdtemp(prefix="asw-monitoring-")
    try:
        if arguments.mode == "static":
            check_static(scratch)
        else:
            check_live(arguments, scratch)
    except Exception as error:  # a query Prometheus refused, an answer of another shape: reported, not a traceback
        check(False, f"{type(error).__name__}: {error}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for problem in problems:
        print("FAIL " + problem)
    print(f"monitoring checks: {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
