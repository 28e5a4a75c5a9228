#!/usr/bin/env bash
# Installs everything ctop needs on Debian 12 / Ubuntu 22.04+ and builds it:
# OS packages, npm dependencies, the BPF object and its skeleton, the native
# addon and the TypeScript. Safe to run again. Needs root (apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."

# Why each package is here:
#   clang, llvm          compile bpf/ctop.bpf.c to BPF bytecode (CO-RE)
#   bpftool              dump the kernel's BTF to vmlinux.h, generate the libbpf skeleton
#   libbpf-dev libelf-dev zlib1g-dev   load the BPF object (the addon links libbpf)
#   libmnl-dev           ctnetlink statistics requests, as `conntrack -S` makes them
#   libnetfilter-conntrack-dev  ctnetlink table dumps (census fallback); deleting the census's own locating entry
#   nftables iptables conntrack iproute2  doctor's ruleset reading; the tests' labs and cross-checks
#   tmux                 the terminal UI tests drive ctop in it
#   chromium             the report tests render `ctop report`'s page headless and check what it shows
#   prometheus           the serve tests scrape `ctop serve` with a real Prometheus (own config, own port)
#   make g++ python3     node-gyp builds the addon
#   qemu-system-x86 busybox-static cpio  the kernel test matrix boots Debian's 6.1 kernel in qemu
#                        (software emulation, no KVM) with a busybox initramfs holding ctop-selftest;
#                        its kernel package is downloaded below (apt-get download, not installed)
PACKAGES=(clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev libmnl-dev libnetfilter-conntrack-dev
          nftables iptables conntrack iproute2 tmux make g++ python3 util-linux chromium prometheus
          qemu-system-x86 busybox-static cpio)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing OS packages: ${missing[*]}; run this script as root" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "setup: ctop needs Node.js 20 or newer (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# npm's install step builds the BPF object and the addon (package.json "install")
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
npm run build:ts
# The matrix's guest kernel (test/matrix/run-guest.sh): fetched now so that a
# test run needs no network; cached under ~/.cache/ctop-matrix.
bash test/matrix/run-guest.sh --fetch-only
echo "setup: done. Try: ./bin/ctop doctor   or   ./bin/ctop snapshot"
