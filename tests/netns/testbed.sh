#!/usr/bin/env bash
# A NAT testbed of network namespaces (sourced by the tests here).
#
#   "internet": a bridge in namespace ${TB}inet, 203.0.113.0/24 (TEST-NET-3)
#     ${TB}pub   public peer P        203.0.113.10
#     ${TB}stun  coturn --stun-only   203.0.113.3 and 203.0.113.4 (two servers:
#                                     NAT mapping is classified by comparing them)
#     ${TB}ra    router A   wan 203.0.113.21, lan 10.0.1.1/24 -> ${TB}a  10.0.1.2
#     ${TB}rb    router B   wan 203.0.113.22, lan 10.0.2.1/24 -> ${TB}b  10.0.2.2
#
# Routers are nftables: masquerade out of the wan, and like real home
# routers they drop unsolicited inbound traffic (to themselves and to the
# lan); only what conntrack matches to an outgoing flow comes in. The
# "symmetric" kind masquerades fully-random: a new public port for every
# new flow, so no peer can predict it (endpoint-dependent mapping).
#
# Everything is named with a prefix unique to this run and removed by
# testbed_cleanup (run on EXIT), processes first.
set -euo pipefail

# The dash ends the prefix: run 123 must not match run 1234's namespaces.
TB="p2n$$-"
TB_DIR=""
TB_PIDS=()
TB_NAMESPACES=()
# A run never takes longer than this (ctest's own timeout kills with
# SIGKILL, which no trap sees): then it cleans up and fails.
TB_DEADLINE_S="${TB_DEADLINE_S:-220}"

testbed_require() {
  # 77: ctest's "skipped" (SKIP_RETURN_CODE).
  if [ "$(id -u)" -ne 0 ]; then echo "SKIP: the NAT testbed needs root (network namespaces)"; exit 77; fi
  local tool
  for tool in ip nft turnserver; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed (scripts/install-deps.sh installs it)"; exit 77; }
  done
  if ! ip netns add "${TB}probe" 2>/dev/null; then echo "SKIP: cannot create network namespaces here"; exit 77; fi
  ip netns del "${TB}probe"
  # Namespaces of earlier runs that were killed before they could clean up.
  local ns pid
  for ns in $(ip netns list | awk '{print $1}' | grep -E '^p2n[0-9]+-' || true); do
    pid="${ns#p2n}"
    pid="${pid%%-*}"
    if ! kill -0 "$pid" 2>/dev/null; then
      for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
      ip netns del "$ns" 2>/dev/null || true
    fi
  done
}

testbed_cleanup() {
  local pid ns
  trap - EXIT TERM INT
  [ -n "${TB_WATCHDOG:-}" ] && kill "$TB_WATCHDOG" 2>/dev/null || true
  for pid in ${TB_PIDS[@]+"${TB_PIDS[@]}"}; do kill -TERM "$pid" 2>/dev/null || true; done
  # Give daemons a moment to leave, then make sure.
  # (a node that cannot reach its peers waits out its leave timeout, 5 s).
  for _ in $(seq 1 100); do
    local alive=0
    for pid in ${TB_PIDS[@]+"${TB_PIDS[@]}"}; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in ${TB_PIDS[@]+"${TB_PIDS[@]}"}; do kill -KILL "$pid" 2>/dev/null || true; done
  for ns in ${TB_NAMESPACES[@]+"${TB_NAMESPACES[@]}"}; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  if [ -n "$TB_DIR" ] && [ -z "${P2PD_KEEP_TESTBED:-}" ]; then rm -rf "$TB_DIR"; fi
}

# veth between two namespaces: tb_link NS1 IF1 NS2 IF2
tb_link() {
  ip -n "$1" link add "$2" type veth peer name "$4" netns "$3"
  ip -n "$1" link set "$2" up
  ip -n "$3" link set "$4" up
}

tb_router_rules() {  # NS KIND(home|symmetric)
  local masquerade="masquerade"
  [ "$2" = symmetric ] && masquerade="masquerade fully-random"
  ip netns exec "$1" nft -f - <<NFT
table ip p2pd_nat {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan" $masquerade
  }
}
table inet p2pd_filter {
  chain input {
    type filter hook input priority filter; policy drop;
    iifname "lo" accept
    ct state established,related accept
    iifname "lan" accept
  }
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname "lan" oifname "wan" accept
  }
}
NFT
}

# testbed_up KIND: the topology above, both routers of KIND.
testbed_up() {
  local kind="$1" ns
  TB_DIR="$(mktemp -d /tmp/p2pd-netns.XXXXXX)"
  trap testbed_cleanup EXIT
  trap 'echo "FAIL: interrupted (or over the ${TB_DEADLINE_S}s deadline)" >&2; exit 1' TERM INT
  # The watchdog holds none of our output: ctest would wait for it.
  (exec >/dev/null 2>&1 </dev/null; sleep "$TB_DEADLINE_S" && kill -TERM $$) &
  TB_WATCHDOG=$!
  disown "$TB_WATCHDOG"
  for ns in inet pub stun ra rb a b; do
    TB_NAMESPACES+=("${TB}$ns")
    ip netns add "${TB}$ns"
    ip -n "${TB}$ns" link set lo up
  done
  ip -n "${TB}inet" link add br0 type bridge
  ip -n "${TB}inet" link set br0 up
  # Hosts on the internet.
  tb_link "${TB}pub" eth0 "${TB}inet" pub
  tb_link "${TB}stun" eth0 "${TB}inet" stun
  tb_link "${TB}ra" wan "${TB}inet" ra
  tb_link "${TB}rb" wan "${TB}inet" rb
  for port in pub stun ra rb; do ip -n "${TB}inet" link set "$port" master br0; done
  ip -n "${TB}pub" addr add 203.0.113.10/24 dev eth0
  ip -n "${TB}stun" addr add 203.0.113.3/24 dev eth0
  ip -n "${TB}stun" addr add 203.0.113.4/24 dev eth0
  ip -n "${TB}ra" addr add 203.0.113.21/24 dev wan
  ip -n "${TB}rb" addr add 203.0.113.22/24 dev wan
  # The homes behind the routers.
  tb_link "${TB}ra" lan "${TB}a" eth0
  tb_link "${TB}rb" lan "${TB}b" eth0
  ip -n "${TB}ra" addr add 10.0.1.1/24 dev lan
  ip -n "${TB}rb" addr add 10.0.2.1/24 dev lan
  ip -n "${TB}a" addr add 10.0.1.2/24 dev eth0
  ip -n "${TB}b" addr add 10.0.2.2/24 dev eth0
  ip -n "${TB}a" route add default via 10.0.1.1
  ip -n "${TB}b" route add default via 10.0.2.1
  for ns in ra rb; do
    ip netns exec "${TB}$ns" sysctl -qw net.ipv4.ip_forward=1
    tb_router_rules "${TB}$ns" "$kind"
  done
  # The STUN servers (RFC 8489 Binding only: no TURN, no TLS).
  ip netns exec "${TB}stun" turnserver --stun-only -L 203.0.113.3 -L 203.0.113.4 -p 3478 --no-cli --no-tls \
    --no-dtls -n --pidfile "$TB_DIR/stun.pid" --userdb "$TB_DIR/stun.db" --log-file "$TB_DIR/stun.log" \
    --simple-log >/dev/null 2>&1 &
  TB_PIDS+=($!)
  disown $!  # reaped by testbed_cleanup, not reported by bash
}

# testbed_p2pd NAME NS ARGS...: p2pd in a namespace; its socket, state and
# log under $TB_DIR/NAME.
testbed_p2pd() {
  local name="$1" ns="$2"
  shift 2
  mkdir -p "$TB_DIR/$name"
  ip netns exec "${TB}$ns" "$P2PD" --state-dir "$TB_DIR/$name/state" --control-socket "$TB_DIR/$name/sock" \
    --stun 203.0.113.3:3478 --stun 203.0.113.4:3478 --raft-election-timeout 500 --raft-heartbeat 50 "$@" \
    >"$TB_DIR/$name/log" 2>&1 &
  TB_PIDS+=($!)
  disown $!
}

tb_ctl() {  # NAME ARGS...
  local name="$1"
  shift
  "$P2PCTL" --socket "$TB_DIR/$name/sock" --timeout 10 "$@"
}

# tb_wait SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.5 s.
tb_wait() {
  local seconds="$1" what="$2"
  shift 2
  local deadline=$((SECONDS + seconds))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "FAIL: not within ${seconds}s: $what" >&2
  return 1
}

tb_dump_logs() {
  local log
  for log in "$TB_DIR"/*/log "$TB_DIR"/stun.log; do
    [ -f "$log" ] || continue
    echo "---- $log (last 40 lines)"
    tail -n 40 "$log"
  done
}
