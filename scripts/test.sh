#!/usr/bin/env bash
# `npm test`: installs the Debian packages the tests need (scripts/deps.sh), builds kvmbox and the
# test programs, then runs the suite on this host's /dev/kvm when it is usable; otherwise says so
# in one line and runs the same suite inside the project's software-emulated KVM lane
# (scripts/test-hwkvm.sh: QEMU TCG with an emulated AMD SVM CPU; ~10 min on 2 cores).
# env: KVMBOX_TEST_LANE=1 runs the lane even when /dev/kvm is usable; node --test options can be
#      given after `npm test --` (e.g. build/test/cli.test.js to run one file).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/deps.sh
npm run -s build
node scripts/build-test-programs.mjs
probe=$(node --input-type=module -e "
  const { doctor } = await import('./build/src/api/doctor.js');
  const r = doctor();
  console.log(r.ok ? 'ok' : r.device.problem);
" 2>&1) || probe="the KVM probe failed: $probe"
if [ "$probe" = ok ] && [ -z "${KVMBOX_TEST_LANE:-}" ]; then
  if [ $# -gt 0 ]; then exec node --test --test-concurrency=1 "$@"; fi
  exec node --test --test-concurrency=1 build/test/*.test.js
fi
[ "$probe" = ok ] && probe="KVMBOX_TEST_LANE is set"
echo "npm test: no usable /dev/kvm ($probe); running the suite in the software-emulated KVM lane instead"
scripts/deps.sh --lane
# The whole suite takes ~25-30 min in the lane (1500 s at the last measurement, more on a busy
# host); the lane's own default limit (1800 s) is for one run of a few files.
export LANE_TIMEOUT="${LANE_TIMEOUT:-3600}"
exec scripts/test-hwkvm.sh --no-build "$@"
