// GuestMemory over more than 4 GiB of host memory (an address space of 16 GiB): Node 20 makes no
// ArrayBuffer over 4 GiB, so the host sees such memory through overlapping 4 GiB windows. These
// run on the host alone (a MemoryRegion is host memory before it is a memslot): no KVM needed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryRegion } from '../src/kvm/kvm.js';
import { GuestMemory, GuestMemoryRangeError, MAX_SLICE_BYTES, PIECE_BYTES } from '../src/machine/memory.js';

const GiB = 1024 ** 3;

function withMemory(size: number, body: (m: GuestMemory) => void): void {
  const region = new MemoryRegion(0, size, false);
  try { body(new GuestMemory(region)); } finally { region.close(); }
}

test('a 16 GiB guest memory: values and slices across every 2 GiB and 4 GiB boundary', () => {
  withMemory(16 * GiB, (m) => {
    assert.equal(m.size, 16 * GiB);
    for (let k = 1; k < 8; k++) {
      const edge = k * 2 * GiB;
      // A value straddling the boundary, written and read back through both windows that hold it.
      m.setU64(edge - 4, 0x1122334455667788n);
      assert.equal(m.u64(edge - 4), 0x1122334455667788n);
      assert.equal(m.u32(edge), 0x11223344);
      assert.equal(m.u32(edge - 4), 0x55667788);
      // A live slice across it is one Buffer aliasing the same bytes.
      const s = m.slice(edge - 8, 16);
      s[15] = 0xab;
      assert.equal(m.u8(edge + 7), 0xab);
      m.setU8(edge - 8, 0xcd);
      assert.equal(s[0], 0xcd);
    }
    // The last byte, and a string that ends there.
    m.setU8(16 * GiB - 1, 0);
    m.write(16 * GiB - 6, Buffer.from('hello'));
    assert.equal(m.cstring(16 * GiB - 6, 100)?.toString(), 'hello');
    // A string running into the end without a NUL is not a string.
    m.setU8(16 * GiB - 1, 0x41);
    assert.equal(m.cstring(16 * GiB - 6, 100), null);
  });
});

test('a 16 GiB guest memory: ranges outside it and over-long live slices are refused', () => {
  withMemory(16 * GiB, (m) => {
    assert.throws(() => m.u64(16 * GiB - 4), GuestMemoryRangeError);
    assert.throws(() => m.slice(16 * GiB, 1), GuestMemoryRangeError);
    assert.throws(() => m.slice(-1, 2), GuestMemoryRangeError);
    assert.throws(() => m.slice(0, MAX_SLICE_BYTES + 4096), /longer than a live slice may be/);
    assert.equal(m.slice(3 * GiB, MAX_SLICE_BYTES).length, MAX_SLICE_BYTES);
  });
});

test('a 16 GiB guest memory: bulk copies and fills in pieces, across a window boundary, in either direction', () => {
  withMemory(16 * GiB, (m) => {
    // Mark every 64 KiB of three and a half pieces just below 4 GiB with its number, then move
    // it up by a piece and a page, over itself and across the boundary, and back down.
    const unit = 64 * 1024, length = 3.5 * PIECE_BYTES, from = 4 * GiB - length + unit, shift = PIECE_BYTES + 4096;
    for (let i = 0; i < length / unit; i++) m.setU32(from + i * unit, i + 1);
    m.copyWithin(from + shift, from, length);
    for (let i = 0; i < length / unit; i++) assert.equal(m.u32(from + shift + i * unit), i + 1, `unit ${i}`);
    m.copyWithin(from, from + shift, length);
    for (let i = 0; i < length / unit; i++) assert.equal(m.u32(from + i * unit), i + 1, `unit ${i}`);
    // Into another memory at the same addresses (a fork's copy), and out as a copy.
    withMemory(16 * GiB, (d) => {
      m.copyTo(d, from, length);
      for (let i = 0; i < length / unit; i++) assert.equal(d.u32(from + i * unit), i + 1, `unit ${i}`);
    });
    const copy = m.read(from, length);
    assert.equal(copy.readUInt32LE(length - unit), length / unit);
    m.fill(from, length, 0);
    assert.equal(m.u32(from + length - unit), 0);
    m.write(from, copy);
    assert.equal(m.u32(from + length - unit), length / unit);
    m.discard(from - (from % 4096), length);
  });
});

test('memory of 4 GiB or less is one window: a slice may be as long as the memory', () => {
  withMemory(64 * 1024 ** 2, (m) => {
    const all = m.slice(0, m.size);
    assert.equal(all.length, m.size);
    all[m.size - 1] = 9;
    assert.equal(m.u8(m.size - 1), 9);
  });
});
