#!/usr/bin/env bash
# A NAT testbed of network namespaces (sourced by the tests here).
#
#   "internet": a bridge in namespace ${TB}inet, $TB_NET.0/24
#     ${TB}pub   public peer P        $TB_NET.10
#     ${TB}stun  coturn --stun-only   $TB_NET.3 and $TB_NET.4 (two servers:
#                                     NAT mapping is classified by comparing them)
#     ${TB}ra    router A   wan $TB_NET.21, lan 10.0.1.1/24 -> ${TB}a  10.0.1.2
#     ${TB}rb    router B   wan $TB_NET.22, lan 10.0.2.1/24 -> ${TB}b  10.0.2.2
#
# TB_NET is 203.0.113 (TEST-NET-3) unless the test sets it first: miniupnpd
# will not map ports behind a documentation address, so the port mapping
# test takes a block it counts as public. The namespaces have no route out:
# nothing reaches a real network whichever block it is.
#
# Routers are nftables: masquerade out of the wan, and like real home
# routers they drop unsolicited inbound traffic (to themselves and to the
# lan); only what conntrack matches to an outgoing flow comes in. The
# "symmetric" kind masquerades fully-random: a new public port for every
# new flow, so no peer can predict it (endpoint-dependent mapping). The
# "upnp" kind is a home router that also runs miniupnpd: router A answers
# NAT-PMP and UPnP-IGD, router B UPnP-IGD only; the mappings they make are
# rules in the router's miniupnpd chains. MINIUPNPD_LIFETIME_S caps the
# lifetime router A grants over NAT-PMP (default 86400 s).
#
# Everything is named with a prefix unique to this run and removed by
# testbed_cleanup (run on EXIT), processes first.
set -euo pipefail

# The dash ends the prefix: run 123 must not match run 1234's namespaces.
TB="p2n$$-"
TB_NET="${TB_NET:-203.0.113}"
TB_DIR=""
TB_PIDS=()
TB_NAMESPACES=()
TB_NODES=()  # the names testbed_p2pd started
# A run never takes longer than this (ctest's own timeout kills with
# SIGKILL, which no trap sees): then it cleans up and fails.
TB_DEADLINE_S="${TB_DEADLINE_S:-220}"

testbed_require() {  # [TOOL...]: what the test runs (default: ip nft turnserver)
  # 77: ctest's "skipped" (SKIP_RETURN_CODE).
  if [ "$(id -u)" -ne 0 ]; then echo "SKIP: the NAT testbed needs root (network namespaces)"; exit 77; fi
  local tool tools=("$@")
  [ ${#tools[@]} -gt 0 ] || tools=(ip nft turnserver ${TB_NEEDS_MINIUPNPD:+miniupnpd})
  for tool in "${tools[@]}"; do
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

tb_router_rules() {  # NS KIND(home|symmetric|upnp)
  local masquerade="masquerade"
  [ "$2" = symmetric ] && masquerade="masquerade fully-random"
  # One inet table, laid out as miniupnpd expects (its nft_init.sh): its
  # chains are jumped to before the router's own verdicts, and stay empty
  # unless it runs.
  ip netns exec "$1" nft -f - <<NFT
table inet p2pd_router {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    jump miniupnpd_prerouting
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    jump miniupnpd_postrouting
    oifname "wan" $masquerade
  }
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
    jump miniupnpd_forward
  }
  chain miniupnpd_prerouting {
  }
  chain miniupnpd_postrouting {
  }
  chain miniupnpd_forward {
  }
}
NFT
}

# miniupnpd on a router: NS NATPMP(yes|no)
tb_miniupnpd() {
  local ns="$1" conf="$TB_DIR/miniupnpd-$1.conf"
  cat >"$conf" <<CONF
ext_ifname=wan
listening_ip=lan
http_port=0
enable_upnp=yes
enable_natpmp=$2
secure_mode=yes
system_uptime=no
uuid=$(cat /proc/sys/kernel/random/uuid)
min_lifetime=2
max_lifetime=${MINIUPNPD_LIFETIME_S:-86400}
upnp_table_name=p2pd_router
upnp_nat_table_name=p2pd_router
upnp_forward_chain=miniupnpd_forward
upnp_nat_chain=miniupnpd_prerouting
upnp_nat_postrouting_chain=miniupnpd_postrouting
allow 1024-65535 10.0.0.0/8 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
CONF
  ip netns exec "$ns" miniupnpd -f "$conf" -d -P "$TB_DIR/miniupnpd-$1.pid" >"$TB_DIR/miniupnpd-$1.log" 2>&1 &
  TB_PIDS+=($!)
  disown $!
  # Serving before any node asks: SSDP, HTTP and (when on) NAT-PMP bound.
  local ready="[ -n \"\$(ss -Hlun 'sport = :1900')\" ] && [ -n \"\$(ss -Hltn)\" ]"
  [ "$2" = yes ] && ready="$ready && [ -n \"\$(ss -Hlun 'sport = :5351')\" ]"
  tb_wait 10 "miniupnpd serves on $ns" ip netns exec "$ns" sh -c "$ready" || {
    cat "$TB_DIR/miniupnpd-$1.log" >&2
    exit 1
  }
}

# tb_begin: a run's directory, its cleanup on exit, and its deadline.
tb_begin() {
  TB_DIR="$(mktemp -d /tmp/p2pd-netns.XXXXXX)"
  trap testbed_cleanup EXIT
  trap 'echo "FAIL: interrupted (or over the ${TB_DEADLINE_S}s deadline)" >&2; exit 1' TERM INT
  # The watchdog holds none of our output: ctest would wait for it.
  (exec >/dev/null 2>&1 </dev/null; sleep "$TB_DEADLINE_S" && kill -TERM $$) &
  TB_WATCHDOG=$!
  disown "$TB_WATCHDOG"
}

# testbed_up KIND: the topology above, both routers of KIND.
testbed_up() {
  local kind="$1" ns
  tb_begin
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
  ip -n "${TB}pub" addr add "$TB_NET.10/24" dev eth0
  ip -n "${TB}stun" addr add "$TB_NET.3/24" dev eth0
  ip -n "${TB}stun" addr add "$TB_NET.4/24" dev eth0
  ip -n "${TB}ra" addr add "$TB_NET.21/24" dev wan
  ip -n "${TB}rb" addr add "$TB_NET.22/24" dev wan
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
  if [ "$kind" = upnp ]; then
    tb_miniupnpd "${TB}ra" yes
    tb_miniupnpd "${TB}rb" no
  fi
  # The STUN servers (RFC 8489 Binding only: no TURN, no TLS).
  ip netns exec "${TB}stun" turnserver --stun-only -L "$TB_NET.3" -L "$TB_NET.4" -p 3478 --no-cli --no-tls \
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
  TB_NODES+=("$name")
  ip netns exec "${TB}$ns" "$P2PD" --state-dir "$TB_DIR/$name/state" --control-socket "$TB_DIR/$name/sock" \
    --stun "$TB_NET.3:3478" --stun "$TB_NET.4:3478" --raft-election-timeout 500 --raft-heartbeat 50 "$@" \
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
  for log in "$TB_DIR"/*/log "$TB_DIR"/stun.log "$TB_DIR"/miniupnpd-*.log; do
    [ -f "$log" ] || continue
    echo "---- $log (last 40 lines)"
    tail -n 40 "$log"
  done
}

# tb_json NAME COMMAND FIELD: FIELD (a Python subscript, "['relay']['state']")
# of `p2pctl --json COMMAND`; strings bare, anything else as JSON.
tb_json() {
  tb_ctl "$1" --json "$2" | python3 -c "import json,sys; v=json.load(sys.stdin)$3; print(v if isinstance(v,str) else json.dumps(v))"
}
tb_is() {  # NAME COMMAND FIELD EXPECTED
  [ "$(tb_json "$1" "$2" "$3")" = "$4" ]
}
# tb_connection NAME PEER_NAME: how NAME reaches PEER_NAME, from `p2pctl peers`.
tb_connection() {
  local id
  id="$(tb_json "$2" status "['node_id']")"
  tb_ctl "$1" --json peers |
    python3 -c "import json,sys; print(next((p['connection'] for p in json.load(sys.stdin)['peers'] if p['node_id']=='$id'), 'absent'))"
}
tb_connected_as() {  # NAME PEER_NAME EXPECTED
  [ "$(tb_connection "$1" "$2")" = "$3" ]
}

# tb_gemm_job SUBMITTER NAME...: a 6-shard job submitted on SUBMITTER once
# it knows the other NAMEs: inputs stored in the ring, shards run on every
# worker, results verified by the pool, and C checked here against A @ B.
# Prints where the shards ran; returns 1 if anything went wrong.
tb_gemm_job() {
  local submitter="$1" here n ids=()
  shift
  here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  python3 "$here/gemm_npy.py" make "$TB_DIR/a.npy" "$TB_DIR/b.npy" 96 64 48 7
  tb_wait 30 "$submitter sees $# peers" sh -c "[ \"\$('$P2PCTL' --socket '$TB_DIR/$submitter/sock' --json peers | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[\"peers\"]))')\" -ge $# ]" ||
    return 1
  if ! "$P2PCTL" --socket "$TB_DIR/$submitter/sock" --timeout 120 --json submit gemm --a "$TB_DIR/a.npy" \
    --b "$TB_DIR/b.npy" --shards 6 --out "$TB_DIR/c.npy" >"$TB_DIR/job.json"; then
    cat "$TB_DIR/job.json" >&2 || true
    echo "the job did not complete" >&2
    return 1
  fi
  python3 "$here/gemm_npy.py" check "$TB_DIR/a.npy" "$TB_DIR/b.npy" "$TB_DIR/c.npy" || return 1
  for n in "$submitter" "$@"; do ids+=("$n=$(tb_json "$n" status "['node_id']")"); done
  python3 - "$TB_DIR/job.json" "${ids[@]}" <<'PY'
import json, sys
job = json.load(open(sys.argv[1]))
names = {arg.split("=")[1]: arg.split("=")[0].upper() for arg in sys.argv[2:]}
ran = {}
for shard in job["shards"]:
    ran.setdefault(names.get(shard["peer"], shard["peer"][:8]), []).append(shard["index"])
print("job %s: %s, %d shards; ran on %s" % (job["job_id"], job["state"], len(job["shards"]),
      ", ".join("%s %s" % (k, v) for k, v in sorted(ran.items()))))
sys.exit(0 if job["state"] == "done" and len(job["shards"]) == 6 else 1)
PY
}

# tb_fail MESSAGE: prints what every node knows of its connectivity and
# peers, the routers' rules and the logs; exits 1.
tb_fail() {
  local n
  echo "FAIL: $*" >&2
  for n in ${TB_NODES[@]+"${TB_NODES[@]}"}; do
    echo "---- netcheck $n"
    tb_ctl "$n" netcheck || true
    echo "---- peers $n"
    tb_ctl "$n" peers || true
  done
  for n in ra rb; do
    [ -e "/run/netns/${TB}$n" ] || continue
    echo "---- router $n"
    ip netns exec "${TB}$n" nft list ruleset || true
  done
  tb_dump_logs
  exit 1
}
