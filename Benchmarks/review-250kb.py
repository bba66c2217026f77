#!/usr/bin/env python3
"""Writes a 250 KB AdmissionReview: ../shared/bench/review-large.json (an UPDATE of a Kafka
connection with an unchanged 9,000-entry `config` map) cut to its first 960 entries, for
the end-to-end row between 2.5 KB and 2.2 MB in the README.

Usage: Benchmarks/review-250kb.py OUTPUT.json
Then, with the server and the go-peer started as compare.sh starts them:
    BODY=OUTPUT.json wrk -t1 -c4 -d5s --latency -s post.lua https://127.0.0.1:PORT/validate
"""
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
review = json.load(open(os.path.join(ROOT, "../shared/bench/review-large.json")))
for key in ("object", "oldObject"):
    config = review["request"][key]["spec"]["kafkaConfig"]["config"]
    review["request"][key]["spec"]["kafkaConfig"]["config"] = {k: config[k] for k in list(config)[:960]}
with open(sys.argv[1], "w") as out:
    json.dump(review, out, separators=(",", ":"))
