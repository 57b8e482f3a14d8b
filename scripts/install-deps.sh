#!/usr/bin/env bash
# Installs every build and test dependency of p2pd from Debian's packages.
# Idempotent: packages already present are left alone. This is the only place
# in the tree that knows package names.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config git
  # libraries (DESIGN.md: Asio, Program_options, gRPC/Protobuf, fmt, OpenBLAS, libsystemd, OpenSSL)
  libboost-dev libboost-program-options-dev libboost-system-dev
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libfmt-dev nlohmann-json3-dev libopenblas-dev libsystemd-dev libssl-dev
  # port mapping (daemon/nat): UPnP-IGD and NAT-PMP clients
  libminiupnpc-dev libnatpmp-dev
  # tests
  catch2 python3 procps
  # the NAT testbed (tests/netns): namespaces, router rules, a STUN server
  iproute2 nftables coturn
  # ... and a router's UPnP-IGD/NAT-PMP service (the binary alone: no init script, nothing started)
  miniupnpd-nftables
  # the package check (scripts/check-package.sh): systemd-analyze, -sysusers, -tmpfiles; dpkg-shlibdeps
  systemd dpkg-dev
  # lint (the lint:clang-format test)
  clang-format
  # fuzzing (scripts/fuzz.sh): clang and its libFuzzer runtime
  clang libclang-rt-dev
  # the TSan-instrumented gRPC (scripts/tsan-deps.sh) builds from Debian's sources: curl fetches
  # them, patch applies Debian's series, and gRPC's CMake wants the protoc library's headers
  curl patch libprotoc-dev libc-ares-dev libre2-dev zlib1g-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: error: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
# The tests run coturn themselves, in a namespace; the package would also
# start a TURN server on every interface of this machine. Not ours to run.
if printf '%s\n' "${missing[@]}" | grep -qx coturn && command -v systemctl >/dev/null; then
  $sudo systemctl disable --now coturn.service >/dev/null 2>&1 || true
fi
