// File names as kvmbox carries them (src/abi/file-names.ts): one string per byte sequence, the
// same bytes back, and those bytes at the host's libc. Host-only: no KVM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bytesOf, cStringOf, hostName, nameLength, nameOf } from '../src/abi/file-names.js';
import { O } from '../src/abi/linux.js';
import * as libc from '../src/kvm/libc.js';

test('every one- and two-byte name has a string of its own that gives back its bytes', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 256; i++) {
    const b = Buffer.from([i]);
    const s = nameOf(b);
    assert.ok(bytesOf(s).equals(b), `byte ${i}`);
    seen.add(s);
  }
  for (let i = 0; i < 65536; i++) {
    const b = Buffer.from([i >> 8, i & 0xff]);
    const s = nameOf(b);
    assert.ok(bytesOf(s).equals(b), `bytes ${b.toString('hex')}`);
    assert.equal(nameLength(s), 2);
    seen.add(s);
  }
  assert.equal(seen.size, 256 + 65536);
});

test('valid UTF-8 decodes as Buffer does; bad sequences (overlong, surrogates, past U+10FFFF, cut short) byte by byte', () => {
  for (const ok of ['plain', 'é', '€uro', '😀', 'a\ufffdb']) {
    assert.equal(nameOf(Buffer.from(ok)), ok);
    assert.equal(hostName(ok), ok, 'a well-formed name goes to libc as itself');
  }
  const bad: Array<[number[], string]> = [
    [[0xc0, 0xaf], '\udcc0\udcaf'],
    [[0xe0, 0x80, 0xaf], '\udce0\udc80\udcaf'],
    [[0xed, 0xa0, 0x80], '\udced\udca0\udc80'],
    [[0xf4, 0x90, 0x80, 0x80], '\udcf4\udc90\udc80\udc80'],
    [[0xe2, 0x82], '\udce2\udc82'],
    [[0x61, 0xe2, 0x82, 0xac, 0xff], 'a€\udcff'],
  ];
  for (const [bytes, want] of bad) {
    const b = Buffer.from(bytes);
    assert.equal(nameOf(b), want, b.toString('hex'));
    assert.ok(bytesOf(want).equals(b));
    assert.ok(cStringOf(want).equals(Buffer.concat([b, Buffer.from([0])])));
  }
});

test('the host libc gets the bytes: a\\xff and a\\xfe are two files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvmbox-names-'));
  try {
    const dirfd = libc.openat(-100, dir, O.RDONLY | O.CLOEXEC | O.DIRECTORY, 0);
    assert.ok(dirfd >= 0);
    for (const b of [[0x61, 0xff], [0x61, 0xfe]]) {
      const fd = libc.openat(dirfd, nameOf(Buffer.from(b)), O.WRONLY | O.CREAT | O.EXCL | O.CLOEXEC, 0o644);
      assert.ok(fd >= 0, `create ${Buffer.from(b).toString('hex')}: ${fd}`);
      libc.closeFd(fd);
    }
    libc.closeFd(dirfd);
    const names = readdirSync(dir, { encoding: 'buffer' }).map((n) => n.toString('hex')).sort();
    assert.deepEqual(names, ['61fe', '61ff']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
