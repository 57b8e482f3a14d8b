#!/usr/bin/env bash
# Installs the dependencies, builds p2pd and runs the whole test suite through
# ctest: first the optimized build (warnings are errors), then the same suite
# under AddressSanitizer + UndefinedBehaviorSanitizer; then builds the Debian
# package and checks it (scripts/check-package.sh). Exit 0 only if every test
# passed in both builds and the package holds.
#
#   bash scripts/test.sh              # both builds and the package
#   P2PD_TEST_PRESETS=ci bash scripts/test.sh   # only the optimized build
#   P2PD_TEST_PACKAGE=0 bash scripts/test.sh    # without the package check
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
if [[ ${P2PD_TEST_PACKAGE:-1} != 0 ]]; then
  echo "== test.sh: the Debian package"
  bash scripts/check-package.sh
fi
echo "== test.sh: all presets passed: $presets"
