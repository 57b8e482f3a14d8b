#!/usr/bin/env bash
# Runs the libFuzzer targets (tests/fuzz: the .npy parser, the STUN codec,
# peer message decoding, the trace merger, replicated state, Raft's files),
# each for SECONDS, JOBS at a
# time, in the fuzz preset (clang, ASan+UBSan). Each starts from a working
# copy of its stored corpus (tests/fuzz/corpus/TARGET, which the replay
# tests also run) under build/fuzz/corpus; findings (crash-*, leak-*,
# timeout-*, oom-*) land in build/fuzz/findings/TARGET. Prints per target
# the runs made, the corpus size and the findings; exit 1 if any.
#
#   scripts/fuzz.sh [--merge] [SECONDS] [TARGET...]     (default: 600 s, all)
#
# --merge: afterwards, minimizes what the run found into the stored corpus
# (libFuzzer -merge=1: only inputs that add coverage), for committing.
set -euo pipefail
cd "$(dirname "$0")/.."
merge=0
if [ "${1:-}" = --merge ]; then merge=1; shift; fi
seconds="${1:-600}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(npy stun peer_messages trace replicated_state raft_storage connect_request)
jobs="${JOBS:-$(nproc)}"
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "fuzz.sh: error: SECONDS must be a number, not '$seconds'" >&2; exit 2; }
command -v clang++ >/dev/null || { echo "fuzz.sh: error: clang++ not found (scripts/install-deps.sh installs it)" >&2; exit 2; }

cmake --preset fuzz >/dev/null
cmake --build build/fuzz --target "${targets[@]/#/p2pd_fuzz_}" >/dev/null

run_one() {
  local target="$1" corpus="build/fuzz/corpus/$1" findings="build/fuzz/findings/$1"
  rm -rf "$findings"  # this run's findings only
  mkdir -p "$corpus" "$findings"
  cp -n tests/fuzz/corpus/"$target"/* "$corpus"/ 2>/dev/null || true
  # -timeout: one input taking 10 s is a finding (a hang); -rss_limit_mb
  # bounds memory (an allocation driven by input is one too).
  "build/fuzz/tests/fuzz/p2pd_fuzz_$target" "$corpus" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$findings/" -print_final_stats=1 >"build/fuzz/$target.log" 2>&1 || true
}

echo "fuzz.sh: ${#targets[@]} targets, ${seconds} s each, $jobs at a time"
running=0
for target in "${targets[@]}"; do
  run_one "$target" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait

found=0
for target in "${targets[@]}"; do
  log="build/fuzz/$target.log"
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  findings=("build/fuzz/findings/$target"/*)
  [ -e "${findings[0]}" ] || findings=()
  corpus="$(find "build/fuzz/corpus/$target" -type f | wc -l)"
  printf '%-14s %10s runs in %s s, corpus %5s inputs, %d findings\n' "$target" "${runs:-?}" "$seconds" "$corpus" \
    "${#findings[@]}"
  if [ ${#findings[@]} -gt 0 ] || [ -z "$runs" ]; then
    found=1
    for f in "${findings[@]}"; do echo "  finding: $f"; done
    [ -n "$runs" ] || echo "  the fuzzer did not finish: see $log"
    grep -m3 -E "ERROR|invariant broken|SUMMARY" "$log" | sed 's/^/  /' || true
  fi
  if [ "$merge" = 1 ]; then
    "build/fuzz/tests/fuzz/p2pd_fuzz_$target" -merge=1 "tests/fuzz/corpus/$target" "build/fuzz/corpus/$target" \
      >"build/fuzz/$target.merge.log" 2>&1
    echo "  stored corpus: $(find "tests/fuzz/corpus/$target" -type f | wc -l) inputs"
  fi
done
exit "$found"
