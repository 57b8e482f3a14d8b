#!/usr/bin/env bash
# Hole punching success rate (tests/netns/testbed.sh, home routers): A and
# B behind two home routers, P public. Once A and B reach each other
# directly, A drops its direct connection to B and punches a new one
# TRIES times (`p2pctl punch`, each a full round: mapping, offer and go
# through P's relay, simultaneous open); prints the rate and timings.
# Exit 0 when at least MIN_SUCCESSES tries worked.
# Usage: punch_rate.sh P2PD P2PCTL [TRIES] [MIN_SUCCESSES]
set -euo pipefail
P2PD="$1" P2PCTL="$2" TRIES="${3:-20}" MIN_SUCCESSES="${4:-${3:-20}}"
HERE="$(cd "$(dirname "$0")" && pwd)"
source "$HERE/testbed.sh"
testbed_require
testbed_up home

testbed_p2pd p pub --listen 203.0.113.10:7420 --cpu-threads 1
testbed_p2pd a a --listen 0.0.0.0:7420 --bootstrap 203.0.113.10:7420 --cpu-threads 1
testbed_p2pd b b --listen 0.0.0.0:7420 --bootstrap 203.0.113.10:7420 --cpu-threads 1

node_id() { tb_ctl "$1" --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["node_id"])'; }
a_reaches_b_as() {
  [ "$(tb_ctl a --json peers | python3 -c "import json,sys; print(next((p['connection'] for p in json.load(sys.stdin)['peers'] if p['node_id']=='$B_ID'), 'absent'))")" = "$1" ]
}

tb_wait 40 "B answers" tb_ctl b status >/dev/null || tb_fail "B's p2pd did not start"
B_ID="$(node_id b)"
tb_wait 90 "A reaches B through a punched connection" a_reaches_b_as punched ||
  tb_fail "A never punched through to B"

ok=0
first=0
elapsed=()
for i in $(seq 1 "$TRIES"); do
  # Exit 1 (the punch failed) still prints its JSON; anything else does not.
  out="$("$P2PCTL" --socket "$TB_DIR/a/sock" --timeout 10 --json punch "$B_ID" 2>&1)" || true
  fields="$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(r["result"], r["elapsed_ms"], r["attempts"], r["rtt_ms"], r["error"] or "")' "$out" 2>/dev/null)" ||
    fields="error 0 0 0 $out"
  read -r result ms attempts rtt error <<<"$fields"
  [ "$result" = punched ] && ok=$((ok + 1))
  echo "try $i: $result in $ms ms, $attempts attempt(s), relay round trip $rtt ms${error:+: $error}"
  elapsed+=("$ms")
  [ "$result" = punched ] && [ "$attempts" = 1 ] && first=$((first + 1))
done
median="$(printf '%s\n' "${elapsed[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')"
echo "punch success: $ok/$TRIES ($first at the first attempt; median round $median ms)"
a_reaches_b_as punched || tb_fail "A does not reach B directly after the tries"
[ "$ok" -ge "$MIN_SUCCESSES" ] || tb_fail "$ok of $TRIES punches worked, fewer than $MIN_SUCCESSES"
echo PASS
