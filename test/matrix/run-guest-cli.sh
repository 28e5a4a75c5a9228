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
# check-guest-cli.mjs checks ctop's figures against the traffic and those, exactly.
#
# Usage: test/matrix/run-guest-cli.sh [--keep]   (after npm run build; root not needed)
# Env:   CTOP_MATRIX_CACHE  where the kernel package is kept (~/.cache/ctop-matrix)
#        CTOP_GUEST_TIMEOUT_S  wall-clock bound for the guest (default 900: Node under TCG is slow)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
cache=${CTOP_MATRIX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ctop-matrix}
timeout_s=${CTOP_GUEST_TIMEOUT_S:-900}
fail() { echo "matrix-cli: FAIL: $*" >&2; exit 1; }
mode=${1:-}
case "$mode" in ""|--keep) ;; *) fail "unknown option '$mode' (hint: --keep)";; esac

# ---- the kernel: the version Debian's cloud metapackage points at (as run-guest.sh) ----
mkdir -p "$cache"
pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-6\.1\.[^ ]*-cloud-amd64\)$/\1/p' | head -1)
[ -n "$pkg" ] || fail "apt-cache knows no 6.1 linux-image-cloud-amd64 (hint: apt-get update)"
if ! ls "$cache/$pkg-unsigned_"*.deb >/dev/null 2>&1; then
  (cd "$cache" && apt-get download "$pkg-unsigned" >/dev/null 2>&1) || fail "could not download $pkg-unsigned"
fi
kdir=$cache/$pkg
if [ ! -d "$kdir/boot" ]; then
  rm -rf "$kdir.tmp" && dpkg -x "$(ls "$cache/$pkg-unsigned_"*.deb | head -1)" "$kdir.tmp" && mv "$kdir.tmp" "$kdir"
fi
kver=${pkg#linux-image-}
for tool in qemu-system-x86_64 busybox cpio nft node; do
  command -v "$tool" >/dev/null || fail "$tool is missing (hint: bash scripts/setup.sh installs it)"
done
[ -f "$root/build/Release/ctop.node" ] && [ -f "$root/dist/cli.js" ] || fail "ctop is not built (hint: npm run build)"
vmlinuz=$kdir/boot/vmlinuz-$kver
moddir=$kdir/lib/modules/$kver
[ -f "$vmlinuz" ] && [ -d "$moddir/kernel" ] || fail "the package $pkg has no kernel or modules"

# ---- the initramfs -----------------------------------------------------------
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ir=$work/root
mkdir -p "$ir"/{bin,sbin,proc,sys,dev,tmp,etc,lib/modules} "$ir/ctop/build/Release" "$ir/ctop/node_modules"
cp "$(command -v busybox)" "$ir/bin/busybox"
cp "$(command -v nft)" "$ir/bin/nft"
cp "$(command -v node)" "$ir/bin/node"
# ctop as installed: bin/, dist/, package.json, the addon, the runtime dependencies only
cp -r "$root/bin" "$root/dist" "$root/package.json" "$ir/ctop/"
cp "$root/build/Release/ctop.node" "$ir/ctop/build/Release/"
for dep in commander blessed prom-client @opentelemetry tdigest bintrees; do
  [ -e "$root/node_modules/$dep" ] || fail "node_modules/$dep is missing (hint: npm install)"
  cp -rL "$root/node_modules/$dep" "$ir/ctop/node_modules/"
done
for lib in $(ldd "$(command -v node)" "$root/build/Release/ctop.node" "$(command -v nft)" | awk '/=> \//{print $3} /^\t\/lib/{print $1}' | sort -u); do
  mkdir -p "$ir$(dirname "$lib")"
  cp -L "$lib" "$ir$lib"
done
# modules in load order, each one's dependencies first (from .modinfo: the package has no modules.dep)
declare -A seen=()
order=()
mod_path() { find "$moddir/kernel" -name "$1.ko" -print -quit; }
add_mod() {
  local name=$1 path d
  [ -n "${seen[$name]:-}" ] && return
  seen[$name]=1
  path=$(mod_path "$name")
  [ -n "$path" ] || fail "the kernel package has no $name module"
  for d in $(tr '\0' '\n' < "$path" | sed -n 's/^depends=//p' | tr ',' ' '); do add_mod "$d"; done
  order+=("$path")
}
for name in nf_conntrack nf_conntrack_netlink nf_tables nft_ct; do add_mod "$name"; done
: > "$ir/etc/modules.order"
for m in "${order[@]}"; do
  cp "$m" "$ir/lib/modules/"
  echo "/lib/modules/$(basename "$m")" >> "$ir/etc/modules.order"
done

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
# 300 UDP flows: one socket and one datagram each, to a port nobody listens on
cat > "$ir/etc/send.js" <<'SEND'
const dgram = require('node:dgram');
let left = 300;
for (let i = 0; i < 300; i++) {
  const s = dgram.createSocket('udp4');
  s.send('x', 7200, '127.0.0.1', () => {
    s.close();
    if (--left === 0) console.log('CTOP-CLI-SENT 300');
  });
}
SEND
cat > "$ir/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev 2>/dev/null
echo "CTOP-BOOTED $(uname -r)"
for m in $(cat /etc/modules.order); do
  insmod "$m" || echo "CTOP-ERROR insmod $m"
done
export PATH=/bin HOME=/tmp
# the limit is global: 300 unreplied flows into 200 places
echo 200 > /proc/sys/net/netfilter/nf_conntrack_max
for tier in fentry kprobe; do
  unshare -n sh /etc/tier.sh $tier
done
echo "CTOP-DONE"
poweroff -f
INIT
chmod +x "$ir/init"
(cd "$ir" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/initrd.gz"

# ---- boot ---------------------------------------------------------------------
log=$work/console.log
start=$(date +%s)
set +e
timeout --kill-after=10 "$timeout_s" qemu-system-x86_64 -accel tcg -cpu max -smp 1 -m 3072 \
  -kernel "$vmlinuz" -initrd "$work/initrd.gz" \
  -append "console=ttyS0 panic=-1 quiet" -nographic -no-reboot -monitor none > "$log" 2>&1
qrc=$?
set -e
elapsed=$(( $(date +%s) - start ))
tr -d '\r' < "$log" | sed 's/^.*\(CTOP-[A-Z-]*\)/\1/' > "$log.clean"
if [ "$mode" = --keep ]; then cp "$log.clean" "$root/guest-cli-console.log"; fi
grep -E '^CTOP-' "$log.clean" | grep -v '^CTOP-CLI-JSON' | cut -c1-300 || true
grep -q '^CTOP-BOOTED' "$log.clean" || { tail -30 "$log.clean" >&2; fail "the $kver guest did not boot (qemu exit $qrc after ${elapsed}s)"; }
grep -q '^CTOP-DONE' "$log.clean" || { tail -30 "$log.clean" >&2; fail "the $kver guest did not finish within ${timeout_s}s (qemu exit $qrc)"; }
! grep -q '^CTOP-ERROR' "$log.clean" || fail "module loading failed in the guest"
node "$root/test/matrix/check-guest-cli.mjs" "$log.clean" "$kver" || fail "the CLI's counts do not match the kernel's (above)"
echo "matrix-cli: $kver guest ran in ${elapsed}s"
