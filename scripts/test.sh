#!/usr/bin/env bash
# The whole test suite: type check (src/ and test/) and build, unit tests, then the tests
# against the real kernel (root, network namespaces, BPF). Kernel test files
# run one at a time: some lower the global nf_conntrack_max.
set -uo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

npx tsc -p tsconfig.json || exit 1   # emits dist/, which the CLI tests run
npx tsc -p tsconfig.test.json || exit 1   # type-checks test/ too (vitest only strips types)

status=0
npx vitest run --project unit --reporter=default --reporter=json --outputFile.json="$out/unit.json" || status=1
if [ "$(id -u)" -ne 0 ]; then
  echo "test: NOT RUN: the kernel tests need root (network namespaces, BPF programs). Run: sudo npm test" >&2
  status=1
else
  npx vitest run --project kernel --reporter=default --reporter=json --outputFile.json="$out/kernel.json" || status=1
fi

# One closing line over both runs, in the plain form CI reads.
node -e '
  const fs = require("fs");
  let passed = 0, failed = 0, skipped = 0;
  for (const f of process.argv.slice(1)) {
    if (!fs.existsSync(f)) { failed++; continue; }  // a run that crashed before reporting
    const r = JSON.parse(fs.readFileSync(f, "utf8"));
    passed += r.numPassedTests; failed += r.numFailedTests; skipped += r.numPendingTests + r.numTodoTests;
  }
  console.log(`tests: ${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ""));
' "$out/unit.json" $([ "$(id -u)" -eq 0 ] && echo "$out/kernel.json")
exit $status
