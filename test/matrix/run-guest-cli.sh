#!/usr/bin/env bash
# The real CLI on the function tiers: Debian 12's 6.1 cloud kernel (the one
# test/matrix/run-guest.sh boots), under qemu TCG, with an initramfs that holds
# Node, ctop's bin/ and dist/, its runtime node_modules, the addon (the BPF
# object is in its skeleton) and their libraries. For the fentry and the
# kprobe tier, in a fresh network namespace with conntrack on and
# nf_conntrack_max at 200: `ctop snapshot --json --tier T` while 300 new
# unreplied UDP flows go to 127.0.0.1:7200 (so the table fills, the kernel
# evicts some and refuses others), then the kernel's own view of that
# namespace (/proc/net/stat/nf_conntrack, nf_conntrack_count).
# Then, per tier, occupancy after churn (occ.sh): entries made before ctop
# attaches, `ctop record` (one census at attach, then the kernel's per-port
# count of confirmed minus destroyed entries carries it forward), churn
# (entries deleted with `conntrack -D`, made to expire with `conntrack -U`,
# new ones made and left to expire), and the last window's occupancy beside
# `conntrack -L` per port and nf_conntrack_count.
# check-guest-cli.mjs checks ctop's figures against the traffic and those, exactly.
#
# Usage: test/matrix/run-guest-cli.sh [--keep]   (after npm run build; root not needed)
# Env:   CTOP_MATRIX_CACHE  where the kernel package is kept (~/.cache/ctop-matrix)
#        CTOP_GUEST_TIMEOUT_S  wall-clock bound for the guest (default 900: Node under TCG is slow)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
timeout_s=${CTOP_GUEST_TIMEOUT_S:-900}
fail() { echo "matrix-cli: FAIL: $*" >&2; exit 1; }
. test/matrix/guest-lib.sh
mode=${1:-}
case "$mode" in ""|--keep) ;; *) fail "unknown option '$mode' (hint: --keep)";; esac

guest_kernel
guest_need qemu-system-x86_64 busybox cpio nft node conntrack
[ -f "$root/build/Release/ctop.node" ] && [ -f "$root/dist/cli.js" ] || fail "ctop is not built (hint: npm run build)"
guest_check_kernel

# ---- the initramfs -----------------------------------------------------------
guest_root
mkdir -p "$ir/ctop/build/Release" "$ir/ctop/node_modules"
for tool in nft node conntrack; do cp "$(command -v $tool)" "$ir/bin/$tool"; done
# ctop as installed: bin/, dist/, package.json, the addon, the runtime dependencies only
cp -r "$root/bin" "$root/dist" "$root/package.json" "$ir/ctop/"
cp "$root/build/Release/ctop.node" "$ir/ctop/build/Release/"
for dep in commander blessed prom-client @opentelemetry tdigest bintrees; do
  [ -e "$root/node_modules/$dep" ] || fail "node_modules/$dep is missing (hint: npm install)"
  cp -rL "$root/node_modules/$dep" "$ir/ctop/node_modules/"
done
guest_libs "$(command -v node)" "$root/build/Release/ctop.node" "$(command -v nft)" "$(command -v conntrack)"
guest_modules nf_conntrack nf_conntrack_netlink nf_tables nft_ct

# one tier's run, inside a fresh network namespace ($1: the tier)
cat > "$ir/etc/tier.sh" <<'TIER'
tier=$1
ip link set lo up
# entries stay for the whole window: only early drops remove any
echo 600 > /proc/sys/net/netfilter/nf_conntrack_udp_timeout
printf 'table inet t {\n chain o {\n  type filter hook output priority 0;\n  ct state new counter\n }\n}\n' | nft -f -
# the previous tier's files must not be read as this one's (its "sampling for" would start the traffic early)
rm -f /tmp/snap.json /tmp/snap.err
node /ctop/bin/ctop snapshot --json --top 0 --duration 40s --tier "$tier" --netns /proc/$$/ns/net > /tmp/snap.json 2> /tmp/snap.err &
pid=$!
i=0
while ! grep -q "sampling for" /tmp/snap.err && [ $i -lt 600 ] && kill -0 $pid 2>/dev/null; do sleep 0.5; i=$((i+1)); done
node /etc/send.js
wait $pid
echo "CTOP-CLI-RC $tier $?"
sed "s/^/CTOP-CLI-STDERR $tier: /" /tmp/snap.err
echo "CTOP-CLI-JSON $tier $(tr -d '\n' < /tmp/snap.json)"
echo "CTOP-CLI-COUNT $tier $(cat /proc/sys/net/netfilter/nf_conntrack_count)"
echo "CTOP-CLI-STAT $tier $(tr '\n' '|' < /proc/net/stat/nf_conntrack)"
TIER
# send.js PORT N: N UDP flows, one socket and one datagram each, to a port nobody listens on
cat > "$ir/etc/send.js" <<'SEND'
const dgram = require('node:dgram');
const port = Number(process.argv[2] ?? 7200);
const n = Number(process.argv[3] ?? 300);
let left = n;
for (let i = 0; i < n; i++) {
  const s = dgram.createSocket('udp4');
  s.send('x', port, '127.0.0.1', () => {
    s.close();
    if (--left === 0) console.log(`CTOP-CLI-SENT ${n}`);
  });
}
SEND
# occupancy after churn, one tier, inside a fresh network namespace ($1: the tier)
cat > "$ir/etc/occ.sh" <<'OCC'
tier=$1
ip link set lo up
udp_timeout() { echo "$1" > /proc/sys/net/netfilter/nf_conntrack_udp_timeout; }
listed() { conntrack -L -p udp --dport "$1" 2>/dev/null | wc -l; }
printf 'table inet t {\n chain o {\n  type filter hook output priority 0;\n  ct state new counter\n }\n}\n' | nft -f -
# before ctop: 80 entries on udp/7300 that stay, 30 on udp/7302 and 40 on udp/7304 that will go
udp_timeout 600
node /etc/send.js 7300 80 >/dev/null
node /etc/send.js 7302 30 >/dev/null
node /etc/send.js 7304 40 >/dev/null
echo "CTOP-OCC-BEFORE $tier $(cat /proc/sys/net/netfilter/nf_conntrack_count)"
rm -f /tmp/rec.jsonl /tmp/rec.err
# one census, at attach (a 0.1 % budget puts the next one minutes away); a window every 2 s
node /ctop/bin/ctop record -o /tmp/rec.jsonl --every 2s --duration 20m --census-budget 0.1 --tier "$tier" --netns /proc/$$/ns/net 2> /tmp/rec.err &
pid=$!
i=0
while ! grep -q '"occupancy"' /tmp/rec.jsonl 2>/dev/null && [ $i -lt 600 ] && kill -0 $pid 2>/dev/null; do sleep 0.5; i=$((i+1)); done
echo "CTOP-OCC-CENSUS $tier $(grep -c '"occupancy"' /tmp/rec.jsonl 2>/dev/null)"
# churn after the census: deleted, made to expire, made and left to expire, made to stay
conntrack -D -p udp --dport 7302 >/dev/null 2>&1
# (conntrack -U updates one tuple at a time: a filter by port is refused, EOPNOTSUPP)
for sp in $(conntrack -L -p udp --dport 7304 2>/dev/null | sed -n 's/.*sport=\([0-9]*\) dport=7304 .*/\1/p'); do
  conntrack -U -s 127.0.0.1 -d 127.0.0.1 -p udp --sport "$sp" --dport 7304 --timeout 2 >/dev/null 2>&1
done
udp_timeout 2
node /etc/send.js 7301 100 >/dev/null
udp_timeout 600
node /etc/send.js 7303 50 >/dev/null
# the expired ones leave at the GC's next pass or at a dump (conntrack -L), whichever first
sleep 3
i=0
while [ "$(listed 7301)$(listed 7304)" != "00" ] && [ $i -lt 120 ]; do sleep 1; i=$((i+1)); done
# two more windows after the last change, then Ctrl-C (the recording keeps every window)
sleep 5
kill -INT $pid
wait $pid
echo "CTOP-OCC-RC $tier $?"
sed "s/^/CTOP-OCC-STDERR $tier: /" /tmp/rec.err | tail -5
echo "CTOP-OCC-LAST $tier $(tail -1 /tmp/rec.jsonl)"
echo "CTOP-OCC-COUNT $tier $(cat /proc/sys/net/netfilter/nf_conntrack_count)"
echo "CTOP-OCC-LISTED $tier 7300=$(listed 7300) 7301=$(listed 7301) 7302=$(listed 7302) 7303=$(listed 7303) 7304=$(listed 7304) all=$(conntrack -L 2>/dev/null | wc -l)"
OCC
{ guest_init_head; cat <<'INIT'; } > "$ir/init"
export PATH=/bin HOME=/tmp
# the limit is global: 300 unreplied flows into 200 places
echo 200 > /proc/sys/net/netfilter/nf_conntrack_max
for tier in fentry kprobe; do
  unshare -n sh /etc/tier.sh $tier
done
# room for every entry: the occupancy scenario must see no evictions
echo 65536 > /proc/sys/net/netfilter/nf_conntrack_max
for tier in fentry kprobe; do
  unshare -n sh /etc/occ.sh $tier
done
echo "CTOP-DONE"
poweroff -f
INIT
chmod +x "$ir/init"

# ---- boot ---------------------------------------------------------------------
guest_boot "$timeout_s" 3072
if [ "$mode" = --keep ]; then cp "$log.clean" "$root/guest-cli-console.log"; fi
grep -E '^CTOP-' "$log.clean" | grep -v '^CTOP-CLI-JSON\|^CTOP-OCC-LAST' | cut -c1-300 || true
guest_finished "$timeout_s"
! grep -q '^CTOP-ERROR' "$log.clean" || fail "module loading failed in the guest"
node "$root/test/matrix/check-guest-cli.mjs" "$log.clean" "$kver" || fail "the CLI's counts do not match the kernel's (above)"
echo "matrix-cli: $kver guest ran in ${elapsed}s"
