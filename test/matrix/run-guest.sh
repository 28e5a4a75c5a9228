#!/usr/bin/env bash
# The kernel test matrix's second kernel: Debian 12's 6.1 cloud kernel, booted
# under qemu's software emulation (TCG: no KVM needed) with a busybox
# initramfs that holds ctop-selftest (the product's native core and BPF
# object), nft, and the kernel's own netfilter modules. Inside the guest:
#   - `ctop-selftest probe` must choose the fentry tier, and the netfilter
#     tier must be refused (BPF netfilter programs need 6.4);
#   - `ctop-selftest probe` must count the function tiers' drops with
#     tp_btf/kfree_skb (6.1 frees netfilter drops with their reason);
#   - `ctop-selftest scenario` for the fentry and the kprobe tier: known
#     traffic, every count checked exactly (see native/selftest), drops and
#     their tuples from tp_btf/kfree_skb; and again with `--drops alloc`, the
#     loader's fallback for kernels without the drop reason;
#   - `ctop-selftest roles` for both: flows of each role through TUN devices
#     and loopback, each port's role counts checked exactly;
#   - insertion races for both (tools/clash on the guest's two CPUs): UDP
#     flows whose clashes the kernel resolves, TCP SYNs whose inserts fail;
#     ctop's clashes, insert_failed and entries (totals and per port) must
#     equal the namespace's own statistics and count; no table-full drop
#     (a failed insert also counts `drop`), and untracked netfilter drops
#     after the races (an nft rule's counter) are ctop's other drops, not
#     table-full ones. Traffic starts once hold says every program is
#     attached;
#   - TCP races again, started while hold loads and attaches: ctop may miss
#     what came first, but never counts an entry live that is gone (the
#     loader attaches the deletions first and the confirm's exit last).
# Any missing result, including a guest that does not boot, is a failure.
#
# Usage: test/matrix/run-guest.sh [--keep | --fetch-only]   (root not needed)
#        --keep        copy the guest's console to ./guest-console.log
#        --fetch-only  download and unpack the kernel package, then stop (setup.sh)
#        --bench       instead of the tests: new-flow flood throughput with no
#                      probe, the fentry tier, the kprobe tier, and each tier's
#                      floor (empty programs at the same functions) (bench/)
# Env:   CTOP_MATRIX_CACHE  where the kernel package is kept (~/.cache/ctop-matrix)
#        CTOP_BENCH_TIERS  --bench: the conditions to run (default: none fentry
#                          kprobe floor-fentry floor-kprobe)
#        CTOP_BENCH_HOLD_ARGS  --bench: more arguments for every `ctop-selftest hold`,
#                          the floors' too (e.g. `--drops alloc`: the function
#                          tiers' fallback for kernels without the drop reason)
#        CTOP_BENCH_MODE   --bench: new (default: every packet a new flow) or est
#                          (one established flow, CTOP_BENCH_FLOWS packets on it)
#        CTOP_GUEST_TIMEOUT_S  wall-clock bound for the guest (default 300)
#        CTOP_GUEST_RACE_ROUNDS  N: run only the insertion races, N rounds of
#                          the four, each checked (for chasing a rare miscount;
#                          the other checks are reported as not run)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
timeout_s=${CTOP_GUEST_TIMEOUT_S:-300}
fail() { echo "matrix: FAIL: $*" >&2; exit 1; }
. test/matrix/guest-lib.sh

mode=${1:-}
case "$mode" in ""|--keep|--fetch-only|--bench) ;; *) fail "unknown option '$mode' (hint: --keep, --fetch-only or --bench)";; esac

guest_kernel
[ "$mode" = --fetch-only ] && { echo "matrix: kernel $kver ready in $kdir"; exit 0; }
guest_need qemu-system-x86_64 busybox cpio nft
selftest=$root/tools/bin/ctop-selftest
[ -x "$selftest" ] || fail "$selftest is missing (hint: npm run build:tools)"
guest_check_kernel

# ---- the initramfs -----------------------------------------------------------
guest_root
cp "$selftest" "$ir/bin/ctop-selftest"
cp "$(command -v nft)" "$ir/bin/nft"
[ -x "$root/tools/bin/clash" ] || fail "tools/bin/clash is missing (hint: npm run build:tools)"
cp "$root/tools/bin/clash" "$ir/bin/clash"
# traffic starts once `ctop-selftest hold` says every program is attached (its
# first line), never after a guessed delay: loading takes about a second
# under emulation, longer on a busy host, and a run that starts early counts
# part of its events (inserts before their deletions' program is attached)
cat > "$ir/bin/wait-held" <<'EOF'
#!/bin/sh
# wait-held FILE PID: until hold's first line, "attached":true, is in FILE;
# fails if hold (PID) exits first, or after 120 s
i=0
until grep -q '"attached":true' "$1" 2>/dev/null; do
  kill -0 "$2" 2>/dev/null || { echo "hold exited before attaching: $(head -c 300 "$1")" >&2; exit 1; }
  i=$((i + 1)); [ $i -le 2400 ] || { echo "hold did not attach within 120 s" >&2; exit 1; }
  sleep 0.05
done
EOF
chmod +x "$ir/bin/wait-held"
if [ "$mode" = --bench ]; then
  [ -x "$root/tools/bin/flood" ] || fail "tools/bin/flood is missing (hint: npm run build:tools)"
  cp "$root/tools/bin/flood" "$ir/bin/flood"
fi
guest_libs "$selftest" "$(command -v nft)"
guest_modules nf_conntrack nf_conntrack_netlink nf_tables nft_ct tun

{ guest_init_head; cat <<'EOF'; } > "$ir/init"
run() { # name, command...
  name=$1; shift
  out=$("$@" 2>/tmp/err); rc=$?
  echo "CTOP-RESULT $name rc=$rc $out"
  [ -s /tmp/err ] && sed "s/^/CTOP-STDERR $name: /" /tmp/err
}
[ -f /etc/debug.sh ] && . /etc/debug.sh
[ -f /etc/bench.sh ] && { . /etc/bench.sh; echo "CTOP-DONE"; poweroff -f; }
if [ ! -f /etc/race-rounds ]; then
  run probe-auto ctop-selftest probe
  run probe-netfilter ctop-selftest probe --tier netfilter
  run scenario-fentry ctop-selftest scenario --tier fentry --nft /bin/nft
  run scenario-kprobe ctop-selftest scenario --tier kprobe --nft /bin/nft
  run scenario-fentry-alloc ctop-selftest scenario --tier fentry --drops alloc --nft /bin/nft
  run scenario-kprobe-alloc ctop-selftest scenario --tier kprobe --drops alloc --nft /bin/nft
  run roles-fentry ctop-selftest roles --tier fentry --nft /bin/nft
  run roles-kprobe ctop-selftest roles --tier kprobe --nft /bin/nft
fi
# insertion races, in a namespace of their own: the tier held while
# tools/clash sends each flow's first packet from both CPUs, then the
# namespace's statistics (per CPU, hex) and count beside what ctop counted.
# `early`: the traffic starts at once, while hold loads and attaches, and
# must span the attach ("spanned":1: not attached before, attached after)
race_once() { # tier, proto [early]
  name=race-$1-$2${3:+-$3}
  unshare -n sh -c '
    ip link set lo up; ip addr add 198.18.0.1/32 dev lo
    printf "table ip b {\n chain in { type filter hook prerouting priority 0; ct state new accept; }\n}\n" | nft -f -
    mkfifo /tmp/race; ctop-selftest hold --tier '"$1"' < /tmp/race > /tmp/held 2>/tmp/held.err &
    exec 3> /tmp/race
    rc=0 spanned=0
    if [ "'"${3:-}"'" = early ]; then
      grep -q "\"attached\":true" /tmp/held || spanned=1
      clash --dst 198.18.0.1 --port 9999 --flows 5000 --max-ms 60000 --proto '"$2"' > /tmp/sent
      grep -q "\"attached\":true" /tmp/held || spanned=0
      wait-held /tmp/held $! 2>>/tmp/held.err || rc=1
    elif wait-held /tmp/held $! 2>>/tmp/held.err; then
      clash --dst 198.18.0.1 --port 9999 --flows 5000 --max-ms 60000 --proto '"$2"' > /tmp/sent
    else
      rc=1; echo "{}" > /tmp/sent
    fi
    # then untracked netfilter drops (before conntrack, at raw priority): other drops to ctop, never
    # table-full ones, though the failed inserts above counted `drop` too
    printf "table ip r {\n chain out { type filter hook output priority -300; udp dport 9998 counter drop; }\n}\n" | nft -f -
    clash --dst 198.18.0.1 --port 9998 --flows 10 --max-ms 10000 --proto udp > /dev/null
    untracked=$(nft list table ip r | sed -n "s/.*counter packets \([0-9]*\).*/\1/p")
    sum() { s=0; for h in $(awk "NR > 1 {print \$$1}" /proc/net/stat/nf_conntrack); do s=$((s + 0x$h)); done; echo $s; }
    kernel="{\"clashResolve\":$(sum 2),\"insertFailed\":$(sum 10),\"drop\":$(sum 11),\"untracked\":${untracked:-0},\"count\":$(cat /proc/sys/net/netfilter/nf_conntrack_count),\"spanned\":$spanned}"
    # the per-CPU rows as they are (hex), for a failure to be attributed
    rows=$(awk "NR > 1" /proc/net/stat/nf_conntrack | tr -s " " | tr "\n" "/")
    exec 3>&-; wait; rm /tmp/race
    echo "CTOP-RESULT '"$name"' rc=$rc $kernel $(cat /tmp/sent) $(tail -1 /tmp/held)"
    echo "CTOP-STAT '"$name"' $(head -1 /proc/net/stat/nf_conntrack | tr -s " ")/ $rows"
    sed "s/^/CTOP-STDERR '"$name"': /" /tmp/held.err'
}
# A race is a matter of timing: a run of 5,000 flows has made as few as one
# under this emulation, so a run that made none is repeated, at most 3 times
# in all. Each attempt is its own namespace and is checked exactly; only the
# kept attempt's result is read by the host.
race() { # tier, proto
  for attempt in 1 2 3; do
    out=$(race_once "$1" "$2")
    kernel=$(echo "$out" | sed -n 's/^CTOP-RESULT [^ ]* rc=0 \({[^}]*}\).*/\1/p')
    if [ "$2" = udp ]; then stat=clashResolve; else stat=insertFailed; fi
    k=$(echo "$kernel" | sed -n "s/.*\"$stat\":\([0-9]*\).*/\1/p")
    # no kernel figures: the attempt failed (e.g. hold did not attach), not a race-less run
    if [ -z "$kernel" ] || [ "${k:-0}" -gt 0 ] || [ "$attempt" = 3 ]; then echo "$out"; return; fi
    echo "CTOP-RETRY race-$1-$2: attempt $attempt made no race, repeated"
  done
}
for round in $(seq 1 "$(cat /etc/race-rounds 2>/dev/null || echo 1)"); do
  for tier in fentry kprobe; do race $tier udp; race $tier tcp; race_once $tier tcp early; done
done
echo "CTOP-DONE"
poweroff -f
EOF
chmod +x "$ir/init"
if [ "$mode" = --bench ]; then
  flows=${CTOP_BENCH_FLOWS:-20000}
  reps=${CTOP_BENCH_REPS:-3}
  hold_args=${CTOP_BENCH_HOLD_ARGS:-}
  tiers=${CTOP_BENCH_TIERS:-none fentry kprobe floor-fentry floor-kprobe}
  flood_mode=${CTOP_BENCH_MODE:-new}
  case "$flood_mode" in new|est) ;; *) fail "CTOP_BENCH_MODE must be new or est";; esac
  cat > "$ir/etc/bench.sh" <<BENCH
# room for every flow: no eviction work in the runs (the limit is global)
echo 262144 > /proc/sys/net/netfilter/nf_conntrack_max
# per-program run counts and time (with -icount, 1 ns = 1 instruction)
echo 1 > /proc/sys/kernel/bpf_stats_enabled
# one fresh namespace per run: an empty table, conntrack on through nft
flood_once() {
  unshare -n sh -c 'ip link set lo up; ip addr add 198.18.0.1/32 dev lo
    printf "table ip b {\\n chain in { type filter hook prerouting priority 0; ct state new accept; }\\n}\\n" | nft -f -
    flood $flood_mode --dst 198.18.0.1 --port 9000 --count $flows --max-ms 120000'
}
# the previous run's namespace is torn down in the background (its entries
# freed by a workqueue): wait until that is over, or it would cost the next run
settle() {
  for i in \$(seq 1 60); do
    n=\$(awk '\$1 == "nf_conntrack" {print \$2}' /proc/slabinfo)
    [ "\${n:-0}" -lt 1000 ] && return
    sleep 0.5
  done
  echo "CTOP-BENCH-WARN conntrack entries still allocated: \$n"
}
for rep in \$(seq 1 $reps); do
  # floor-T: empty programs at tier T's attach points (bpf/floor.bpf.c)
  for tier in $tiers; do
    settle
    if [ \$tier = none ]; then
      echo "CTOP-BENCH \$rep none \$(flood_once)"
    else
      mkfifo /tmp/hold
      case \$tier in
        floor-*) ctop-selftest hold --tier \${tier#floor-} --floor $hold_args < /tmp/hold > /tmp/held & ;;
        *) ctop-selftest hold --tier \$tier $hold_args < /tmp/hold > /tmp/held & ;;
      esac
      exec 3> /tmp/hold
      wait-held /tmp/held \$! || echo "CTOP-BENCH-WARN \$tier: hold did not attach"
      r=\$(flood_once)
      exec 3>&-
      wait
      rm /tmp/hold
      echo "CTOP-BENCH \$rep \$tier \$r \$(tail -1 /tmp/held)"
    fi
  done
done
BENCH
fi
rounds=${CTOP_GUEST_RACE_ROUNDS:-}
if [ -n "$rounds" ]; then
  [[ "$rounds" =~ ^[1-9][0-9]?$ ]] || fail "CTOP_GUEST_RACE_ROUNDS must be 1-99 (hint: unset it for the whole matrix)"
  [ "$mode" != --bench ] || fail "CTOP_GUEST_RACE_ROUNDS and --bench exclude each other"
  echo "$rounds" > "$ir/etc/race-rounds"
fi
# CTOP_GUEST_DEBUG: shell commands the guest runs first (for debugging the matrix)
if [ -n "${CTOP_GUEST_DEBUG:-}" ]; then printf '%s\n' "$CTOP_GUEST_DEBUG" > "$ir/etc/debug.sh"; fi

# ---- boot ---------------------------------------------------------------------
# --bench: the guest's clock counts executed instructions (-icount, 1 ns per
# instruction), so that its rates measure instructions per flow and not how
# busy the shared host is; on one vCPU, as every bench figure so far. The
# tests run on two, which the insertion races need.
icount=()
guest_cpus=2
[ "$mode" = --bench ] && { icount=(-icount shift=0); guest_cpus=1; }
guest_boot "$timeout_s" 1024 "${icount[@]}"
if [ "$mode" = --keep ] || [ -n "${CTOP_GUEST_KEEP:-}" ]; then cp "$log.clean" "$root/guest-console.log"; fi
grep -E '^CTOP-' "$log.clean" | cut -c1-400 || true

guest_finished "$timeout_s"
if [ "$mode" = --bench ]; then
  grep '^CTOP-BENCH' "$log.clean" | sed 's/^CTOP-BENCH /bench: /'
  echo "matrix: $kver bench ran in ${elapsed}s"
  exit 0
fi
! grep -q '^CTOP-ERROR' "$log.clean" || fail "module loading failed in the guest"

result() { grep "^CTOP-RESULT $1 " "$log.clean" | head -1; }
status=0
expect() { # name, grep -E pattern the result line must match, what it means
  if result "$1" | grep -qE "$2"; then echo "matrix: ok   $kver $1: $3"; else echo "matrix: FAIL $kver $1: $3" >&2; status=1; fi
}
if [ -n "$rounds" ]; then
  echo "matrix: NOT RUN $kver probe, scenario and roles checks: CTOP_GUEST_RACE_ROUNDS=$rounds runs the races only" >&2
else
expect probe-auto 'rc=0 .*"refused":\[\],"tier":"fentry","dropsVia":"kfree_skb"' 'the fentry tier is chosen first, its drops from tp_btf/kfree_skb (the kernel has the drop reason)'
expect probe-netfilter 'rc=1 .*"tier":"netfilter","step":"load"' 'the netfilter tier is refused at load (needs 6.4)'
expect scenario-fentry 'rc=0 .*"tier":"fentry","dropsVia":"kfree_skb".*"ok":true' 'fentry tier: every count matches the traffic and the kernel'
expect scenario-kprobe 'rc=0 .*"tier":"kprobe","dropsVia":"kfree_skb".*"ok":true' 'kprobe tier: every count matches the traffic and the kernel'
expect scenario-fentry-alloc 'rc=0 .*"tier":"fentry","dropsVia":"alloc".*"ok":true' 'fentry tier, drops from the allocation probe (the fallback): every count matches'
expect scenario-kprobe-alloc 'rc=0 .*"tier":"kprobe","dropsVia":"alloc".*"ok":true' 'kprobe tier, drops from the allocation probes (the fallback): every count matches'
expect roles-fentry 'rc=0 .*"tier":"fentry".*"ok":true' 'fentry tier: server, client, local and forward flows (IPv4, IPv6) each get their role'
expect roles-kprobe 'rc=0 .*"tier":"kprobe".*"ok":true' 'kprobe tier: server, client, local and forward flows (IPv4, IPv6) each get their role'
fi
# the races: ctop's figures against the namespace's own (every round's)
num() { sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p" <<< "$1" | head -1; }
for n in $(seq 1 "${rounds:-1}"); do
for tier in fentry kprobe; do
  for proto in udp tcp; do
    line=$(grep "^CTOP-RESULT race-$tier-$proto " "$log.clean" | sed -n "${n}p")
    label="race-$tier-$proto${rounds:+ (round $n)}"
    kernel=$(sed -n 's/^CTOP-RESULT [^ ]* rc=0 \({[^}]*}\).*/\1/p' <<< "$line")
    held=$(sed -n 's/.*\({"inserts".*\)$/\1/p' <<< "$line")
    if [ -z "$kernel" ] || [ -z "$held" ]; then
      echo "matrix: FAIL $kver $label: no result" >&2; status=1; continue
    fi
    if [ "$proto" = udp ]; then race=clashResolve; mine=clashes; per_port=portClashes; else race=insertFailed; mine=insertFailed; per_port=portInsertFailed; fi
    k=$(num "$kernel" $race); c=$(num "$held" $mine); p=$(num "$held" $per_port)
    count=$(num "$kernel" count); e=$(num "$held" portEntries); i=$(num "$held" inserts)
    other_k=$(num "$kernel" $([ $race = clashResolve ] && echo insertFailed || echo clashResolve))
    other_c=$(num "$held" $([ $mine = clashes ] && echo insertFailed || echo clashes))
    kd=$(num "$kernel" drop); d=$(num "$held" drops); u=$(num "$kernel" untracked); o=$(num "$held" otherNfDrops)
    what="$tier tier, $proto races: $race $k > 0, ctop $c (per port $p); entries $count, ctop $e (inserts $i); table-full drops 0, ctop $d (kernel drop $kd); untracked drops $u > 0, ctop's other drops $o"
    if [ "${k:-0}" -gt 0 ] && [ "$c" = "$k" ] && [ "$p" = "$k" ] && [ "$e" = "$count" ] && [ "$other_c" = "$other_k" ] &&
       [ "$d" = 0 ] && [ "${u:-0}" -gt 0 ] && [ "$o" = "$u" ]; then
      echo "matrix: ok   $kver $label: $what"
    else
      # runs the kernel skipped because the program was already running on
      # that CPU (a softirq interrupting it): what ctop could not count
      missed=$(grep -o '"misses":[0-9]*' <<< "$held" | awk -F: '{s += $2} END {print s + 0}')
      echo "matrix: FAIL $kver $label: $what; the other race statistic $other_k, ctop $other_c; program runs skipped by the kernel (recursion): $missed" >&2; status=1
      # what ctop's entries are made of, beside the kernel's own per-CPU rows
      roles=$(grep -o '"portInsertsByRole":\[[0-9,]*\]' <<< "$held" | sed 's/.*\[\(.*\)\]/\1/')
      echo "matrix:      ctop: inserts $i (per port, by role server,client,local,forward: $roles), deletes $(num "$held" deletes) (per port $(num "$held" portDeletes)), insert_failed $(num "$held" insertFailed) (per port $(num "$held" portInsertFailed)), clashes $(num "$held" clashes) (per port $(num "$held" portClashes)), event map overflow $(num "$held" eventsOverflow), port map overflow $(num "$held" portOverflow); kernel: $(grep "^CTOP-STAT race-$tier-$proto " "$log.clean" | sed -n "${n}p" | cut -d' ' -f3-)" >&2
    fi
  done
  # TCP races while the programs attach: ctop may miss what came before its
  # counting began, but must never count an entry live that is gone (an
  # insert counted before the deletions' program was attached)
  label="race-$tier-tcp-early${rounds:+ (round $n)}"
  line=$(grep "^CTOP-RESULT race-$tier-tcp-early " "$log.clean" | sed -n "${n}p")
  kernel=$(sed -n 's/^CTOP-RESULT [^ ]* rc=0 \({[^}]*}\).*/\1/p' <<< "$line")
  held=$(sed -n 's/.*\({"inserts".*\)$/\1/p' <<< "$line")
  if [ -z "$kernel" ] || [ -z "$held" ]; then
    echo "matrix: FAIL $kver $label: no result" >&2; status=1; continue
  fi
  count=$(num "$kernel" count); spanned=$(num "$kernel" spanned); i=$(num "$held" inserts); del=$(num "$held" deletes)
  pi=$(( $(grep -o '"portInsertsByRole":\[[0-9,]*\]' <<< "$held" | grep -o '[0-9][0-9,]*' | tr ',' '+') ))
  pd=$(num "$held" portDeletes)
  what="$tier tier, tcp races while the programs attach (traffic spanned the attach: $spanned): entries $count, ctop inserts $i - deletions $del (per port $pi - $pd) <= $count"
  if [ "$spanned" = 1 ] && [ "${i:-0}" -gt 0 ] && [ $((i - del)) -le "$count" ] && [ $((pi - pd)) -le "$count" ]; then
    echo "matrix: ok   $kver $label: $what"
  else
    echo "matrix: FAIL $kver $label: $what" >&2; status=1
  fi
done
done
echo "matrix: $kver guest ran in ${elapsed}s"
exit $status
