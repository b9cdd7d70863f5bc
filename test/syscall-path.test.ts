// Which way `syscall` reaches the host, and that it does so correctly on that way. kvmbox probes
// the KVM at start-up: 'user-stub' on kvm_pvm (`syscall` stays at CPL3, LSTAR is a user stub),
// 'cpl0-entry' on hardware KVM (LSTAR is the kernel's syscall_entry_hw, which returns with
// sysretq). The expected path comes from KVMBOX_EXPECT_PATH when set (scripts/test-hwkvm.sh sets
// it inside the hardware-like VM), else from the KVM module the host kernel has loaded. The other
// tests drive a hand-written user program through a bare Machine, so they check the kernel's
// entry code itself, whatever the Linux layer above does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Vcpu, VcpuExit } from '../src/kvm/kvm.js';
import { detectSyscallPath, Machine, type HypercallHandler, type HypercallResult, type SyscallPath } from '../src/machine/machine.js';
import { PROT_EXEC, PROT_READ, PROT_WRITE } from '../src/machine/paging.js';
import { Hypercall } from '../src/abi/abi.generated.js';

/** What the path should be here, and why; undefined when nothing tells. */
function expectedPath(): { path: SyscallPath; why: string } | undefined {
  const env = process.env.KVMBOX_EXPECT_PATH;
  if (env) {
    if (env !== 'cpl0-entry' && env !== 'user-stub') throw new Error(`KVMBOX_EXPECT_PATH=${env}: expected cpl0-entry or user-stub`);
    return { path: env, why: `KVMBOX_EXPECT_PATH=${env}` };
  }
  // Built in or loaded, a module has a directory here (these machines have no /proc/modules).
  if (existsSync('/sys/module/kvm_pvm')) return { path: 'user-stub', why: '/sys/module/kvm_pvm exists' };
  for (const m of ['kvm_intel', 'kvm_amd']) {
    if (existsSync(`/sys/module/${m}`)) return { path: 'cpl0-entry', why: `/sys/module/${m} exists` };
  }
  return undefined;
}

const expected = expectedPath();

test('the detected system-call path matches this host\'s KVM', { skip: expected ? false : 'neither KVMBOX_EXPECT_PATH nor a known KVM module tells the expected path' }, (t) => {
  const path = detectSyscallPath();
  t.diagnostic(`syscall path: ${path} (expected ${expected!.path}: ${expected!.why})`);
  assert.equal(path, expected!.path);
});

test('detectSyscallPath() is stable and agrees with a new Machine', () => {
  const first = detectSyscallPath();
  assert.ok(first === 'cpl0-entry' || first === 'user-stub', first);
  using m = new Machine({ memoryBytes: 16 << 20 });
  assert.equal(m.syscallPath, first);
  assert.equal(detectSyscallPath(), first);
});

// A signal to the host thread ends KVM_RUN early (exit 'interrupted'). A sampling profiler sends
// SIGPROF every few microseconds here; the start-up probe once gave up after four such exits
// ("`syscall` reached neither the kernel nor the fault handler"), in 2 of 3 profiled runs in the
// emulated lane, where each exit is slow.
test('the start-up probe is not confused by signals to the host (node --cpu-prof)', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kvmbox-prof-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const url = new URL('../src/machine/machine.js', import.meta.url).href;
  // (At 10 us the profiler cannot keep up and interrupts less: 100 and 1000, Node's default, bite.)
  for (const interval of ['100', '1000', '100', '1000']) {
    const r = spawnSync(process.execPath, [
      '--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-interval', interval, '--input-type=module',
      '-e', `import { detectSyscallPath } from ${JSON.stringify(url)}; console.log(detectSyscallPath());`,
    ], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), detectSyscallPath());
  }
});

// The user program, hand-assembled (no toolchain needed), at the lowest user address:
//   mov $NR_FIRST, %eax ; syscall          the host answers RESULT (and may edit rcx/r11)
//   mov %rax, %rdi ; pushfq ; pop %rsi     report the result and the flags after the return
//   mov $NR_REPORT, %eax ; syscall ; ud2
// The numbers are no Linux call's, so the kvm_pvm stub cannot answer them without the host.
const NR_FIRST = 0x1234;
const NR_REPORT = 0x1235;
const RESULT = 0xabcdn;
const u32 = (v: number) => [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff];
const CODE = Buffer.from([
  0xb8, ...u32(NR_FIRST), 0x0f, 0x05,
  0x48, 0x89, 0xc7, 0x9c, 0x5e,
  0xb8, ...u32(NR_REPORT), 0x0f, 0x05,
  0x0f, 0x0b,
]);
const RFLAGS_IOPL = 0x3000n;
const RFLAGS_NT = 0x4000n;
const VEC_GP = 13n;

interface Outcome {
  /** CPL of the code that issued the first SYSCALL hypercall (the vCPU's CS.DPL at that exit). */
  cpl?: number;
  report?: { result: bigint; rflags: bigint };
  fault?: { vector: bigint; rip: bigint };
  other?: string;
}

/** Run code once; edit(vcpu) may change the registers the guest returns to after the first call. */
function runProgram(edit: (vcpu: Vcpu) => void = () => {}, code_ = CODE): Outcome {
  using m = new Machine({ memoryBytes: 16 << 20 });
  const code = m.paging.userFloor;
  const stack = code + 0x10000;
  m.paging.map(code, 0x1000, PROT_READ | PROT_EXEC);
  m.paging.map(stack, 0x1000, PROT_READ | PROT_WRITE);
  m.memory.write(code, code_);
  m.start(code, stack + 0x1000, 0);
  const out: Outcome = {};
  const handler: HypercallHandler = {
    hypercall(nr: number, vcpu: Vcpu): HypercallResult {
      const r = vcpu.getRegs();
      if (nr === Hypercall.SYSCALL && r.rax === BigInt(NR_FIRST) && out.cpl === undefined) {
        out.cpl = vcpu.getSregs().cs.dpl;
        vcpu.setReg('rax', RESULT);
        edit(vcpu);
        return { action: 'resume' };
      }
      if (nr === Hypercall.SYSCALL && r.rax === BigInt(NR_REPORT)) out.report = { result: r.rdi, rflags: r.rsi };
      else if (nr === Hypercall.FAULT) out.fault = { vector: r.rdi, rip: r.r10 };
      else out.other = `hypercall ${nr} rax=0x${r.rax.toString(16)} rdi=0x${r.rdi.toString(16)} rip=0x${r.rip.toString(16)}`;
      return { action: 'stop' };
    },
    unexpectedExit(exit: VcpuExit, vcpu: Vcpu): void {
      out.other = `exit ${exit.kind} at rip 0x${vcpu.getRegs().rip.toString(16)}`;
    },

  };
  m.run(handler);
  return out;
}

test('a system call reaches the host from the privilege level its path implies and returns its result', () => {
  const path = detectSyscallPath();
  const o = runProgram();
  assert.equal(o.other, undefined);
  assert.equal(o.cpl, path === 'cpl0-entry' ? 0 : 3, `CPL at the SYSCALL hypercall on ${path}`);
  assert.deepEqual(o.report?.result, RESULT);
  assert.equal(o.report!.rflags & (RFLAGS_IOPL | RFLAGS_NT), 0n);
});

test('flags the host leaves in r11 cannot raise the user\'s IOPL on return', () => {
  const o = runProgram((v) => v.setReg('r11', v.reg('r11') | RFLAGS_IOPL | RFLAGS_NT));
  assert.equal(o.other, undefined);
  assert.deepEqual(o.report?.result, RESULT);
  assert.equal(o.report!.rflags & (RFLAGS_IOPL | RFLAGS_NT), 0n, `rflags 0x${o.report!.rflags.toString(16)}`);
});

test('a non-canonical return address ends as the user\'s #GP, not as a guest-kernel fault', () => {
  const bad = 0x0000800000000000n;
  const o = runProgram((v) => v.setReg('rcx', bad));
  assert.equal(o.other, undefined);
  assert.equal(o.report, undefined);
  assert.equal(o.fault?.vector, VEC_GP);
  // On the CPL0 entry the refused target is reported; the user stub faults on its own `jmp *%rcx`.
  if (detectSyscallPath() === 'cpl0-entry') assert.equal(o.fault.rip, bad);
});

// vcmptrueps %ymm1,%ymm1,%ymm1 ; vmovmskps %ymm1,%edi (0xff: all 8 lanes, so the upper half works)
// mov $NR_REPORT, %eax ; syscall ; ud2
const AVX_CODE = Buffer.from([
  0xc5, 0xf4, 0xc2, 0xc9, 0x0f, 0xc5, 0xfc, 0x50, 0xf9,
  0xb8, ...u32(NR_REPORT), 0x0f, 0x05, 0x0f, 0x0b,
]);
const hostHasAvx = /^flags\s*:.*\bavx\b/m.test(readFileSync('/proc/cpuinfo', 'utf8'));
test('AVX works in user mode on either path (the CPL0 path sets XCR0 with KVM_SET_XCRS)', { skip: hostHasAvx ? false : 'this CPU has no AVX' }, () => {
  const o = runProgram(undefined, AVX_CODE);
  assert.equal(o.fault, undefined, `AVX faulted (vector ${o.fault?.vector}) on ${detectSyscallPath()}`);
  assert.equal(o.other, undefined);
  assert.equal(o.report?.result, 0xffn);
});
