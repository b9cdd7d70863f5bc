// Checks src/kvm/abi.ts against the real <linux/kvm.h>: a C program generated from the TS tables
// (every exported struct layout, ioctl, capability, exit reason and KVM_* constant) is compiled
// with gcc at test time and prints what the header says. A field or constant added in TS is
// checked automatically; one the header does not know fails to compile.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as abi from '../src/kvm/abi.js';

/** kvm_run fields that TS flattens out of the exit union: TS name -> C member designator. */
const KVM_RUN_MEMBERS: Readonly<Record<string, string>> = {
  io_direction: 'io.direction',
  io_size: 'io.size',
  io_port: 'io.port',
  io_count: 'io.count',
  io_data_offset: 'io.data_offset',
  mmio_phys_addr: 'mmio.phys_addr',
  mmio_data: 'mmio.data',
  mmio_len: 'mmio.len',
  mmio_is_write: 'mmio.is_write',
  fail_entry_hardware_entry_failure_reason: 'fail_entry.hardware_entry_failure_reason',
  internal_suberror: 'internal.suberror',
  internal_ndata: 'internal.ndata',
  internal_data: 'internal.data',
  s_regs: 's.regs.regs',
  s_sregs: 's.regs.sregs',
};

/** Exported KVM_* numbers that are kvmbox's own choices, not the header's. */
const NOT_IN_HEADER = new Set(['KVM_MAX_CPUID_ENTRIES']);

type Table = Record<string, number>;

function isStructLayout(v: unknown): v is abi.StructLayout {
  return typeof v === 'object' && v !== null && typeof (v as abi.StructLayout).size === 'number' &&
    typeof (v as abi.StructLayout).fields === 'object';
}

/** Every check as key -> [C expression, value in TS]. */
function checks(): Map<string, [string, number]> {
  const out = new Map<string, [string, number]>();
  for (const [name, value] of Object.entries(abi)) {
    if (!isStructLayout(value)) continue;
    out.set(`sizeof(${name})`, [`sizeof(struct ${name})`, value.size]);
    for (const [field, offset] of Object.entries(value.fields)) {
      const member = name === 'kvm_run' ? KVM_RUN_MEMBERS[field] ?? field : field;
      out.set(`${name}.${field}`, [`offsetof(struct ${name}, ${member})`, offset]);
    }
  }
  const tables: Record<string, Table> = { ioctls: abi.ioctls, caps: abi.caps, exitReasons: abi.exitReasons };
  for (const [table, entries] of Object.entries(tables)) {
    for (const [name, value] of Object.entries(entries)) out.set(`${table}.${name}`, [name, value]);
  }
  for (const [name, value] of Object.entries(abi)) {
    if (name.startsWith('KVM_') && typeof value === 'number' && !NOT_IN_HEADER.has(name)) out.set(name, [name, value]);
  }
  return out;
}

const all = checks();
const work = mkdtempSync(join(tmpdir(), 'kvmbox-abi-'));
let fromHeader = new Map<string, number>();

before(() => {
  const keys = [...all.keys()];
  const lines = keys.map((key, i) => `  printf("%d %llu\\n", ${i}, (unsigned long long)(${all.get(key)![0]}));`);
  const source = [
    '#include <stddef.h>', '#include <stdio.h>', '#include <linux/kvm.h>',
    'int main(void) {', ...lines, '  return 0;', '}', '',
  ].join('\n');
  writeFileSync(join(work, 'abi.c'), source);
  execFileSync('gcc', ['-Wall', '-Werror', '-o', join(work, 'abi'), join(work, 'abi.c')], { stdio: ['ignore', 'inherit', 'inherit'] });
  const printed = execFileSync(join(work, 'abi'), { encoding: 'utf8' });
  fromHeader = new Map(printed.trim().split('\n').map((line) => {
    const [i, v] = line.split(' ');
    return [keys[Number(i)]!, Number(v)];
  }));
  assert.equal(fromHeader.size, keys.length);
});
after(() => rmSync(work, { recursive: true, force: true }));

/** Compare every check whose key matches, all at once so that a failure lists every mismatch. */
function compare(select: (key: string) => boolean): void {
  const expected: Table = {};
  const actual: Table = {};
  for (const [key, [, value]] of all) {
    if (!select(key)) continue;
    expected[key] = value;
    actual[key] = fromHeader.get(key)!;
  }
  assert.ok(Object.keys(expected).length > 0, 'nothing selected');
  // actual (the header) first: a failure reads "header vs abi.ts".
  assert.deepEqual(actual, expected, 'src/kvm/abi.ts disagrees with <linux/kvm.h>');
}

test('struct sizes and field offsets match <linux/kvm.h>', () => {
  compare((k) => k.startsWith('sizeof(') || /^kvm_\w+\./.test(k));
});

test('struct kvm_run is 2352 bytes and its union members sit where TS reads them', () => {
  assert.equal(abi.kvm_run.size, 2352);
  compare((k) => k === 'sizeof(kvm_run)' || k.startsWith('kvm_run.'));
  for (const field of Object.keys(KVM_RUN_MEMBERS)) assert.ok(all.has(`kvm_run.${field}`), `kvm_run.${field} is checked`);
});

test('ioctl numbers match <linux/kvm.h>', () => {
  compare((k) => k.startsWith('ioctls.'));
});

test('capability numbers match <linux/kvm.h>', () => {
  compare((k) => k.startsWith('caps.'));
});

test('exit reasons match <linux/kvm.h>', () => {
  compare((k) => k.startsWith('exitReasons.'));
});

test('KVM_API_VERSION, KVM_SYNC_X86_REGS and the other KVM_* constants match <linux/kvm.h>', () => {
  assert.ok(all.has('KVM_API_VERSION') && all.has('KVM_SYNC_X86_REGS'));
  compare((k) => k.startsWith('KVM_'));
});
