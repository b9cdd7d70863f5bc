#!/usr/bin/env bash
# The hardware-KVM test lane: runs the whole compiled test suite (build/test/*.test.js) inside
# the project's own software-emulated KVM (scripts/lane/: QEMU TCG with an emulated AMD SVM CPU,
# a Debian kernel with kvm_amd), in one boot. Its /dev/kvm behaves like hardware KVM, so the
# 'cpl0-entry' system-call path (syscall to CPL0, sysretq) is exercised, and it needs no KVM on
# the host: `npm test` uses it on machines without a usable /dev/kvm.
#
# usage: scripts/test-hwkvm.sh [--no-build] [TEST_FILE...]
#   The host builds everything first (npm run build, then the test programs); the VM compiles
#   nothing. --no-build skips that when it was just done. TEST_FILEs (build/test/x.test.js)
#   narrow the run; default: every build/test/*.test.js.
# env: LANE_TIMEOUT (s, default 1800) and the rest as for scripts/lane/run.sh
# Inside, KVMBOX_EXPECT_PATH=cpl0-entry makes test/syscall-path.test.ts assert the hardware path.
# Prints the suite's TAP output as it comes, then one line:
#   lane: PASS|FAIL: T tests, P passed, F failed, S skipped, C cancelled, D todo (path ...) in Ns
# Exit status: 0 only when the suite ran to its end with no failed or cancelled test.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=1; files=()
for a in "$@"; do
  case $a in
    --no-build) build=0 ;;
    -*) sed -n '7,17p' "$0" >&2; exit 2 ;;
    *) files+=("$a") ;;
  esac
done
t0=$(date +%s)
if [ $build = 1 ]; then
  (cd "$root" && npm run -s build && node scripts/build-test-programs.mjs)
fi
if [ ${#files[@]} = 0 ]; then
  shopt -s nullglob; files=("$root"/build/test/*.test.js); shopt -u nullglob
  [ ${#files[@]} -gt 0 ] || { echo "lane: no build/test/*.test.js; build first (npm run build)" >&2; exit 2; }
  files=("${files[@]#$root/}")
fi
log=$(mktemp); trap 'rm -f "$log"' EXIT
echo "lane: booting the software-emulated KVM (QEMU TCG, 1 CPU) and running ${#files[@]} test files in it"
set +e
"$root/scripts/lane/run.sh" -C "$root" "echo \"[lane] node \$(node --version), kvm modules: \$(ls /sys/module | grep -E '^kvm' | tr '\n' ' ')\"
s=\$(date +%s)
KVMBOX_EXPECT_PATH=cpl0-entry NO_COLOR=1 node --test --test-concurrency=1 --test-reporter=tap ${files[*]} 2>&1 | cat
rc=\$?
echo \"[lane] node --test exited \$rc after \$(( \$(date +%s) - s )) s\"
exit \$rc" 2>&1 | tee "$log"
vmrc=${PIPESTATUS[0]}
set -e

count() { sed -n "s/^# $1 \([0-9][0-9]*\)\$/\1/p" "$log" | tail -1; }
tests=$(count tests); pass=$(count pass); fail=$(count fail)
skipped=$(count skipped); cancelled=$(count cancelled); todo=$(count todo)
path=$(grep -o 'syscall path: [a-z0-9-]*' "$log" | head -1 | sed 's/syscall path: //' || true)
why=""
if [ -z "$tests" ]; then
  case $vmrc in
    124) why="the VM hit its time limit (LANE_TIMEOUT=${LANE_TIMEOUT:-1800} s)" ;;
    125) why="the VM gave no result" ;;
    *) why="no test summary in the output (status $vmrc)" ;;
  esac
elif [ "$fail" != 0 ] || [ "$cancelled" != 0 ]; then
  why="failed tests:"$'\n'"$(grep -E '^not ok [0-9]+ - ' "$log" | sed 's/^/  /')"
elif [ "$vmrc" != 0 ]; then
  why="node --test exited $vmrc"
fi
verdict=PASS; [ -z "$why" ] || verdict=FAIL
[ -z "$why" ] || echo "lane: $why"
echo "lane: $verdict: ${tests:-?} tests, ${pass:-?} passed, ${fail:-?} failed, ${skipped:-?} skipped, ${cancelled:-?} cancelled, ${todo:-?} todo (syscall path ${path:-unknown}) in $(( $(date +%s) - t0 )) s"
[ $verdict = PASS ]
