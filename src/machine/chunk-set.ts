// A set of the 2 MiB chunks of an address space (PageTables' usedChunks and metaChunks), with a
// summary bit per group of 512 chunks (1 GiB). An address space spans up to 256 GiB (131072
// chunks), of which a program marks a few: scans go through the marked groups only, so they cost
// what was used rather than the span (a plain scan of 131072 bytes took ~65 us per call, several
// calls per fork, exec and exit).

const GROUP_SHIFT = 9;
const GROUP = 1 << GROUP_SHIFT;

export class ChunkSet {
  private readonly chunks: Uint8Array;
  /** Per group: whether any of its chunks may be marked (cleared only by clear()). */
  private readonly groups: Uint8Array;

  constructor(readonly size: number) {
    this.chunks = new Uint8Array(size);
    this.groups = new Uint8Array(Math.ceil(size / GROUP));
  }

  has(c: number): boolean {
    return this.chunks[c] === 1;
  }

  add(c: number): void {
    this.chunks[c] = 1;
    this.groups[c >> GROUP_SHIFT] = 1;
  }

  /** Mark chunks [first, end). */
  addRange(first: number, end: number): void {
    if (first >= end) return;
    this.chunks.fill(1, first, end);
    this.groups.fill(1, first >> GROUP_SHIFT, ((end - 1) >> GROUP_SHIFT) + 1);
  }

  clear(): void {
    for (let g = this.groups.indexOf(1); g >= 0; g = this.groups.indexOf(1, g + 1)) this.chunks.fill(0, g << GROUP_SHIFT, (g + 1) << GROUP_SHIFT);
    this.groups.fill(0);
  }

  /** The runs [first, end) of marked chunks, in order. */
  runs(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    let open = -1;
    let last = -1; // the end of the group scanned last: a run open there goes on into the next
    for (let g = this.groups.indexOf(1); g >= 0; g = this.groups.indexOf(1, g + 1)) {
      const start = g << GROUP_SHIFT, end = Math.min(this.size, start + GROUP);
      if (open >= 0 && start !== last) {
        out.push([open, last]);
        open = -1;
      }
      for (let c = start; c < end; c++) {
        if (this.chunks[c] === 1) {
          if (open < 0) open = c;
        } else if (open >= 0) {
          out.push([open, c]);
          open = -1;
        }
      }
      last = end;
    }
    if (open >= 0) out.push([open, last]);
    return out;
  }

  /** The highest marked chunk in [floor, c], or -1. */
  lastAtOrBelow(c: number, floor: number): number {
    while (c >= floor) {
      const g = c >> GROUP_SHIFT;
      if (!this.groups[g]) {
        c = (g << GROUP_SHIFT) - 1;
        continue;
      }
      for (const stop = Math.max(floor, g << GROUP_SHIFT); c >= stop; c--) if (this.chunks[c] === 1) return c;
    }
    return -1;
  }
}
