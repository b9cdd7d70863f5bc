#!/usr/bin/env bash
# Runs a shell command inside the lane's VM, whose /dev/kvm behaves like hardware KVM:
# qemu-system-x86_64 -accel tcg (pure software emulation, no host KVM needed) with an emulated
# AMD CPU that has SVM, a Debian kernel with kvm_amd loaded (scripts/lane/setup.sh).
#
# usage: scripts/lane/run.sh [-C DIR] 'COMMAND'
#   The host's root file system is shared read-only, at the same paths. With -C, DIR (without
#   .git) is copied to a tmpfs in the VM (/run/work) and COMMAND runs there; otherwise in /run.
#   COMMAND runs under bash as root, with the VM's own /proc, /sys and /dev (with /dev/kvm).
#   Its output is streamed as it comes; the exit status is COMMAND's, 124 when the VM ran out of
#   time, 125 when the VM gave no result (the console's tail is printed then).
# env: LANE_TIMEOUT (s, default 1800), LANE_MEM (default 3G), LANE_CPUS (default 1: with two on a
#      2-core host the emulated kernel reported soft lockups), LANE_CPU (QEMU model, default
#      max,phys-bits=48: TCG's own default is 40 bits, server CPUs have 43-52, and the width
#      sets how far each process's address space spans on the cpl0-entry path),
#      KVMBOX_LANE_CACHE (see setup.sh), LANE_CONSOLE (keep the VM's console log in this file),
#      LANE_EXPORT (a host folder: what COMMAND writes to /run/lane/export is copied there at the end)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
copy=""
while getopts "C:" o; do case $o in C) copy=$(cd "$OPTARG" && pwd);; *) sed -n '5,18p' "$0" >&2; exit 2;; esac; done
shift $((OPTIND - 1))
[ $# -eq 1 ] || { sed -n '5,18p' "$0" >&2; exit 2; }
command -v qemu-system-x86_64 >/dev/null || { echo "lane: qemu-system-x86_64 is missing: apt-get install qemu-system-x86" >&2; exit 125; }
cache=$("$here/setup.sh" | tail -1) || exit 125
case $copy/ in /run/*|/proc/*|/sys/*|/dev/*) echo "lane: $copy is hidden inside the VM; use a folder elsewhere" >&2; exit 2 ;; esac

out=$(mktemp -d); console=${LANE_CONSOLE:-$out/console}
mkdir "$out/export"
qpid=""
trap 'kill $qpid 2>/dev/null || true; rm -rf "$out"' EXIT
{
  echo 'set -o pipefail'
  if [ -n "$copy" ]; then
    printf 'mkdir -p /run/work && tar -C %q --exclude=./.git -cf - . | tar -C /run/work -xf - && cd /run/work || exit 125\n' "$copy"
  fi
  printf '%s\n' "$1"
} > "$out/cmd"
: > "$out/log"
timeout "${LANE_TIMEOUT:-1800}" qemu-system-x86_64 -accel tcg -cpu "${LANE_CPU:-max,phys-bits=48}" -smp "${LANE_CPUS:-1}" -m "${LANE_MEM:-3G}" \
  -display none -monitor none -serial "file:$console" -no-reboot -nic none \
  -kernel "$cache/vmlinuz" -initrd "$cache/base.cpio.gz" -append "console=ttyS0 quiet loglevel=3 panic=-1" \
  -virtfs "local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap" \
  -virtfs "local,path=$out,mount_tag=out,security_model=none" </dev/null &
qpid=$!
tail -n +1 -f --pid=$qpid "$out/log" &
tpid=$!
set +e
wait $qpid; qrc=$?
wait $tpid
set -e
if [ -n "${LANE_EXPORT:-}" ]; then mkdir -p "$LANE_EXPORT" && cp -r "$out/export/." "$LANE_EXPORT/"; fi
if [ -s "$out/rc" ]; then exit "$(cat "$out/rc")"; fi
echo "lane: the VM gave no result (qemu status $qrc); the end of its console:" >&2
tr -d '\r' < "$console" | tail -n 30 >&2
[ $qrc = 124 ] && exit 124
exit 125
