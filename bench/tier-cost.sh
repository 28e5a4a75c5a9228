#!/usr/bin/env bash
# What the function tiers cost new-flow traffic on Debian's 6.1 kernel: a
# raw-socket new-flow flood (tools/flood.c, every packet a new conntrack entry)
# in a fresh namespace of the qemu guest, with no probe, with the fentry tier
# and with the kprobe tier attached, and with each tier's floor (empty
# programs at the same functions); the median of CTOP_BENCH_REPS runs each,
# and the programs' instructions per new flow (the guest runs with -icount).
# The guest runs under software emulation (TCG): absolute rates are far below
# real hardware and BPF/trampoline costs weigh more there; compare ratios.
# Each probe run must count every flow as an insert, or the bench fails.
# With CTOP_BENCH_MODE=est, one established flow instead and CTOP_BENCH_FLOWS
# packets on it (each probe run must then count exactly that one insert): what
# the tiers cost established traffic, against the same floor.
# Usage: bench/tier-cost.sh   (env CTOP_BENCH_FLOWS, default 20000; CTOP_BENCH_REPS, default 5;
#                              CTOP_BENCH_MODE new or est, default new;
#                              CTOP_BENCH_HOLD_ARGS, e.g. "--drops alloc": the
#                              function tiers' drops from the allocation probes,
#                              the loader's fallback, floors included)
set -euo pipefail
cd "$(dirname "$0")/.."
export CTOP_BENCH_FLOWS=${CTOP_BENCH_FLOWS:-20000} CTOP_BENCH_REPS=${CTOP_BENCH_REPS:-5} CTOP_BENCH_MODE=${CTOP_BENCH_MODE:-new}
out=$(bash test/matrix/run-guest.sh --bench)
echo "$out" | grep -E '^(bench|matrix):'
echo "$out" | node -e '
  const flows = Number(process.env.CTOP_BENCH_FLOWS);
  const est = process.env.CTOP_BENCH_MODE === "est";
  const unit = est ? "packet" : "new flow";
  const runs = {};
  const insns = {};
  for (const line of require("fs").readFileSync(0, "utf8").split("\n")) {
    const m = line.match(/^bench: \d+ ([\w-]+) (\{.*?\})(?: (\{.*\}))?$/);
    if (!m) continue;
    const flood = JSON.parse(m[2]);
    if (flood.sent !== flows || flood.timedOut) throw new Error(`${m[1]}: the flood did not send ${flows} packets`);
    const held = m[3] ? JSON.parse(m[3]) : null;
    const want = est ? 1 : flows;
    if (held && "inserts" in held && held.inserts !== want) throw new Error(`${m[1]}: ${held.inserts} inserts counted for ${want} new flows`);
    (runs[m[1]] ??= []).push(flood.pps);
    // -icount shift=0: the guest clock advances 1 ns per instruction, so
    // the programs run time is their instruction count
    if (held) (insns[m[1]] ??= []).push(held.programs.reduce((n, p) => n + p.ns, 0) / flows);
  }
  const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  const base = median(runs.none);
  for (const [tier, pps] of Object.entries(runs)) {
    const i = insns[tier] ? `; programs ${Math.round(median(insns[tier]))} instructions per ${unit} (${insns[tier].map(Math.round).join(", ")})` : "";
    console.log(`${tier.padEnd(12)} median ${median(pps)} ${est ? "packets" : "new flows"}/s over ${pps.length} runs (${pps.join(", ")})` +
      (tier === "none" ? "" : `: ${(median(pps) / base).toFixed(3)} of no probe`) + i);
  }
'
