#!/usr/bin/env bash
# Runs the tests under ThreadSanitizer: builds the TSan-instrumented gRPC and
# Abseil once (scripts/tsan-deps.sh), then the tsan preset against them, then
# ctest. Every process the tests start (test binaries, p2pd daemons, p2pctl)
# writes its reports to build/tsan/reports/tsan.PID instead of stderr, so a
# report in a daemon is counted even when the test around it passes. Prints
# each distinct report's summary line with how often it came; exit non-zero
# if any test failed (ctest's status) or any report was written (1).
# (`ctest --preset tsan` instead stops each process at its first report,
# which it prints on its stderr.)
#
#   bash scripts/tsan.sh                  # unit, integration and netns tests
#   bash scripts/tsan.sh -L integration   # other ctest arguments instead
#
# Left out by default, and run by scripts/test.sh in the ci and asan
# presets: the integration tests labelled footprint instead, which bound a
# daemon's RSS (TSan's shadow memory adds more than the bounds allow). The
# preset sets P2PD_TEST_SLOWDOWN=4: the integration tests get 4 times their
# timeouts and time bounds (the 24-daemon ring takes about 9 minutes under
# TSan on 2 cores, against 2 in the ci preset).
#
# Not part of scripts/test.sh: the instrumented gRPC takes about 20 minutes
# to build on 2 cores, and the tests run several times slower under TSan.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
bash scripts/tsan-deps.sh

jobs=$(nproc)
echo "== tsan.sh: configure and build the tsan preset"
# --fresh: a build/tsan configured before it built against Debian's gRPC.
cmake --preset tsan --fresh >/dev/null
cmake --build --preset tsan -j "$jobs"

reports="$PWD/build/tsan/reports"
rm -rf "$reports"
mkdir -p "$reports"
args=("$@")
[[ ${#args[@]} -gt 0 ]] || args=(-L 'unit|integration|netns')
# halt_on_error=0: a run collects every report, not just the first; a process
# that wrote one still exits 66. history_size=4: deeper histories, so both
# stacks of a race are shown.
export TSAN_OPTIONS="halt_on_error=0:second_deadlock_stack=1:history_size=4:suppressions=$PWD/tests/tsan.supp:log_path=$reports/tsan"
echo "== tsan.sh: ctest ${args[*]}"
status=0
ctest --test-dir build/tsan --output-on-failure --no-tests=error -j "$jobs" "${args[@]}" || status=$?

files=("$reports"/tsan.*)
[[ -e "${files[0]}" ]] || files=()
if [[ ${#files[@]} -gt 0 ]]; then
  echo "== tsan.sh: ${#files[@]} processes wrote reports ($reports):"
  grep -h '^SUMMARY: ThreadSanitizer' "${files[@]}" | sort | uniq -c | sort -rn || true
  for file in "${files[@]}"; do  # a fatal error or a warning of another kind has no summary
    grep -q '^SUMMARY: ThreadSanitizer' "$file" || { echo "-- $file:"; head -5 "$file"; }
  done
  [[ $status -ne 0 ]] || status=1
else
  echo "== tsan.sh: no ThreadSanitizer report"
fi
exit "$status"
