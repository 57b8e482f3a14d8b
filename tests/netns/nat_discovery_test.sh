#!/usr/bin/env bash
# Address discovery behind NAT routers (tests/netns/testbed.sh):
#   home routers: A sees its router's public address (from P's ping and two
#     STUN servers), peers cannot dial it back (reachability private), and
#     its mapping is endpoint-independent; P on the internet sees no NAT.
#   symmetric routers: the same, but the mapping is endpoint-dependent.
# Usage: nat_discovery_test.sh P2PD P2PCTL [home|symmetric]
set -euo pipefail
P2PD="$1" P2PCTL="$2" KIND="${3:-home}"
source "$(dirname "$0")/testbed.sh"
testbed_require
testbed_up "$KIND"

testbed_p2pd p pub --listen 203.0.113.10:7420
testbed_p2pd a a --listen 0.0.0.0:7420 --bootstrap 203.0.113.10:7420
testbed_p2pd b b --listen 0.0.0.0:7420 --bootstrap 203.0.113.10:7420

expected_mapping=endpoint-independent
[ "$KIND" = symmetric ] && expected_mapping=endpoint-dependent


for pair in "a 203.0.113.21" "b 203.0.113.22"; do
  set -- $pair
  tb_wait 30 "$1 adopts its router's address" tb_is "$1" status "['observed_addrs']" "[\"$2:7420\"]" ||
    tb_fail "$1's observed_addrs: $(tb_json "$1" status "['observed_addrs']" || true)"
  tb_wait 30 "$1 is private" tb_is "$1" status "['reachability']" private ||
    tb_fail "$1's reachability: $(tb_json "$1" status "['reachability']" || true)"
  tb_wait 20 "$1's mapping is $expected_mapping" tb_is "$1" netcheck "['nat_mapping']" "$expected_mapping" ||
    tb_fail "$1's nat_mapping: $(tb_json "$1" netcheck "['nat_mapping']" || true)"
  echo "$1: observed $(tb_json "$1" status "['observed_addrs']"), reachability private," \
    "mapping $expected_mapping: $(tb_json "$1" netcheck "['reachability_detail']")"
done
# P's STUN answers name its own address: no NAT. (Whether P is reachable
# needs a peer that P can call to dial it back; A and B cannot be called
# from outside their routers, so here it stays unknown.)
tb_wait 20 "P sees no NAT" tb_is p netcheck "['nat_mapping']" none || tb_fail "P's nat_mapping"
tb_wait 20 "P adopts its own address" tb_is p status "['observed_addrs']" '["203.0.113.10:7420"]' ||
  tb_fail "P's observed_addrs"
echo "P: observed $(tb_json p status "['observed_addrs']"), no NAT"
echo "PASS ($KIND routers)"
