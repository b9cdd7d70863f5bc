#!/usr/bin/env bash
# Makes sure the Debian packages that the tests need are installed.
# usage: scripts/deps.sh [--lane]    (--lane: also what the software-emulated KVM lane needs)
# Installs them with apt-get when run as root on a system that has it; otherwise prints the one
# apt-get command to run and exits 1.
set -euo pipefail
need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
command -v musl-gcc >/dev/null || need+=(musl-tools)
[ -x /bin/busybox ] && have_pkg busybox-static || need+=(busybox-static)
have_pkg libsqlite3-dev || need+=(libsqlite3-dev)
have_pkg liblua5.4-dev || need+=(liblua5.4-dev)
command -v sqlite3 >/dev/null || need+=(sqlite3)
command -v qemu-x86_64 >/dev/null || need+=(qemu-user)
command -v make >/dev/null || need+=(make)
command -v go >/dev/null || need+=(golang-go)
# universal-ctags sandboxes itself with libseccomp (test/seccomp.test.ts).
command -v ctags >/dev/null || need+=(universal-ctags)
# strace and gdb trace programs inside the sandbox through its ptrace (test/ptrace.test.ts).
command -v strace >/dev/null || need+=(strace)
command -v gdb >/dev/null || need+=(gdb)
# valgrind's memcheck runs inside the sandbox (test/valgrind.test.ts).
command -v valgrind >/dev/null || need+=(valgrind)
if [ "${1:-}" = --lane ]; then
  command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
fi
[ ${#need[@]} = 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "deps: installing ${need[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }
  exit 0
fi
echo "The tests need Debian packages that are missing. Run:" >&2
echo "  sudo apt-get install -y ${need[*]}" >&2
exit 1
