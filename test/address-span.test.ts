// How far a process's addresses span (Machine's spanFor), and the search for free ranges in a
// large, sparse address space (PageTables.lastMapped, AddressSpace.isFree/findFree), checked page
// by page against a plain scan. These run on the host alone (a MemoryRegion is host memory
// before it is a memslot, MAP_NORESERVE): no KVM needed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryRegion, sparseMemslots } from '../src/kvm/kvm.js';
import { GuestMemory } from '../src/machine/memory.js';
import { PageTables, PROT_READ, PROT_WRITE } from '../src/machine/paging.js';
import { ADDRESS_SPACE_BYTES, MAX_ADDRESS_SPACE_BYTES, spanFor } from '../src/machine/machine.js';
import { AddressSpace } from '../src/linux/address-space.js';
import { ChunkSet } from '../src/machine/chunk-set.js';
import { USER_BASE } from '../src/abi/abi.generated.js';

const GiB = 1024 ** 3;
const PAGE = 4096;
/** A reservation: mapped, with no rights (and no charge). */
const PROT_NONE = 0;

test('an address space spans what the physical-address width leaves room for', () => {
  // 36 bits (64 GiB of guest-physical addresses): room for 64 spaces of 1 GiB.
  assert.equal(spanFor(36, true), 1 * GiB);
  // 40 bits (TCG's default): 16 GiB, room for 64.
  assert.equal(spanFor(40, true), ADDRESS_SPACE_BYTES);
  assert.equal(spanFor(43, true), 16 * GiB);
  // 46 and 48 bits (server CPUs): room for 1024 spaces, 64 and 256 GiB each, and no more.
  assert.equal(spanFor(46, true), 64 * GiB);
  assert.equal(spanFor(48, true), MAX_ADDRESS_SPACE_BYTES);
  assert.equal(spanFor(52, true), MAX_ADDRESS_SPACE_BYTES);
  // Where KVM would keep metadata for every page of a memslot, 16 GiB at most.
  assert.equal(spanFor(48, false), ADDRESS_SPACE_BYTES);
  assert.equal(spanFor(36, false), 1 * GiB);
  for (let bits = 32; bits <= 52; bits++) {
    for (const sparse of [true, false]) {
      const span = spanFor(bits, sparse);
      assert.equal(span % (2 * 1024 * 1024), 0, `${bits} bits: whole 2 MiB chunks`);
      assert.ok(64 * span <= 2 ** bits, `${bits} bits: room for 64 address spaces`);
      assert.ok(span <= MAX_ADDRESS_SPACE_BYTES, `${bits} bits: one page-directory-pointer table maps it`);
    }
  }
});

test('memslots are sparse with the TDP MMU on a 5.15 or later kernel only', () => {
  assert.equal(sparseMemslots('6.1.0-50-amd64', 'Y'), true);
  assert.equal(sparseMemslots('5.15.0-91-generic', 'Y'), true);
  assert.equal(sparseMemslots('5.14.21-150500.55-default', 'Y'), false, 'reverse maps allocated with the memslot');
  assert.equal(sparseMemslots('4.18.0-553.el8_10.x86_64', 'Y'), false);
  assert.equal(sparseMemslots('6.8.0', 'N'), false, 'shadow paging needs the reverse maps');
  assert.equal(sparseMemslots('6.8.0', ''), false, 'no kvm module parameters to read');
});

/** An address space over size bytes of host memory, with its stack at the top, as exec makes it. */
function withSpace(size: number, body: (s: AddressSpace, paging: PageTables) => void): void {
  const region = new MemoryRegion(0, size, false);
  try {
    const memory = new GuestMemory(region);
    const paging = new PageTables(memory, { nx: true });
    paging.init();
    paging.markBase();
    const space = new AddressSpace(memory, paging);
    space.setupStack(64 * 1024, 8 * 1024 * 1024);
    body(space, paging);
  } finally {
    region.close();
  }
}

/** The highest mapped page in [first, end), by a plain scan of the permission table. */
function lastMappedByScan(paging: PageTables, first: number, end: number): number {
  for (let p = end - 1; p >= first; p--) if (paging.perms[p]) return p;
  return -1;
}

test('lastMapped finds the highest mapped page, across empty and used 2 MiB chunks, as a scan does', () => {
  withSpace(1 * GiB, (space, paging) => {
    let seed = 7;
    const rand = (n: number) => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n; };
    const top = paging.userTop / PAGE;
    for (let i = 0; i < 40; i++) {
      const start = USER_BASE / PAGE + rand(top - USER_BASE / PAGE - 600);
      const pages = 1 + rand(520);
      if (rand(3) === 0) space.unmap(start * PAGE, pages * PAGE);
      else space.map(start * PAGE, pages * PAGE, rand(2) ? PROT_READ : PROT_NONE);
    }
    for (let i = 0; i < 300; i++) {
      const a = USER_BASE / PAGE + rand(top - USER_BASE / PAGE);
      const b = a + rand(top - a + 1);
      assert.equal(paging.lastMapped(a, b), lastMappedByScan(paging, a, b), `pages [${a}, ${b})`);
    }
    assert.equal(paging.lastMapped(USER_BASE / PAGE, USER_BASE / PAGE), -1, 'an empty range');
  });
});

test('findFree places mappings top-down in the highest hole that fits, over 256 GiB of addresses', () => {
  withSpace(MAX_ADDRESS_SPACE_BYTES, (space) => {
    // Right below the stack's reserve (where mmap starts), as long as nothing is in the way.
    const first = space.findFree(10 * GiB);
    const top = first + 10 * GiB;
    assert.ok(top > 250 * GiB && top < MAX_ADDRESS_SPACE_BYTES);
    assert.ok(space.isFree(first, 10 * GiB));
    // Pages in the way: right below that (so mmap's next place is taken), at 200 GiB and at
    // 100 GiB. Each search passes over the empty chunks between them.
    for (const at of [first - PAGE, 200 * GiB, 100 * GiB]) space.map(at, PAGE, PROT_READ | PROT_WRITE);
    assert.ok(!space.isFree(first - 10 * GiB, 10 * GiB));
    assert.ok(!space.isFree(150 * GiB, 100 * GiB));
    assert.ok(space.isFree(100 * GiB + PAGE, 100 * GiB - PAGE));
    // The highest hole that holds the request, at its top: the 10 GiB left at the top holds
    // none of these.
    assert.equal(space.findFree(40 * GiB), first - PAGE - 40 * GiB);
    assert.equal(space.findFree(60 * GiB), 200 * GiB - 60 * GiB);
    assert.equal(space.findFree(100 * GiB - PAGE), 100 * GiB + PAGE);
    assert.equal(space.findFree(100 * GiB), 0, 'no hole holds 100 GiB');
    // Never below the floor.
    assert.ok(!space.isFree(USER_BASE - PAGE, PAGE));
    assert.ok(space.isFree(USER_BASE, PAGE));
  });
});

test('ChunkSet: runs and the last marked chunk agree with a plain array, across groups and clears', () => {
  // 1500 chunks: three groups of 512 and a short fourth, so runs cross group ends and the end.
  const n = 1500;
  const set = new ChunkSet(n);
  const model = new Uint8Array(n);
  let seed = 7;
  const rand = (k: number) => { seed = (seed * 1103515245 + 12345) >>> 0; return seed % k; };
  const plainRuns = () => {
    const out: Array<[number, number]> = [];
    for (let c = 0; c < n; c++) {
      if (!model[c]) continue;
      let d = c;
      while (d < n && model[d]) d++;
      out.push([c, d]);
      c = d;
    }
    return out;
  };
  const plainLast = (c: number, floor: number) => { for (; c >= floor; c--) if (model[c]) return c; return -1; };
  for (let round = 0; round < 300; round++) {
    const op = rand(10);
    if (op === 0) {
      set.clear();
      model.fill(0);
    } else if (op < 5) {
      const c = rand(n);
      set.add(c);
      model[c] = 1;
    } else {
      const a = rand(n), b = Math.min(n, a + rand(700));
      set.addRange(a, b);
      model.fill(1, a, b);
    }
    // Runs that end exactly at a group's end and go on in the next one are one run.
    if (round === 150) { set.addRange(500, 1030); model.fill(1, 500, 1030); }
    assert.deepEqual(set.runs(), plainRuns(), `round ${round}`);
    for (let k = 0; k < 20; k++) {
      const c = rand(n), floor = rand(c + 1);
      assert.equal(set.lastAtOrBelow(c, floor), plainLast(c, floor), `round ${round}: last at or below ${c} from ${floor}`);
      assert.equal(set.has(c), model[c] === 1);
    }
  }
});
