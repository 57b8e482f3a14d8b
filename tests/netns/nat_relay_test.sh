#!/usr/bin/env bash
# Relayed peers (tests/netns/testbed.sh): A and B behind NAT routers find
# themselves unreachable, reserve a relay port on the public peer P and
# announce it; P then reaches them through its relay. A and B punch a
# direct connection to each other where their routers allow it (home:
# EXPECTED_CONNECTION punched) and stay on the relay where they do not
# (symmetric: relayed). A 6-shard job submitted on P completes with the
# right product, its data crossing the relay.
# Usage: nat_relay_test.sh P2PD P2PCTL [home|symmetric] [EXPECTED_CONNECTION]
set -euo pipefail
P2PD="$1" P2PCTL="$2" KIND="${3:-symmetric}" EXPECTED="${4:-relayed}"
HERE="$(cd "$(dirname "$0")" && pwd)"
source "$HERE/testbed.sh"
testbed_require
testbed_up "$KIND"

testbed_p2pd p pub --listen 203.0.113.10:7420 --cpu-threads 1
testbed_p2pd a a --listen 0.0.0.0:7420 --bootstrap 203.0.113.10:7420 --cpu-threads 1
testbed_p2pd b b --listen 0.0.0.0:7420 --bootstrap 203.0.113.10:7420 --cpu-threads 1


for n in a b; do
  tb_wait 40 "$n is private" tb_is "$n" status "['reachability']" private ||
    tb_fail "$n's reachability: $(tb_json "$n" status "['reachability']" || true)"
  tb_wait 30 "$n's relay is connected" tb_is "$n" netcheck "['relay']['state']" connected ||
    tb_fail "$n's relay: $(tb_json "$n" netcheck "['relay']" || true)"
  echo "$n: private, relayed: $(tb_json "$n" netcheck "['relay']")"
done
# A sees itself at its router's public address (testbed.sh: A's router is .21).
tb_wait 30 "A observes its router's address" sh -c \
  "'$P2PCTL' --socket '$TB_DIR/a/sock' --json status | grep -q '\"203.0.113.21:'" ||
  tb_fail "A's observed addresses: $(tb_json a status "['observed_addrs']" || true)"
echo "A: $(tb_json a status "['observed_addrs']"), reachability $(tb_json a status "['reachability']")"

# P reaches A and B through the relay; A and B reach each other as EXPECTED.
for pair in "p a" "p b"; do
  set -- $pair
  tb_wait 60 "$1 reaches $2 (relayed)" tb_connected_as "$1" "$2" relayed ||
    tb_fail "$1 reaches $2 as '$(tb_connection "$1" "$2" || true)', expected relayed"
done
for pair in "a b" "b a"; do
  set -- $pair
  tb_wait 90 "$1 reaches $2 ($EXPECTED)" tb_connected_as "$1" "$2" "$EXPECTED" ||
    tb_fail "$1 reaches $2 as '$(tb_connection "$1" "$2" || true)', expected $EXPECTED"
done
for pair in "a p" "b p"; do
  set -- $pair
  tb_wait 30 "$1 reaches P directly" tb_connected_as "$1" "$2" direct ||
    tb_fail "$1 reaches P as '$(tb_connection "$1" "$2" || true)', expected direct"
done
if [ "$EXPECTED" = punched ]; then
  # Calls between A and B take the punched connection, not the relay.
  for n in a b; do
    tb_wait 30 "$n calls over its punched connection" sh -c \
      "[ \"\$('$P2PCTL' --socket '$TB_DIR/$n/sock' --json netcheck | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"punching\"][\"direct_calls\"])')\" -gt 0 ]" ||
      tb_fail "$n made no call over its punched connection: $(tb_json "$n" netcheck "['punching']" || true)"
    echo "$n's punching: $(tb_json "$n" netcheck "['punching']")"
  done
fi
if [ "$EXPECTED" = relayed ]; then
  # Not for want of trying: a whole round of punches failed (each router
  # gives every connection a new port), and A and B are still relayed.
  tb_wait 90 "A has tried a round of punches" sh -c \
    "[ \"\$('$P2PCTL' --socket '$TB_DIR/a/sock' --json netcheck | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"punching\"][\"attempts\"])')\" -ge 3 ]" ||
    tb_fail "A did not try to punch: $(tb_json a netcheck "['punching']" || true)"
  [ "$(tb_json a netcheck "['punching']['succeeded']")" = 0 ] || tb_fail "a punch through symmetric routers worked"
  tb_connected_as a b relayed || tb_fail "A reaches B as '$(tb_connection a b || true)' after failed punches"
  echo "A's punching: $(tb_json a netcheck "['punching']")"
fi
echo "connections: P->A $(tb_connection p a), P->B $(tb_connection p b), A->B $(tb_connection a b), B->A $(tb_connection b a)," \
  "A->P $(tb_connection a p), B->P $(tb_connection b p)"

# A 6-shard job submitted on P, its data crossing the relay.
tb_gemm_job p a b || tb_fail "the job on P"
relayed="$(tb_json p netcheck "['relay_service']['bytes_relayed']")"
[ "$relayed" -gt 0 ] || tb_fail "P relayed no bytes"
echo "P relayed $relayed bytes: $(tb_json p netcheck "['relay_service']")"
echo "PASS ($KIND routers, $EXPECTED)"
