#!/usr/bin/env python3
"""Independent check of /mutate's JSON patches and of the defaulted objects.

For every case in Tests/Fixtures/defaulting-cases.json and every review fixture:
  1. run `atlas-stream-webhook review --mutate` on it,
  2. apply the patch with Python's jsonpatch (an RFC 6902 implementation that, like
     evanphx/json-patch, refuses `add` under a missing parent),
  3. compare the result with the expected object (cases only),
  4. mutate the result again: no patch may come back (idempotence),
  5. for objects meant to be valid: check them against the CRD's openAPIV3Schema in
     deploy/crds and run `review --validate`, which must allow them.
Usage: check_defaulting.py PATH/TO/atlas-stream-webhook
"""
import base64
import copy
import glob
import json
import os
import subprocess
import sys

import jsonpatch
import jsonschema
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "Tests", "Fixtures")
CRDS = os.path.join(ROOT, "deploy", "crds")
PLURAL = {"AtlasStreamInstance": "atlasstreaminstances", "AtlasStreamConnection": "atlasstreamconnections"}


def load_schemas():
    schemas = {}
    for path in glob.glob(os.path.join(CRDS, "*.yaml")):
        with open(path) as f:
            crd = yaml.safe_load(f)
        kind = crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version["name"] == "v1":
                schemas[kind] = version["schema"]["openAPIV3Schema"]
    return schemas


def run_review(binary, endpoint, review):
    out = subprocess.run([binary, "review", "--" + endpoint], input=json.dumps(review).encode(),
                         capture_output=True, check=True)
    answer = json.loads(out.stdout)
    assert answer["response"]["uid"] == review["request"]["uid"], "uid not echoed"
    return answer["response"]


def make_review(kind, namespace, obj, uid="case"):
    return {
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": uid, "kind": {"group": "atlas.mongodb.com", "version": "v1", "kind": kind},
            "resource": {"group": "atlas.mongodb.com", "version": "v1", "resource": PLURAL[kind]},
            "name": obj.get("metadata", {}).get("name", ""), "namespace": namespace, "operation": "CREATE",
            "userInfo": {"username": "check"}, "object": obj, "oldObject": None, "dryRun": False,
        },
    }


def mutate_and_apply(binary, review):
    response = run_review(binary, "mutate", review)
    assert response["allowed"] is True, "mutate denied"
    obj = review["request"]["object"]
    if "patch" not in response:
        assert "patchType" not in response, "patchType without patch"
        return obj, []
    assert response["patchType"] == "JSONPatch"
    ops = json.loads(base64.b64decode(response["patch"]))
    for op in ops:
        assert op["op"] == "add", f"only add is used: {op}"
        assert op["path"].startswith("/spec/"), f"patch outside spec: {op}"
    return jsonpatch.apply_patch(obj, ops), ops


def check(binary, name, review, expected, valid, schemas, failures):
    kind = review["request"]["kind"]["kind"]
    original = copy.deepcopy(review["request"]["object"])
    try:
        patched, ops = mutate_and_apply(binary, review)
        if expected is not None and patched != expected:
            failures.append(f"{name}: patched object differs\n  got      {json.dumps(patched, sort_keys=True)}\n"
                            f"  expected {json.dumps(expected, sort_keys=True)}")
        if {k: v for k, v in patched.items() if k != "spec"} != {k: v for k, v in original.items() if k != "spec"}:
            failures.append(f"{name}: something outside spec changed")
        again = copy.deepcopy(review)
        again["request"]["object"] = patched
        _, second = mutate_and_apply(binary, again)
        if second:
            failures.append(f"{name}: mutating the defaulted object patched again: {second}")
        if valid:
            try:
                jsonschema.validate(patched, schemas[kind])
            except jsonschema.ValidationError as error:
                failures.append(f"{name}: defaulted object violates the CRD schema: {error.message}")
            verdict = run_review(binary, "validate", again)
            if not verdict["allowed"]:
                failures.append(f"{name}: defaulted object denied: {verdict['status']['message']}")
            if "patch" in verdict or "patchType" in verdict:
                failures.append(f"{name}: /validate returned a patch")
        print(f"ok  {name} ({len(ops)} ops)")
    except (AssertionError, jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as error:
        failures.append(f"{name}: {error}")


def main():
    binary = sys.argv[1]
    schemas = load_schemas()
    assert set(schemas) == set(PLURAL), f"CRD schemas not found in {CRDS}"
    failures = []
    with open(os.path.join(FIXTURES, "defaulting-cases.json")) as f:
        cases = json.load(f)
    for case in cases:
        namespace = case.get("namespace", "team-a")
        obj = {"apiVersion": "atlas.mongodb.com/v1", "kind": case["kind"],
               "metadata": case.get("metadata", {"name": "obj", "namespace": namespace})}
        expected = copy.deepcopy(obj)
        if "spec" in case:
            obj["spec"] = case["spec"]
            expected["spec"] = case.get("expected", case["spec"])
        check(binary, case["name"], make_review(case["kind"], namespace, obj), expected, case.get("valid", False),
              schemas, failures)
    for path in sorted(glob.glob(os.path.join(FIXTURES, "review-*.json"))):
        with open(path) as f:
            review = json.load(f)
        check(binary, os.path.basename(path), review, None, "denied" not in path, schemas, failures)
    for failure in failures:
        print("FAIL " + failure)
    checked = len(cases) + len(glob.glob(os.path.join(FIXTURES, "review-*.json")))
    print(f"checked {checked} objects, {len(failures)} problems")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
