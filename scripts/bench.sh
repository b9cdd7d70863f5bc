#!/usr/bin/env bash
# `npm run bench`: builds kvmbox and the test programs, then runs the benchmark (bench/bench.ts)
# on this host's /dev/kvm when it is usable. Otherwise it says so in one line and runs the same
# benchmark inside the software-emulated KVM lane (scripts/lane/run.sh). There every runner
# (native, qemu-user, the kvmbox CLI and API) runs inside the same emulated machine, so the ratios
# to native still compare like with like; the absolute times are those of QEMU's software CPU and
# mean nothing for real hardware. The results come back to bench/results/ as on a KVM host.
# usage: npm run bench [-- BENCH_OPTIONS]   (see node build/bench/bench.js --help)
# env: KVMBOX_BENCH_LANE=1 runs in the lane even when /dev/kvm is usable.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
npm run -s build
node scripts/build-test-programs.mjs
node bench/build-programs.mjs >/dev/null
probe=$(node --input-type=module -e "
  const { doctor } = await import('./build/src/api/doctor.js');
  const r = doctor();
  console.log(r.ok ? 'ok' : r.device.problem);
" 2>&1) || probe="the KVM probe failed: $probe"
if [ "$probe" = ok ] && [ -z "${KVMBOX_BENCH_LANE:-}" ]; then exec node build/bench/bench.js "$@"; fi
[ "$probe" = ok ] && probe="KVMBOX_BENCH_LANE is set"
echo "npm run bench: no usable /dev/kvm ($probe); running the benchmark in the software-emulated KVM lane: ratios to native hold, absolute times are QEMU's"
scripts/deps.sh --lane
args=$(printf '%q ' "$@")
LANE_EXPORT="$root/bench/results" scripts/lane/run.sh -C "$root" "KVMBOX_BENCH_IN_LANE=1 node build/bench/bench.js $args; rc=\$?
for f in bench/results/*.json; do [ \$f -nt /run/lane/cmd ] && cp \$f /run/lane/export/; done
exit \$rc"
