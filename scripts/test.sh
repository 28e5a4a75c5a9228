#!/usr/bin/env bash
# The whole test suite: type check, unit tests, then the tests against the real
# kernel (root, network namespaces). Kernel tests run one file at a time: some
# lower the global nf_conntrack_max.
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc --noEmit -p tsconfig.json
npx vitest run --project unit
if [ "$(id -u)" -ne 0 ]; then
  echo "test: SKIPPING the kernel tests: they need root (network namespaces, BPF). Run: sudo npm test" >&2
  exit 1
fi
npx vitest run --project kernel
