#!/usr/bin/env bash
# Builds one libFuzzer target (address sanitizer on) and runs it.
#   Tests/Fuzz/run.sh TARGET [SECONDS] [extra libFuzzer flags...]
# TARGET: FuzzHTTPParser FuzzChunkedBody FuzzJSON FuzzJSONStreamFilter FuzzAdmission FuzzAdmissionCost FuzzYAML FuzzConfiguration FuzzKubernetesClient, or "all".
# Every target reports units slower than 2 s (-report_slow_units) and fails on one over
# 10 s; FuzzAdmissionCost also checks a time budget per byte of the review it builds.
# The committed seeds are in Corpus/TARGET; what the fuzzer finds new goes to
# .build-fuzz/corpus/TARGET (not committed), crashes to .build-fuzz/findings/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
target=${1:?usage: run.sh TARGET [SECONDS]}
seconds=${2:-60}
shift $(( $# >= 2 ? 2 : 1 ))
targets=(FuzzHTTPParser FuzzChunkedBody FuzzJSON FuzzJSONStreamFilter FuzzAdmission FuzzAdmissionCost FuzzYAML FuzzConfiguration FuzzKubernetesClient)
[[ $target == all ]] || targets=("$target")

scratch="$here/../../.build-fuzz"
mkdir -p "$scratch/findings"
# lld, as the release build: gold warns about every AddressSanitizer report symbol.
swift build --package-path "$here" --scratch-path "$scratch/build" -c debug \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -use-ld=lld >"$scratch/build.log" 2>&1 ||
  { cat "$scratch/build.log"; exit 1; }
bin=$(swift build --package-path "$here" --scratch-path "$scratch/build" -c debug -Xswiftc -use-ld=lld --show-bin-path)
for t in "${targets[@]}"; do
  mkdir -p "$scratch/corpus/$t"
  echo "== $t for ${seconds}s"
  log="$scratch/$t.log"
  # No symbolizing and no Swift backtrace at a finding (either can hang on this
  # toolchain's DWARF 5); the saved input is what matters.
  set +e
  ASAN_OPTIONS=symbolize=0:detect_leaks=1 SWIFT_BACKTRACE=enable=no \
    "$bin/$t" "$scratch/corpus/$t" "$here/Corpus/$t" -max_total_time="$seconds" -timeout=10 -report_slow_units=2 -rss_limit_mb=2048 \
    -artifact_prefix="$scratch/findings/$t-" -print_final_stats=1 "$@" >"$log" 2>&1
  status=$?
  set -e
  grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==ERROR|SUMMARY)|property violated|Fatal error|Slowest unit" "$log" || true
  if grep -q "^Slowest unit" "$log"; then
    echo "$t: a unit took over 2 s (a cost finding); input in $scratch/findings/, log in $log"
    exit 1
  fi
  if [[ $status -ne 0 ]]; then
    echo "$t: finding (exit $status); input in $scratch/findings/, log in $log"
    exit 1
  fi
done
