// The hypercall ABI is defined once (abi/hypercalls.json); the C and TypeScript views are
// generated from it. These tests fail when a generated file is stale or the docs miss a call.
// Linux's own numbers that kvmbox writes down (src/abi/linux.ts) are checked against the headers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HYPERCALLS, HC_ABI_VERSION, HC_PORT_BASE } from '../src/abi/abi.generated.js';
import { loadKernelImage } from '../src/machine/kernel-image.js';
import { SYS } from '../src/abi/linux.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

test('generated C and TypeScript ABI files match abi/hypercalls.json', () => {
  execFileSync('node', [join(root, 'scripts/gen-abi.mjs'), '--check'], { stdio: 'pipe' });
});

test('docs/hypercalls.md documents every hypercall with its number and port', () => {
  const doc = readFileSync(join(root, 'docs/hypercalls.md'), 'utf8');
  assert.match(doc, new RegExp(`version ${HC_ABI_VERSION}`));
  for (const h of HYPERCALLS) {
    assert.match(doc, new RegExp(`\\| ${h.nr} \\| ${h.port} \\| \`${h.name}\``), `${h.name} missing from docs/hypercalls.md`);
    assert.equal(h.port, HC_PORT_BASE + h.nr);
  }
});

test('the built kernel speaks this ABI version and exposes its entry points', () => {
  const k = loadKernelImage();
  assert.ok(k.vectors.length === 33);
  for (const addr of [k.entry, k.syscallEntryHw, k.probeEntry, k.fuzzEntry, ...k.vectors]) {
    assert.ok(addr >= 0xffffffff80020000n && addr < 0xffffffff80100000n, `0x${addr.toString(16)} outside the kernel image`);
  }
});

test('the guest kernel is built without SSE/x87 instructions (kvm_pvm cannot emulate them at CPL0)', () => {
  const dis = execFileSync('objdump', ['-d', join(root, 'kernel/out/kernel.elf')], { encoding: 'utf8' });
  const bad = dis.split('\n').filter((l) => /\t(x?or|mov|add|sub|mul|div|cvt|p\w+)?(ps|pd|ss|sd)\b|\txmm|%xmm|%ymm|\tf(ld|st|add|mul)|\tpopcnt|\tmovbe|\tcmpxchg16b/.test(l));
  assert.deepEqual(bad, []);
});

test('the system-call numbers of src/abi/linux.ts match <asm/unistd_64.h>', () => {
  const names = Object.keys(SYS) as Array<keyof typeof SYS>;
  const work = mkdtempSync(join(tmpdir(), 'kvmbox-sysnr-'));
  try {
    const lines = names.map((n) => `  printf("%s %d\\n", "${n}", __NR_${n});`);
    writeFileSync(join(work, 'nr.c'), ['#include <stdio.h>', '#include <asm/unistd_64.h>', 'int main(void) {', ...lines, '  return 0;', '}', ''].join('\n'));
    execFileSync('gcc', ['-Wall', '-Werror', '-o', join(work, 'nr'), join(work, 'nr.c')], { stdio: ['ignore', 'inherit', 'inherit'] });
    const header = Object.fromEntries(execFileSync(join(work, 'nr'), { encoding: 'utf8' }).trim().split('\n').map((l) => {
      const [n, v] = l.split(' ');
      return [n!, Number(v)];
    }));
    assert.deepEqual(header, { ...SYS }, 'src/abi/linux.ts (second) disagrees with <asm/unistd_64.h> (first)');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
