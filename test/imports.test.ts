// The host code's import graph (src/): layers that data flows through one way, and no circles.
//   api, cli (front ends) -> linux -> fs -> machine -> kvm;  abi is a leaf anyone may import.
// An import may go down any number of layers or stay in its own, never up. Circles: none among
// the imports that load code; among type-only imports (erased at build) only ones whose every
// edge is type-only (a Task knows its Process, a Process its Tasks). The system-call handlers
// (src/linux/syscalls/) must not reach the table or the kernel, even through types.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { ROOT } from './helpers.js';

interface Edge { from: string; to: string; typeOnly: boolean }
type Graph = Map<string, Edge[]>;

const SRC = join(ROOT, 'src');
/** Rank of each layer: an import must not go to a higher one. abi is a leaf (rank -1, see below). */
const RANK: Record<string, number> = { api: 4, cli: 4, 'index.ts': 4, linux: 3, fs: 2, machine: 1, kvm: 0, abi: -1 };

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') && !p.endsWith('.d.ts') ? [p] : [];
  });
}

const IMPORT = /(?:^|\n)\s*(import|export)\s+(type\s+)?([^;'"]*?)\s*from\s*['"]([^'"]+)['"]|(?:^|\n)\s*import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

/** The module-relative edges of one source file (imports of packages and node: are not edges). */
export function parseImports(file: string, text: string): Edge[] {
  const edges: Edge[] = [];
  const clean = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
  for (const m of clean.matchAll(IMPORT)) {
    const spec = m[4] ?? m[5] ?? m[6]!;
    if (!spec.startsWith('.')) continue;
    const names = m[3] ?? '';
    const braces = /^\{([\s\S]*)\}$/.exec(names.trim());
    const allTypes = braces !== null && braces[1]!.split(',').map((s) => s.trim()).filter(Boolean).every((s) => s.startsWith('type '));
    const typeOnly = m[2] !== undefined || (m[1] !== undefined && allTypes && braces![1]!.trim() !== '');
    const to = resolve(dirname(file), spec.replace(/\.js$/, '.ts'));
    edges.push({ from: file, to, typeOnly });
  }
  return edges;
}

function layerOf(file: string): string {
  const rel = relative(SRC, file).split('/');
  return rel.length === 1 ? rel[0]! : rel[0]!;
}

/** Imports that go up a layer, or out of the abi leaf. */
export function upwardImports(g: Graph): string[] {
  const bad: string[] = [];
  for (const edges of g.values()) {
    for (const e of edges) {
      const a = layerOf(e.from), b = layerOf(e.to);
      const ra = RANK[a], rb = RANK[b];
      if (ra === undefined || rb === undefined) bad.push(`${rel(e.from)} -> ${rel(e.to)}: unknown layer`);
      else if (a === 'abi' ? b !== 'abi' : rb > ra) bad.push(`${rel(e.from)} -> ${rel(e.to)} (${a} may not import ${b})`);
    }
  }
  return bad;
}

/** Strongly connected components with more than one module, or a module importing itself (Tarjan). */
export function circles(g: Graph, keep: (e: Edge) => boolean): string[][] {
  let index = 0;
  const idx = new Map<string, number>(), low = new Map<string, number>(), onStack = new Set<string>();
  const stack: string[] = [];
  const out: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index); low.set(v, index); index++;
    stack.push(v); onStack.add(v);
    for (const e of (g.get(v) ?? []).filter(keep)) {
      if (!idx.has(e.to)) { visit(e.to); low.set(v, Math.min(low.get(v)!, low.get(e.to)!)); }
      else if (onStack.has(e.to)) low.set(v, Math.min(low.get(v)!, idx.get(e.to)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do { w = stack.pop()!; onStack.delete(w); scc.push(w); } while (w !== v);
      const selfLoop = (g.get(v) ?? []).some((e) => keep(e) && e.to === v);
      if (scc.length > 1 || selfLoop) out.push(scc);
    }
  };
  for (const v of g.keys()) if (!idx.has(v)) visit(v);
  return out;
}

/** Every module reachable from start through any import (types included). */
function reachable(g: Graph, start: string): Set<string> {
  const seen = new Set<string>();
  const todo = [start];
  while (todo.length) {
    const v = todo.pop()!;
    for (const e of g.get(v) ?? []) if (!seen.has(e.to)) { seen.add(e.to); todo.push(e.to); }
  }
  return seen;
}

const rel = (f: string): string => relative(ROOT, f);

function srcGraph(): Graph {
  const g: Graph = new Map();
  for (const f of files(SRC)) g.set(f, parseImports(f, readFileSync(f, 'utf8')));
  return g;
}

test('the import parser sees value, type-only and multi-line imports', () => {
  const f = join(SRC, 'linux/x.ts');
  const edges = parseImports(f, [
    "import type { A } from './a.js';",
    "import { type B, type C } from './b.js';",
    "import {\n  D,\n  type E,\n} from '../fs/d.js';",
    "export { F } from './f.js';",
    "import * as libc from '../kvm/libc.js';",
    "import { readFileSync } from 'node:fs';",
    "// import { G } from './g.js';",
  ].join('\n'));
  assert.deepEqual(edges.map((e) => [rel(e.to), e.typeOnly]), [
    ['src/linux/a.ts', true], ['src/linux/b.ts', true], ['src/fs/d.ts', false], ['src/linux/f.ts', false], ['src/kvm/libc.ts', false],
  ]);
});

test('the checks catch a circle and an upward import (a graph made to fail)', () => {
  const a = join(SRC, 'fs/a.ts'), b = join(SRC, 'fs/b.ts'), c = join(SRC, 'linux/c.ts');
  const g: Graph = new Map([
    [a, [{ from: a, to: b, typeOnly: false }, { from: a, to: c, typeOnly: true }]],
    [b, [{ from: b, to: a, typeOnly: false }]],
    [c, []],
  ]);
  assert.equal(circles(g, (e) => !e.typeOnly).length, 1);
  assert.deepEqual(upwardImports(g), ['src/fs/a.ts -> src/linux/c.ts (fs may not import linux)']);
});

test('src/: no import goes up a layer (api/cli -> linux -> fs -> machine -> kvm; abi is a leaf)', () => {
  const g = srcGraph();
  assert.ok(g.size > 30, `only ${g.size} modules found under src/`);
  assert.deepEqual(upwardImports(g), []);
});

test('src/: no circle among the imports that load code; type-only circles have only type-only edges', () => {
  const g = srcGraph();
  assert.deepEqual(circles(g, (e) => !e.typeOnly).map((c) => c.map(rel)), []);
  for (const scc of circles(g, () => true)) {
    const members = new Set(scc);
    const valueEdges = scc.flatMap((v) => g.get(v)!.filter((e) => members.has(e.to) && !e.typeOnly));
    assert.deepEqual(valueEdges.map((e) => `${rel(e.from)} -> ${rel(e.to)}`), [], `circle ${scc.map(rel).join(', ')}`);
  }
});

test('src/linux/syscalls/: no handler reaches the system-call table or the kernel, even through types', () => {
  const g = srcGraph();
  const table = join(SRC, 'linux/syscalls/table.ts');
  const kernel = join(SRC, 'linux/kernel.ts');
  const handlers = [...g.keys()].filter((f) => f.startsWith(join(SRC, 'linux/syscalls/')) && f !== table);
  assert.ok(handlers.length >= 6);
  for (const h of handlers) {
    const seen = reachable(g, h);
    assert.ok(!seen.has(table) && !seen.has(kernel), `${rel(h)} reaches ${seen.has(table) ? 'syscalls/table.ts' : 'kernel.ts'}`);
  }
  // Only the kernel imports the table.
  const importers = [...g.values()].flat().filter((e) => e.to === table).map((e) => rel(e.from));
  assert.deepEqual(importers, ['src/linux/kernel.ts']);
});
