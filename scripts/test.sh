#!/usr/bin/env bash
# The test command: sets up (scripts/setup.sh) and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
ctest --test-dir "${STRATA_BUILD_DIR:-build}" --output-on-failure -j "$(nproc)"
