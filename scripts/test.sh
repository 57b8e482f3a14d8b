#!/usr/bin/env bash
# Installs the dependencies, builds p2pd and runs the whole test suite through
# ctest: first the optimized build (warnings are errors), then the same suite
# under AddressSanitizer + UndefinedBehaviorSanitizer. Exit 0 only if every
# test passed in both.
#
#   bash scripts/test.sh              # both builds
#   P2PD_TEST_PRESETS=ci bash scripts/test.sh   # only the optimized build
#   bash scripts/test.sh -L unit      # extra arguments go to ctest
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

presets=${P2PD_TEST_PRESETS:-"ci asan"}
jobs=$(nproc)
for preset in $presets; do
  echo "== test.sh: preset '$preset': configure and build"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  echo "== test.sh: preset '$preset': ctest"
  ctest --preset "$preset" --no-tests=error -j "$jobs" "$@"
done
echo "== test.sh: all presets passed: $presets"
