#!/usr/bin/env bash
# Run a command as root in a QEMU guest that boots Debian's stock kernel, which has ESP and
# XFRM interfaces where this machine's kernel may not: the kernel data plane, for real.
#   bash scripts/guest.sh CMD...     e.g. bash scripts/guest.sh pytest -m kernel scenarios
# The guest sees this machine's root read-only over 9p, with copy-on-write overlays on the
# project, /var/lib and /var/log (what it writes there is gone when it stops), the project's
# .venv/bin first on PATH, and esp4, xfrm_user, xfrm_interface and tun loaded.
#   VPNLAB_GUEST_OUT=DIR     the command's output, exit status and files such as a JUnit
#                            file go here (the one directory shared writable; default: new)
#   VPNLAB_GUEST_TIMEOUT=S   stop the guest after S seconds (default 1500)
#   VPNLAB_GUEST_KERNEL=F    the kernel to boot (default: the newest /boot/vmlinuz-*-amd64)
# Exit status: the command's. A guest that does not boot, or does not finish, exits 1 with
# the console's last lines: never a silent success.
# Needs qemu-system-x86, linux-image-amd64, busybox-static and virtme-ng (setup.sh test
# installs them when this machine's kernel has no ESP).
set -euo pipefail
cd "$(dirname "$0")/.."
project=$PWD
(($#)) || { echo "usage: bash scripts/guest.sh CMD..." >&2; exit 2; }

kernel=${VPNLAB_GUEST_KERNEL:-$(find /boot -maxdepth 1 -name 'vmlinuz-*-amd64' | sort -V | tail -1)}
[ -n "$kernel" ] && [ -r "$kernel" ] || {
  echo "guest: no kernel to boot (/boot/vmlinuz-*-amd64; apt-get install linux-image-amd64)" >&2
  exit 1
}
export PATH="$project/.venv/bin:$PATH"  # vng runs virtme-run from beside itself
command -v vng >/dev/null || { echo "guest: no vng (pip install virtme-ng)" >&2; exit 1; }

out=${VPNLAB_GUEST_OUT:-$(mktemp -d /tmp/vpnlab-guest.XXXXXX)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -f "$out/rc" "$out/output.log"
timeout_s=${VPNLAB_GUEST_TIMEOUT:-1500}

# What runs inside: the modules, then the command, its output and status into $out.
{
  echo "set -u"
  echo "cd $(printf %q "$project")"
  echo "export PATH=$(printf %q "$project/.venv/bin"):/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  echo "export VPNLAB_IN_GUEST=1 HOME=/root"
  echo "exec >>$(printf %q "$out/output.log") 2>&1"
  echo "echo \"guest: \$(uname -r), \$(nproc) CPUs\""
  echo "modprobe -a esp4 xfrm_user xfrm_interface tun || { echo 'guest: modprobe failed'; echo 1 >$(printf %q "$out/rc"); exit; }"
  printf '%q ' "$@"
  echo
  echo "echo \$? >$(printf %q "$out/rc")"
} >"$out/inner.sh"
: >"$out/output.log"

echo "guest: booting $kernel (emulated, about 15 s), running: $*"
started=$(date +%s)
# The console mixes the guest's output with the kernel's: it goes to a file, and the
# command's own output, which goes to output.log, is followed here as it is written.
# Nested KVM resets this guest at boot on some hosts: emulation (TCG) is the safe choice.
timeout -k 10 "$timeout_s" vng --run "$kernel" --disable-kvm --user root --cpus "$(nproc)" \
  --memory 4G --force-9p --overlay-rwdir "$project" --overlay-rwdir /var/lib \
  --overlay-rwdir /var/log --rwdir "$out" --exec "bash $out/inner.sh" \
  </dev/null >"$out/console.log" 2>&1 &
guest=$!
tail -n +1 -F --pid="$guest" "$out/output.log" 2>/dev/null || true
vng_rc=0
wait "$guest" || vng_rc=$?
took=$(($(date +%s) - started))
if [ ! -s "$out/rc" ]; then
  echo "guest: the command did not finish (vng exit $vng_rc after ${took}s;" \
    "timeout ${timeout_s}s); the console's last lines ($out/console.log):" >&2
  tail -n 30 "$out/console.log" >&2
  exit 1
fi
rc=$(cat "$out/rc")
echo "guest: exit $rc after ${took}s (output: $out)"
exit "$rc"
