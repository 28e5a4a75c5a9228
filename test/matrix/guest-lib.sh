# Shared by test/matrix/run-guest.sh and run-guest-cli.sh (sourced, bash):
# Debian 12's 6.1 cloud kernel (the version Debian's cloud metapackage points
# at), fetched once into a cache; an initramfs with busybox, binaries and the
# libraries `ldd` names, and the kernel's own modules in load order; the
# guest's boot under qemu's software emulation (TCG: no KVM needed).
# The caller defines fail() and sets root (the checkout) before sourcing.

# guest_kernel: sets pkg, kver, kdir, vmlinuz, moddir (downloads and unpacks on first use)
guest_kernel() {
  local cache=${CTOP_MATRIX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ctop-matrix}
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
  vmlinuz=$kdir/boot/vmlinuz-$kver
  moddir=$kdir/lib/modules/$kver
}

# guest_check_kernel: the package holds a kernel and its modules
guest_check_kernel() {
  [ -f "$vmlinuz" ] && [ -d "$moddir/kernel" ] || fail "the package $pkg has no kernel or modules"
}

# guest_need TOOL...: each one is installed on the host
guest_need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || fail "$tool is missing (hint: bash scripts/setup.sh installs it)"
  done
}

# guest_root: sets work (removed at exit) and ir, the initramfs tree, with busybox in it
guest_root() {
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  ir=$work/root
  mkdir -p "$ir"/{bin,sbin,proc,sys,dev,tmp,etc,lib/modules}
  cp "$(command -v busybox)" "$ir/bin/busybox"
}

# guest_libs FILE...: the dynamic libraries these binaries need, at the paths ldd names
guest_libs() {
  local lib
  for lib in $(ldd "$@" | awk '/=> \//{print $3} /^\t\/lib/{print $1}' | sort -u); do
    mkdir -p "$ir$(dirname "$lib")"
    cp -L "$lib" "$ir$lib"
  done
}

# guest_modules NAME...: these modules and their dependencies, in load order, listed in
# /etc/modules.order. The package carries no modules.dep (depmod runs at install):
# `depends=` is read from each module's .modinfo strings instead.
guest_modules() {
  declare -gA seen=()
  order=()
  local name m
  for name in "$@"; do guest_add_mod "$name"; done
  : > "$ir/etc/modules.order"
  for m in "${order[@]}"; do
    cp "$m" "$ir/lib/modules/"
    echo "/lib/modules/$(basename "$m")" >> "$ir/etc/modules.order"
  done
}
guest_add_mod() {
  local name=$1 path d
  [ -n "${seen[$name]:-}" ] && return
  seen[$name]=1
  path=$(find "$moddir/kernel" -name "$name.ko" -print -quit)
  [ -n "$path" ] || fail "the kernel package has no $name module"
  for d in $(tr '\0' '\n' < "$path" | sed -n 's/^depends=//p' | tr ',' ' '); do guest_add_mod "$d"; done
  order+=("$path")
}

# guest_init_head: the first lines of the guest's /init (mounts, the modules, CTOP-BOOTED)
guest_init_head() {
  cat <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev 2>/dev/null
echo "CTOP-BOOTED $(uname -r)"
for m in $(cat /etc/modules.order); do
  insmod "$m" || echo "CTOP-ERROR insmod $m"
done
EOF
}

# guest_boot TIMEOUT_S MEMORY_MB [QEMU_ARG...]: packs the initramfs and boots it on
# $guest_cpus vCPUs (default 1); sets log (the console, markers at line starts:
# $log.clean), qrc and elapsed
guest_boot() {
  local timeout_s=$1 mem=$2 start
  shift 2
  (cd "$ir" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/initrd.gz"
  log=$work/console.log
  start=$(date +%s)
  set +e
  timeout --kill-after=10 "$timeout_s" qemu-system-x86_64 -accel tcg -cpu max -smp "${guest_cpus:-1}" -m "$mem" "$@" \
    -kernel "$vmlinuz" -initrd "$work/initrd.gz" \
    -append "console=ttyS0 panic=-1 quiet" -nographic -no-reboot -monitor none > "$log" 2>&1
  qrc=$?
  set -e
  elapsed=$(( $(date +%s) - start ))
  # the console's escape sequences can share a line with our markers
  tr -d '\r' < "$log" | sed 's/^.*\(CTOP-[A-Z-]*\)/\1/' > "$log.clean"
}

# guest_finished TIMEOUT_S: the guest booted and reached CTOP-DONE within the bound
guest_finished() {
  local timeout_s=$1
  grep -q '^CTOP-BOOTED' "$log.clean" || { tail -30 "$log.clean" >&2; fail "the $kver guest did not boot (qemu exit $qrc after ${elapsed}s)"; }
  grep -q '^CTOP-DONE' "$log.clean" || { tail -30 "$log.clean" >&2; fail "the $kver guest did not finish within ${timeout_s}s (qemu exit $qrc)"; }
}
