#!/usr/bin/env python3
"""Writes the large AdmissionReviews the load tests send, deterministically (the same bytes
on every run and machine):

    review-2.2mb.json  2,290,278 bytes: Tests/Fixtures/review-kafka.json turned into an
                       UPDATE whose object and oldObject carry the same 9,000-entry
                       spec.kafkaConfig.config map (keys custom.property.00000 to 08999,
                       values of 100 bytes): a large review the rules must read in full
                       but that changes nothing.
    review-250kb.json  the same with the first 960 entries: 248,118 bytes.

Usage: Benchmarks/reviews.py DIRECTORY
Benchmarks/compare.sh writes them into its scratch directory; to send one by hand:
    Benchmarks/reviews.py /tmp/reviews
    Benchmarks/instructions.sh .build/release/atlas-stream-webhook /tmp/reviews/review-2.2mb.json
"""
import copy
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(ROOT, "Tests/Fixtures/review-kafka.json")

# File name -> entries in the config map.
SIZES = {"review-2.2mb.json": 9000, "review-250kb.json": 960}


def review(entries):
    """The fixture as an UPDATE with `entries` unchanged config entries, as compact JSON bytes."""
    with open(FIXTURE, "rb") as fixture:
        document = json.load(fixture)
    request = document["request"]
    request["operation"] = "UPDATE"
    request["object"]["spec"]["kafkaConfig"]["config"] = {
        f"custom.property.{i:05d}": "v" * 100 for i in range(entries)
    }
    request["oldObject"] = copy.deepcopy(request["object"])
    return json.dumps(document, separators=(",", ":")).encode()


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: Benchmarks/reviews.py DIRECTORY")
    os.makedirs(sys.argv[1], exist_ok=True)
    for name, entries in SIZES.items():
        path = os.path.join(sys.argv[1], name)
        with open(path, "wb") as out:
            out.write(review(entries))
        print(f"{path}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
