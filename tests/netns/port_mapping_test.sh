#!/usr/bin/env bash
# Port mapping (tests/netns/testbed.sh, "upnp" routers: home routers running
# miniupnpd). A's router answers NAT-PMP, B's only UPnP-IGD. Each asks its
# router to forward its listen port, a dial-back through the mapping finds
# it public, and it joins announcing the router's address: P, A and B all
# reach each other directly, with no relay. Both ask for 6-second mappings
# (a test hook) and renew them on their routers, keeping the same address.
# A 6-shard job completes. When A and B stop, their mappings are gone from
# the routers' rules.
# Usage: port_mapping_test.sh P2PD P2PCTL
set -euo pipefail
P2PD="$1" P2PCTL="$2"
HERE="$(cd "$(dirname "$0")" && pwd)"
# miniupnpd maps nothing behind a documentation (TEST-NET) address.
TB_NET=11.0.0
TB_NEEDS_MINIUPNPD=1
source "$HERE/testbed.sh"
testbed_require
testbed_up upnp

testbed_p2pd p pub --listen "$TB_NET.10:7420" --cpu-threads 1
P2PD_TEST_PORT_MAPPING_LIFETIME_S=6 testbed_p2pd a a --listen 0.0.0.0:7420 --bootstrap "$TB_NET.10:7420" --cpu-threads 1
A_PID="${TB_PIDS[-1]}"
P2PD_TEST_PORT_MAPPING_LIFETIME_S=6 testbed_p2pd b b --listen 0.0.0.0:7420 --bootstrap "$TB_NET.10:7420" --cpu-threads 1
B_PID="${TB_PIDS[-1]}"

# forwarded ROUTER: the DNAT rules miniupnpd keeps on that router.
forwarded() { ip netns exec "${TB}$1" nft list chain inet p2pd_router miniupnpd_prerouting | grep dnat || true; }

for spec in "a natpmp 21" "b upnp 22"; do
  set -- $spec
  tb_wait 30 "$1 maps its port by $2" tb_is "$1" netcheck "['port_mapping']" "$2" ||
    tb_fail "$1's port mapping: $(tb_json "$1" netcheck "['port_mapping_state']" || true)"
  tb_is "$1" netcheck "['port_mapping_state']['addr']" "$TB_NET.$3:7420" ||
    tb_fail "$1's mapping is not its router's address and port: $(tb_json "$1" netcheck "['port_mapping_state']")"
  tb_wait 40 "$1 is public" tb_is "$1" status "['reachability']" public ||
    tb_fail "$1's reachability: $(tb_json "$1" netcheck "['reachability_detail']" || true)"
  [ "$(tb_json "$1" netcheck "['relay']['state']")" = none ] || tb_fail "$1 reserved a relay"
  echo "$1: $2 mapping $(tb_json "$1" netcheck "['port_mapping_state']['addr']"), reachability" \
    "$(tb_json "$1" status "['reachability']") ($(tb_json "$1" netcheck "['reachability_detail']"))"
done
echo "router A forwards: $(forwarded ra)"
echo "router B forwards: $(forwarded rb)"

# Everyone calls everyone directly: A and B are announced at their routers.
for pair in "p a" "p b" "a b" "b a" "a p" "b p"; do
  set -- $pair
  tb_wait 60 "$1 reaches $2 directly" tb_connected_as "$1" "$2" direct ||
    tb_fail "$1 reaches $2 as '$(tb_connection "$1" "$2" || true)', expected direct"
done
tb_ctl p peers

# The 6-second mappings are renewed on the routers (every 3 s), at the same
# address; past the first lease's end the routers still forward only if
# the renewals reached them.
renewed() {  # NAME N: NAME's mapping was renewed at least N times
  [ "$(tb_json "$1" netcheck "['port_mapping_state']['renewals']")" -ge "$2" ]
}
for spec in "a ra 21" "b rb 22"; do
  set -- $spec
  tb_wait 30 "$1 renews its mapping" renewed "$1" 3 ||
    tb_fail "$1's mapping was not renewed: $(tb_json "$1" netcheck "['port_mapping_state']" || true)"
  tb_is "$1" netcheck "['port_mapping_state']['addr']" "$TB_NET.$3:7420" || tb_fail "$1's mapping moved"
  [ -n "$(forwarded "$2")" ] || tb_fail "$1's router dropped its mapping: renewals did not reach it"
  echo "$1: $(tb_json "$1" netcheck "['port_mapping_state']")"
done

tb_gemm_job p a b || tb_fail "the job on P"

# Stopping removes the mappings from the routers, each node its own (B's
# first: A's 6-second lease would also end on its own if A were slow).
for spec in "b rb $B_PID upnp" "a ra $A_PID natpmp"; do
  set -- $spec
  kill -TERM "$3"
  tb_wait 30 "$1 exits" sh -c "! kill -0 $3" || tb_fail "$1's p2pd did not stop"
  [ -z "$(forwarded "$2")" ] || tb_fail "$1's router still forwards: $(forwarded "$2")"
  grep -q "port mapping removed: port 7420 ($4)" "$TB_DIR/$1/log" || tb_fail "$1 did not remove its mapping"
  echo "$1 stopped: $(grep -o "port mapping removed: .*" "$TB_DIR/$1/log"); its router forwards nothing"
done
echo "PASS (port mapping: A by NAT-PMP, B by UPnP-IGD)"
